"""What a rules document must satisfy beyond its shape, and how problems are worded (pure).

`check_structure` bounds what no real rules file needs (nesting, expansion: a YAML alias bomb) before
anything walks the document recursively. `schema_problem` words the first JSON Schema violation in terms of
the limit it breaks ("at most 10 tags per rule", "unknown field `tll` (did you mean `ttl`?)"), and
`literal_problems` refuses what can be known at load: literal values and keys OSS would refuse or that can
never fit, sizes and TTLs no object or clock reaches."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import Any

from ..oss_tags import MAX_KEY_LENGTH, MAX_TAGS, MAX_VALUE_LENGTH

MAX_NODES = 100_000  # values in the whole document, aliases expanded
MAX_DEPTH = 100  # nesting of the whole document
MAX_CONDITION_DEPTH = 32  # nesting of `all` / `any` / `not`
MAX_SIZE = 10**15  # 1 PB: above any OSS object (48.8 TB)
MAX_TTL_SECONDS = 36_500 * 86_400  # 100 years
CHARSET = "letters, digits, spaces and + - = . _ : /"
KEY_CHARSET = "letters, digits and + - = . _ : / (no space: the ownership record separates keys with spaces)"
_TEXT = re.compile(r"[\w +\-=.:/]*")
_KEY = re.compile(r"[\w+\-=.:/]+")
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{[^{}]*\}")
SIZE_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}
TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def check_structure(document: Any) -> str:
    """Why `document` is too deep or too large to be a rules file ("" when it is not). Iterative, and it
    stops counting at the limits, so shared (aliased) subtrees cannot make it slow."""
    condition_depth = _deepest_condition(document)
    if condition_depth > MAX_CONDITION_DEPTH:
        return f"conditions nest at most {MAX_CONDITION_DEPTH} levels deep"
    nodes = 0
    pending: list[tuple[Any, int]] = [(document, 0)]
    while pending:
        node, depth = pending.pop()
        nodes += 1
        if nodes > MAX_NODES:
            return f"the document holds more than {MAX_NODES} values (YAML aliases expand to copies)"
        if isinstance(node, dict | list):
            if depth >= MAX_DEPTH:
                return f"the document nests more than {MAX_DEPTH} levels deep"
            pending.extend(
                (child, depth + 1) for child in (node.values() if isinstance(node, dict) else node)
            )
    return ""


def _deepest_condition(document: Any) -> int:
    rules = document.get("rules") if isinstance(document, dict) else None
    deepest = 0
    for rule in rules if isinstance(rules, list) else []:
        pending = [(rule.get("when"), 1)] if isinstance(rule, dict) and "when" in rule else []
        while pending:
            condition, depth = pending.pop()
            deepest = max(deepest, depth)
            if depth > MAX_CONDITION_DEPTH or not isinstance(condition, dict):
                continue
            for kind, inner in condition.items():
                if kind == "not":
                    pending.append((inner, depth + 1))
                elif kind in ("all", "any") and isinstance(inner, list):
                    pending.extend((child, depth + 1) for child in inner)
    return deepest


# ---- JSON Schema errors in the words of the limit --------------------------------------------------------


def schema_problem(error: Any, defs: dict[str, Any]) -> str:
    """One line for a jsonschema ValidationError: what is wrong, in the terms of the limit."""
    validator, schema, instance = error.validator, error.schema, error.instance
    if validator == "additionalProperties":
        known = sorted(schema.get("properties", {}))
        extra = sorted(set(instance) - set(known)) if isinstance(instance, dict) else []
        field = str(extra[0]) if extra else "?"
        close = difflib.get_close_matches(field, known, n=1, cutoff=0.6)
        hint = f"did you mean `{close[0]}`?" if close else f"known: {', '.join(known)}"
        return f"unknown field `{field}` ({hint})"
    if schema == defs.get("tagKey") or (validator == "propertyNames"):
        if validator == "maxLength":
            return f"a tag key is at most {MAX_KEY_LENGTH} characters; {str(instance)[:40]!r}… is longer"
        if validator == "minLength":
            return "a tag key has at least one character"
        return f"a tag key may hold only {KEY_CHARSET}; {str(instance)[:40]!r} does not"
    if validator == "maxProperties" and "additionalProperties" in schema and "propertyNames" in schema:
        return f"at most {MAX_TAGS} tags per rule"
    if validator == "minProperties" and "propertyNames" in schema:
        return "a rule sets at least one tag"
    if schema == defs.get("ttl"):
        return "a ttl is a whole number and a unit, such as 7d (s, m, h, d or w)"
    if schema == defs.get("size") or (validator == "pattern" and "KiB" in str(schema.get("pattern"))):
        return "a size is a whole number of bytes, or a number with a unit such as 10MiB or 1.5GB"
    if validator == "enum":
        return f"{instance!r} is not one of {', '.join(map(str, schema['enum']))}"
    if validator == "const":
        return f"must be {schema['const']!r}"
    if validator == "required":
        missing = [name for name in schema["required"] if name not in instance]
        return f"needs `{missing[0] if missing else schema['required'][0]}`"
    if validator == "type":
        return f"must be {_kind(schema['type'])}, not {_kind(_type_of(instance))}"
    if validator in ("minimum", "maximum"):
        bound = "at least" if validator == "minimum" else "at most"
        return f"must be {bound} {schema[validator]}; {instance!r} is not"
    if validator == "pattern" and schema.get("pattern", "").startswith("^[A-Za-z0-9]"):
        return "a rule name is 1-64 letters, digits and `_ . -`, starting with a letter or digit"
    if validator == "oneOf" and schema == defs.get("tagSpec"):
        return "a tag's value is a template (a string) or an object with `from`"
    if validator == "oneOf" and schema == defs.get("strings"):
        return "must be a string, or a list of strings"
    if validator == "oneOf":
        return f"{repr(instance)[:40]} is not a value this field takes (docs/rules.md lists them)"
    if validator == "minItems":
        return (
            "a rules file has at least one rule"
            if list(error.absolute_path) == ["rules"]
            else ("needs at least one entry")
        )
    if validator in ("minProperties", "maxProperties") and schema == defs.get("condition"):
        return "a condition has exactly one of all, any, not, prefix, suffix, extension, key_regex, " + (
            "content_type, size, meta"
        )
    return " ".join(str(error.message).split())[:200]


def _type_of(value: Any) -> str:
    for name, kind in (("boolean", bool), ("integer", int), ("number", float), ("string", str)):
        if isinstance(value, kind):
            return name
    return "object" if isinstance(value, dict) else "array" if isinstance(value, list) else "null"


def _kind(name: Any) -> str:
    if isinstance(name, list):
        return " or ".join(_kind(n) for n in name)
    return {"object": "an object", "array": "a list", "integer": "a whole number"}.get(name, f"a {name}")


# ---- what is known at load -----------------------------------------------------------------------------


def key_problem(key: str) -> str:
    if len(key) > MAX_KEY_LENGTH:
        return f"a tag key is at most {MAX_KEY_LENGTH} characters; {key[:40]!r}… is longer"
    if not _KEY.fullmatch(key):
        return f"a tag key may hold only {KEY_CHARSET}; {key[:40]!r} does not"
    return ""


def value_problem(value: str, *, fixed: bool) -> str:
    """Why a literal value (or, `fixed=False`, the literal text of a template) can never be written."""
    length = len(value)
    if length > MAX_VALUE_LENGTH:
        what = "this one" if fixed else "this template's own text alone"
        return f"a tag value is at most {MAX_VALUE_LENGTH} characters; {what} is {length}"
    if not _TEXT.fullmatch(value):
        return f"a tag value may hold only {CHARSET}; {value[:40]!r} does not"
    return ""


def template_literal(template: str) -> tuple[str, bool]:
    """The template's literal text (`{{` and `}}` unescaped) and whether it has no placeholder at all."""
    found = _PLACEHOLDER.findall(template)
    literal = _PLACEHOLDER.sub(lambda m: m[0][0] if m[0] in ("{{", "}}") else "", template)
    return literal, all(f in ("{{", "}}") for f in found)


def size_bytes(value: int | str) -> int | None:
    """The size in bytes, or None when it is beyond MAX_SIZE (the schema guarantees the shape)."""
    if isinstance(value, int):
        return value if value <= MAX_SIZE else None
    match = re.fullmatch(r"([0-9]+)(?:\.([0-9]+))?\s*([A-Za-z]*)", value.strip())
    if match is None or len(match[1]) > 16:
        return None
    whole, fraction, unit = int(match[1]), match[2] or "", SIZE_UNITS[match[3].upper()]
    size = (
        whole * unit + (int(fraction[:18]) * unit) // 10 ** len(fraction[:18]) if fraction else whole * unit
    )
    return size if size <= MAX_SIZE else None


def ttl_seconds(ttl: str) -> int | None:
    """The TTL in seconds, or None when it is beyond MAX_TTL_SECONDS (the schema guarantees the shape)."""
    seconds = int(ttl[:-1]) * TTL_UNITS[ttl[-1]]
    return seconds if seconds <= MAX_TTL_SECONDS else None


def literal_problems(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, problem) for literal keys, values, sizes and TTLs that can never work; `where` is relative
    to the document (`rules[0].tags.k.map.jpg`)."""
    for name in ("ownership_tag",):
        if name in document and (problem := key_problem(document[name])):
            yield name, problem
    for index, key in enumerate(document.get("protected_keys", [])):
        if problem := key_problem(key):
            yield f"protected_keys[{index}]", problem
    yield from _ttl_problems(document.get("defaults", {}), "defaults")
    for index, rule in enumerate(document["rules"]):
        where = f"rules[{index}]"
        yield from _ttl_problems(rule, where)
        for key, spec in rule["tags"].items():
            tag_where = f"{where}.tags.{key}"
            if problem := key_problem(key):
                yield f"{where}.tags", problem
            if isinstance(spec, str):
                yield from _template_problems(spec, tag_where)
                continue
            yield from _ttl_problems(spec, tag_where)
            if "template" in spec:
                yield from _template_problems(spec["template"], f"{tag_where}.template")
            if "default" in spec and (problem := value_problem(spec["default"], fixed=True)):
                yield f"{tag_where}.default", problem
            for found, mapped in spec.get("map", {}).items():
                if problem := value_problem(mapped, fixed=True):
                    yield f"{tag_where}.map.{found}", problem
            for number, bucket in enumerate(spec.get("buckets", [])):
                if problem := value_problem(bucket["value"], fixed=True):
                    yield f"{tag_where}.buckets[{number}].value", problem
                if "max" in bucket and size_bytes(bucket["max"]) is None:
                    yield f"{tag_where}.buckets[{number}].max", _size_problem(bucket["max"])
        if "when" in rule:
            yield from _size_conditions(rule["when"], f"{where}.when")


def _template_problems(template: str, where: str) -> Iterator[tuple[str, str]]:
    if "{" in _PLACEHOLDER.sub("", template) or "}" in _PLACEHOLDER.sub("", template):
        return  # an unbalanced brace: the template compiler says so
    literal, fixed = template_literal(template)
    if problem := value_problem(literal, fixed=fixed):
        yield where, problem


def _ttl_problems(spec: dict[str, Any], where: str) -> Iterator[tuple[str, str]]:
    ttl = spec.get("ttl")
    if ttl and ttl_seconds(ttl) is None:
        yield f"{where}.ttl", f"a ttl is at most 100 years (36500d); {ttl!r} is more"


def _size_problem(value: Any) -> str:
    return f"a size is at most 1 PB (OSS objects are at most 48.8 TB); {str(value)[:24]}… is more"


def _size_conditions(condition: dict[str, Any], where: str) -> Iterator[tuple[str, str]]:
    pending = [(condition, where)]
    while pending:
        current, path = pending.pop()
        for kind, inner in current.items():
            if kind == "not":
                pending.append((inner, f"{path}.not"))
            elif kind in ("all", "any"):
                pending.extend((child, f"{path}.{kind}[{i}]") for i, child in enumerate(inner))
            elif kind == "size":
                for bound in ("min", "max"):
                    if bound in inner and size_bytes(inner[bound]) is None:
                        yield f"{path}.size.{bound}", _size_problem(inner[bound])
