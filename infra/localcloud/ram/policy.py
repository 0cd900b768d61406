"""RAM policy documents as Alibaba Cloud evaluates them (pure).

`parse_policy` reads a policy document strictly: anything the evaluator would not act on exactly as RAM
does (an unknown element, operator, condition key or action, a malformed resource) is a PolicyError naming
the statement, never silently ignored. `evaluate` decides one request the way RAM does: an explicit Deny
wins, then an Allow, and anything else is implicitly denied.

Matching: `*` is any run of characters (empty included) and `?` exactly one, in actions and resources;
actions match case-insensitively, resources case-sensitively (object keys are case-sensitive). RAM
documents a resource as acs:<service>:<region>:<account-id>:<relative id> and `*` as any run of characters,
but not whether a `*` may run past a `:` into the next field; the stricter reading is taken either way, so
that what is allowed here is allowed by RAM: an Allow's resources match field by field (a grant on
`acs:oss:*:*:b/*` never covers another bucket's key `x:b/y`), a Deny's over the whole ARN (NotResource
the other way round; docs/least-privilege.md has the sources). Within a
condition, a key's values are alternatives (OR); keys under one operator and the operators of a block must
all hold (AND); a negated operator holds only when no value matches. A condition on a key the request does
not carry holds only for negated operators, as in RAM's evaluation of absent keys."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from typing import Any

from .catalog import Catalog, ConditionKeyType

MAX_POLICY_CHARACTERS = 6144  # RAM CreatePolicy: a policy document is 1 to 6,144 characters
ALLOW, DENY = "Allow", "Deny"
_STATEMENT_ELEMENTS = {"Effect", "Action", "NotAction", "Resource", "NotResource", "Condition", "Sid"}


class PolicyError(ValueError):
    """A policy the evaluator cannot act on exactly as RAM would; the message names the statement."""


@dataclass(frozen=True)
class Condition:
    operator: str
    key: str  # as written; matched case-insensitively against the request's keys
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    where: str  # e.g. "policy 1, statement 2 (Sid ReadTags)": how errors and decisions name it
    effect: str
    actions: tuple[str, ...]
    not_actions: bool
    resources: tuple[str, ...]
    not_resources: bool
    conditions: tuple[Condition, ...]

    def applies(self, request: Request) -> bool:
        action_listed = any(_wildcard(p, ignore_case=True)(request.action) for p in self.actions)
        # The stricter of the two readings of `*` (module docstring): an Allow reaches no further than a
        # field-wise match, a Deny as far as a match over the whole ARN; NotResource turns each round.
        field_wise = (self.effect == ALLOW) != self.not_resources
        matcher = _resource_matches if field_wise else _arn_matches
        resource_listed = any(matcher(p, request.resource) for p in self.resources)
        return (
            action_listed != self.not_actions
            and resource_listed != self.not_resources
            and all(_holds(c, request.context) for c in self.conditions)
        )


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]


@dataclass(frozen=True)
class Request:
    """One authorisation: an action on a resource, with the condition keys the request carries."""

    action: str  # e.g. oss:GetObject
    resource: str  # e.g. acs:oss:cn-hangzhou:1234567890123456:bucket/key
    context: Mapping[str, str] = field(default_factory=dict)  # condition key (lower-case) -> value


@dataclass(frozen=True)
class Decision:
    allowed: bool
    explicit_deny: bool
    statement: str  # the statement that decided, or "" for an implicit deny


def evaluate(policies: Sequence[Policy], request: Request) -> Decision:
    allowing = ""
    for policy in policies:
        for statement in policy.statements:
            if not statement.applies(request):
                continue
            if statement.effect == DENY:
                return Decision(False, True, statement.where)
            allowing = allowing or statement.where
    return Decision(bool(allowing), False, allowing)


# ---- parsing ------------------------------------------------------------------------------------------


def parse_policy(document: Any, catalog: Catalog, where: str = "policy") -> Policy:
    """Check and compile one policy document (already decoded from JSON or YAML)."""
    if not isinstance(document, dict):
        raise PolicyError(f"{where}: a policy is a mapping with Version and Statement, got {document!r}")
    size = len(_canonical_json(document))
    if size > MAX_POLICY_CHARACTERS:
        raise PolicyError(f"{where}: {size} characters; RAM allows at most {MAX_POLICY_CHARACTERS}")
    unknown = set(document) - {"Version", "Statement"}
    if unknown:
        name = sorted(unknown)[0]
        raise PolicyError(f"{where}: unknown element {name!r} (a policy has Version and Statement)")
    if str(document.get("Version")) != "1":
        raise PolicyError(f"{where}.Version: {document.get('Version')!r}; RAM policies are Version '1'")
    statements = document.get("Statement")
    if not isinstance(statements, list) or not statements:
        raise PolicyError(f"{where}.Statement: a non-empty list of statements, got {statements!r}")
    return Policy(
        tuple(_statement(s, catalog, f"{where}, statement {i + 1}") for i, s in enumerate(statements))
    )


def _statement(body: Any, catalog: Catalog, where: str) -> Statement:
    if not isinstance(body, dict):
        raise PolicyError(f"{where}: a statement is a mapping, got {body!r}")
    if isinstance(body.get("Sid"), str):
        where = f"{where} (Sid {body['Sid']})"
    unknown = set(body) - _STATEMENT_ELEMENTS
    if unknown:
        name = sorted(unknown)[0]
        hint = " (RAM policies have no Principal; that is for bucket policies)" if name == "Principal" else ""
        raise PolicyError(f"{where}: unknown element {name!r}{hint}")
    effect = body.get("Effect")
    if effect not in (ALLOW, DENY):
        raise PolicyError(f"{where}.Effect: {effect!r}; it is Allow or Deny")
    action_element = _exactly_one(body, "Action", "NotAction", where)
    resource_element = _exactly_one(body, "Resource", "NotResource", where)
    actions = _strings(body[action_element], f"{where}.{action_element}")
    for action in actions:
        problem = catalog.action_problem(action)
        if problem:
            raise PolicyError(f"{where}.{action_element}: {action!r} {problem}")
    resources = _strings(body[resource_element], f"{where}.{resource_element}")
    for resource in resources:
        problem = _resource_problem(resource)
        if problem:
            raise PolicyError(f"{where}.{resource_element}: {resource!r} {problem}")
    return Statement(
        where,
        effect,
        actions,
        action_element == "NotAction",
        resources,
        resource_element == "NotResource",
        _conditions(body.get("Condition"), catalog, f"{where}.Condition"),
    )


def _exactly_one(body: dict[str, Any], name: str, negated: str, where: str) -> str:
    present = [e for e in (name, negated) if e in body]
    if len(present) != 1:
        raise PolicyError(f"{where}: a statement has exactly one of {name} and {negated}")
    return present[0]


def _strings(value: Any, where: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
        raise PolicyError(f"{where}: a string or a non-empty list of strings, got {value!r}")
    return tuple(values)


def _resource_problem(resource: str) -> str:
    if resource == "*":
        return ""
    parts = resource.split(":", 4)
    if len(parts) != 5 or parts[0] != "acs" or not parts[1] or not parts[4]:
        return "is not `*` or acs:<service>:<region>:<account-id>:<relative id>"
    if parts[1] == "oss" and parts[2] != "*":
        return "names a region; OSS resources take only `*` there (acs:oss:*:<account-id>:<bucket>...)"
    return ""


_KINDS = {
    "string": "a string",
    "number": "a number",
    "date": "an ISO 8601 date and time",
    "bool": "true or false",
    "ip": "an IP address or CIDR block",
}
_OPERATORS: dict[str, tuple[ConditionKeyType, bool]] = {
    # operator -> (the key type it compares, whether it is negated)
    "StringEquals": ("string", False),
    "StringNotEquals": ("string", True),
    "StringEqualsIgnoreCase": ("string", False),
    "StringNotEqualsIgnoreCase": ("string", True),
    "StringLike": ("string", False),
    "StringNotLike": ("string", True),
    "NumericEquals": ("number", False),
    "NumericNotEquals": ("number", True),
    "NumericLessThan": ("number", False),
    "NumericLessThanEquals": ("number", False),
    "NumericGreaterThan": ("number", False),
    "NumericGreaterThanEquals": ("number", False),
    "DateEquals": ("date", False),
    "DateNotEquals": ("date", True),
    "DateLessThan": ("date", False),
    "DateLessThanEquals": ("date", False),
    "DateGreaterThan": ("date", False),
    "DateGreaterThanEquals": ("date", False),
    "Bool": ("bool", False),
    "IpAddress": ("ip", False),
    "NotIpAddress": ("ip", True),
}


def _conditions(block: Any, catalog: Catalog, where: str) -> tuple[Condition, ...]:
    if block is None:
        return ()
    if not isinstance(block, dict) or not block:
        raise PolicyError(f"{where}: a mapping of operators to {{key: values}}, got {block!r}")
    parsed: list[Condition] = []
    for operator, keys in block.items():
        if operator not in _OPERATORS:
            raise PolicyError(
                f"{where}: operator {operator!r} is not one the local cloud evaluates "
                f"({', '.join(sorted(_OPERATORS))})"
            )
        if not isinstance(keys, dict) or not keys:
            raise PolicyError(f"{where}.{operator}: a mapping of condition keys to values, got {keys!r}")
        wanted_type = _OPERATORS[operator][0]
        for key, raw in keys.items():
            key_type = catalog.condition_key_type(key)
            if key_type is None:
                raise PolicyError(
                    f"{where}.{operator}: condition key {key!r} is not one the local cloud evaluates "
                    f"({', '.join(catalog.condition_keys())})"
                )
            if key_type != wanted_type:
                raise PolicyError(
                    f"{where}.{operator}: {key!r} holds {_KINDS[key_type]}; {operator} compares "
                    f"{_KINDS[str(wanted_type)]}"
                )
            values = raw if isinstance(raw, list) else [raw]
            if not values or not all(isinstance(v, str | int | float | bool) for v in values):
                raise PolicyError(f"{where}.{operator}.{key}: a value or a list of values, got {raw!r}")
            texts = tuple(_condition_text(v) for v in values)
            for text in texts:
                _check_value(text, wanted_type, f"{where}.{operator}.{key}")
            parsed.append(Condition(operator, key, texts))
    return tuple(parsed)


def _condition_text(value: str | int | float | bool) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _check_value(text: str, key_type: str, where: str) -> None:
    try:
        if key_type == "number":
            float(text)
        elif key_type == "date":
            _date(text)
        elif key_type == "ip":
            ipaddress.ip_network(text, strict=False)
        elif key_type == "bool" and text.lower() not in ("true", "false"):
            raise ValueError(text)
    except ValueError as exc:
        raise PolicyError(f"{where}: {text!r} is not {_KINDS[key_type]}") from exc


# ---- matching -----------------------------------------------------------------------------------------


def _arn_matches(pattern: str, resource: str) -> bool:
    """`pattern` over the whole ARN: a `*` may run past a `:` into the next field."""
    return _wildcard(pattern, ignore_case=False)(resource)


def _resource_matches(pattern: str, resource: str) -> bool:
    """`pattern` field by field (acs:<service>:<region>:<account-id>:<relative id>): each `*` stays within
    its field. The relative id is everything after the fourth `:`, so a key's own `:` stays in it, and a
    bucket (whose name has no `:` or `/`) is always where the relative id starts."""
    if pattern == "*":
        return True
    wanted, have = pattern.split(":", 4), resource.split(":", 4)
    return len(wanted) == len(have) and all(
        _wildcard(w, ignore_case=False)(h) for w, h in zip(wanted, have, strict=True)
    )


@cache
def _wildcard(pattern: str, *, ignore_case: bool) -> Callable[[str], bool]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    compiled = re.compile(regex, re.DOTALL | (re.IGNORECASE if ignore_case else 0))
    return lambda text: compiled.fullmatch(text) is not None


def _date(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _compare(operator: str, have: str, want: str) -> bool:
    """Whether the request's value `have` matches one written value `want` under `operator`, taking the
    operator without its negation (StringNotEquals compares as StringEquals; the caller negates)."""
    base = {
        "StringNotEquals": "StringEquals",
        "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
        "StringNotLike": "StringLike",
        "NumericNotEquals": "NumericEquals",
        "DateNotEquals": "DateEquals",
        "NotIpAddress": "IpAddress",
    }.get(operator, operator)
    if base == "StringEquals":
        return have == want
    if base == "StringEqualsIgnoreCase":
        return have.lower() == want.lower()
    if base == "StringLike":
        return _wildcard(want, ignore_case=False)(have)
    if base == "Bool":
        return have.lower() == want.lower()
    if base == "IpAddress":
        try:
            return ipaddress.ip_address(have) in ipaddress.ip_network(want, strict=False)
        except ValueError:
            return False
    if base.startswith("Numeric"):
        left, right = float(have), float(want)
    else:
        left, right = _date(have).timestamp(), _date(want).timestamp()
    suffix = base.removeprefix("Numeric").removeprefix("Date")
    return {
        "Equals": left == right,
        "LessThan": left < right,
        "LessThanEquals": left <= right,
        "GreaterThan": left > right,
        "GreaterThanEquals": left >= right,
    }[suffix]


def _holds(condition: Condition, context: Mapping[str, str]) -> bool:
    negated = _OPERATORS[condition.operator][1]
    have = context.get(condition.key.lower())
    if have is None:
        return negated
    matched = any(_compare(condition.operator, have, want) for want in condition.values)
    return matched != negated


def _canonical_json(document: Any) -> str:
    import json

    return json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=str)
