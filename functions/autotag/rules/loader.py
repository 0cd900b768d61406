"""Load a rules file (JSON), check it against schemas/rules.schema.json and the limits of checks.py, and
compile it into a RuleSet. Every problem is one RulesError line naming the rule, the field and the limit it
breaks.

The functions read JSON only: FC's Python runtimes have no PyYAML, and the package stays lean. YAML is the
CLI's (`autotag rules check/push`, `plan`, `sweep`), which decodes it and hands the document to
`parse_rules`; `autotag rules push` uploads a YAML file's JSON form."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from ..facts import ObjectFacts
from ..ownership import DEFAULT_OWNERSHIP_TAG, Ownership
from . import engine
from .checks import (
    MAX_DEPTH,
    check_structure,
    literal_problems,
    schema_problem,
    size_bytes,
    ttl_seconds,
)
from .engine import Condition, Missing, RuleSet, TagOptions, TagRule, ValueSource

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_PLAIN_PLACEHOLDERS = {"key", "dirname", "filename", "stem", "extension"}
_FACT_PLACEHOLDERS = {"content_type": "content_type", "content_type_family": "content_type", "size": "size"}
_DATE_PARTS = {"year", "month", "day", "date", "weekday"}
MAX_FILE_BYTES = 1024 * 1024
YAML_SUFFIXES = (".yaml", ".yml")


class RulesError(ValueError):
    """The rules file cannot be used; the message names the rule and the field."""


@cache
def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        resources.files("autotag").joinpath("schemas/rules.schema.json").read_text()
    )
    return loaded


@cache
def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(_schema())


def _compile_regex(pattern: str, where: str) -> Any:
    import re2  # linear-time matching: keys are attacker-chosen, up to 1023 bytes

    options = re2.Options()
    options.log_errors = False  # RE2 would print its own lines (absl WARNING / E0000) to stderr
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        raw = exc.args[0] if exc.args else ""
        reason = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        reason = reason.split(": ", 1)[0]  # RE2 repeats the pattern after the reason
        raise RulesError(f"{where}: {pattern!r} is not a valid RE2 pattern ({reason})") from None


def _size(value: int | str) -> int:
    size = size_bytes(value)
    assert size is not None  # checks.literal_problems refused sizes beyond the limit
    return size


def _options(spec: dict[str, Any], inherited: TagOptions) -> TagOptions:
    ttl = spec.get("ttl")
    return TagOptions(
        priority=spec.get("priority", inherited.priority),
        conflict=spec.get("conflict", inherited.conflict),
        ttl_seconds=ttl_seconds(ttl) if ttl else inherited.ttl_seconds,
    )


class _Compiler:
    def __init__(self) -> None:
        self.needs: set[str] = set()

    # -- templates ----------------------------------------------------------------------------------------

    def template(self, text: str, captures: set[str], where: str) -> ValueSource:
        parts: list[str | tuple[str, str]] = []  # literal text, or (kind, name) placeholders
        position = 0
        for match in _PLACEHOLDER.finditer(text):
            parts.append(text[position : match.start()])
            position = match.end()
            if match[0] in ("{{", "}}"):
                parts.append(match[0][0])
                continue
            parts.append(self._placeholder(match[1].strip(), captures, where))
        parts.append(text[position:])
        leftover = _PLACEHOLDER.sub("", text)
        if "{" in leftover or "}" in leftover:
            raise RulesError(
                f"{where}: unbalanced brace in template {text!r} (write {{{{ or }}}} for a brace)"
            )

        def render(facts: Any, found: Any) -> str | Missing:
            out = []
            for part in parts:
                if isinstance(part, str):
                    out.append(part)
                    continue
                value = _resolve(part, facts, found)
                if value is None:
                    return Missing(f"{_shown(part)} has no value for this object")
                out.append(value)
            return "".join(out)

        return render

    def _placeholder(self, name: str, captures: set[str], where: str) -> tuple[str, str]:
        if name in captures:
            return ("capture", name)
        if name in _PLAIN_PLACEHOLDERS:
            return ("fact", name)
        if name in _FACT_PLACEHOLDERS:
            self.needs.add(_FACT_PLACEHOLDERS[name])
            return ("fact", name)
        if name.startswith("meta.") and len(name) > 5:
            self.needs.add("meta")
            return ("meta", name[5:].lower())
        if name.startswith("modified.") and name[9:] in _DATE_PARTS:
            self.needs.add("modified")
            return ("modified", name[9:])
        known = [
            *sorted(captures | _PLAIN_PLACEHOLDERS | set(_FACT_PLACEHOLDERS)),
            "meta.<name>",
            "modified.<part>",
        ]
        raise RulesError(f"{where}: unknown placeholder {{{name}}}; known: {', '.join(known)}")

    # -- value sources ------------------------------------------------------------------------------------

    def value(self, spec: str | dict[str, Any], captures: set[str], where: str) -> ValueSource:
        if isinstance(spec, str):
            return self.template(spec, captures, where)
        source = spec["from"]
        mapping: dict[str, str] | None = spec.get("map")
        default: str | None = spec.get("default")
        required = {
            "template": "template",
            "prefix": "map",
            "meta": "name",
            "size": "buckets",
            "modified": "part",
        }
        if source in required and required[source] not in spec:
            raise RulesError(f"{where}: `from: {source}` needs `{required[source]}`")
        if source == "template":
            return self.template(spec["template"], captures, where)
        if source == "prefix":
            assert mapping is not None
            by_length = sorted(mapping.items(), key=lambda item: -len(item[0]))

            no_prefix = Missing("the key starts with none of the map's prefixes; the rule gives no default")

            def longest_prefix(facts: Any, _c: Any) -> str | Missing:
                found = next((v for p, v in by_length if facts.key.startswith(p)), default)
                return found if found is not None else no_prefix

            return longest_prefix
        if source == "size":
            self.needs.add("size")
            buckets = [(_size(b["max"]) if "max" in b else None, b["value"]) for b in spec["buckets"]]

            def size_bucket(facts: Any, _c: Any) -> str | Missing:
                if facts.size is None:
                    return default if default is not None else Missing("the object's size is not known")
                found = next((v for limit, v in buckets if limit is None or facts.size <= limit), default)
                if found is None:
                    return Missing(f"no size bucket covers {facts.size} bytes, and the rule gives no default")
                return found

            return size_bucket
        raw: Callable[[Any, Any], str | None]
        if source == "extension":
            raw, what, absent = (
                (lambda facts, _c: facts.extension or None),
                "the key's extension",
                "the key has no extension",
            )
        elif source in ("content_type", "content_type_family"):
            self.needs.add("content_type")
            attribute = source
            raw, what = (lambda facts, _c: getattr(facts, attribute) or None), "the Content-Type"
            absent = "the object has no Content-Type"
        elif source == "meta":
            self.needs.add("meta")
            meta_name = spec["name"].lower().removeprefix("x-oss-meta-")
            raw, what = (lambda facts, _c: facts.user_meta.get(meta_name)), f"x-oss-meta-{meta_name}"
            absent = f"the object has no x-oss-meta-{meta_name}"
        else:  # modified
            self.needs.add("modified")
            part = spec["part"]
            raw, what = (lambda facts, _c: _date_part(facts, part)), f"Last-Modified's {part}"
            absent = "the object's Last-Modified is not known"
        return _mapped(raw, what, absent, mapping, default)

    # -- conditions ---------------------------------------------------------------------------------------

    def condition(self, spec: dict[str, Any], where: str) -> Condition:
        ((kind, value),) = spec.items()
        listed = [value] if isinstance(value, str) else value
        if kind == "all":
            return engine.all_of([self.condition(c, f"{where}.all[{i}]") for i, c in enumerate(value)])
        if kind == "any":
            return engine.any_of([self.condition(c, f"{where}.any[{i}]") for i, c in enumerate(value)])
        if kind == "not":
            return engine.negate(self.condition(value, f"{where}.not"))
        if kind == "prefix":
            return engine.key_prefix(listed)
        if kind == "suffix":
            return engine.key_suffix(listed)
        if kind == "extension":
            return engine.extension_in(listed)
        if kind == "key_regex":
            return engine.key_matches(_compile_regex(value, f"{where}.key_regex"))
        if kind == "content_type":
            self.needs.add("content_type")
            return engine.content_type_matches(listed)
        if kind == "size":
            self.needs.add("size")
            return engine.size_between(
                _size(value["min"]) if "min" in value else None,
                _size(value["max"]) if "max" in value else None,
            )
        self.needs.add("meta")
        return engine.meta_matches(value)

    def listing_condition(
        self, spec: dict[str, Any], where: str
    ) -> tuple[Condition | None, Condition | None]:
        """(exact, necessary) versions of a condition over the facts a listing shows (key, size): `exact`
        decides it (None when the listing cannot), `necessary` is false only when the condition is false."""
        ((kind, value),) = spec.items()
        if kind in ("all", "any"):
            parts = [self.listing_condition(c, where) for c in value]
            exacts = [e for e, _ in parts if e is not None]
            necessary = [n for _, n in parts if n is not None]
            combine = engine.all_of if kind == "all" else engine.any_of
            exact = combine(exacts) if len(exacts) == len(parts) else None
            if kind == "all":
                return exact, engine.all_of(necessary) if necessary else None
            return exact, engine.any_of(necessary) if len(necessary) == len(parts) else None
        if kind == "not":
            inner, _ = self.listing_condition(value, where)
            negated = engine.negate(inner) if inner is not None else None
            return negated, negated
        if kind in ("content_type", "meta"):
            return None, None
        leaf = self.condition(spec, where)
        return leaf, leaf


def _resolve(part: tuple[str, str], facts: ObjectFacts, captures: Mapping[str, str]) -> str | None:
    kind, name = part
    if kind == "capture":
        return captures.get(name)
    if kind == "meta":
        return facts.user_meta.get(name)
    if kind == "modified":
        return _date_part(facts, name)
    value = getattr(facts, name)
    return None if value is None else str(value)


def _date_part(facts: Any, part: str) -> str | None:
    moment = facts.last_modified
    if moment is None:
        return None
    formats = {"year": "%Y", "month": "%m", "day": "%d", "date": "%Y-%m-%d", "weekday": "%A"}
    return str(moment.strftime(formats[part]))


def _mapped(
    raw: Callable[[Any, Any], str | None],
    what: str,
    absent: str,
    mapping: dict[str, str] | None,
    default: str | None,
) -> ValueSource:
    def value(facts: Any, captures: Any) -> str | Missing:
        found = raw(facts, captures)
        if found is not None and mapping is not None:
            mapped = mapping.get(found, default)
            if mapped is None:
                return Missing(f"{what} {found!r} is not in the map, and the rule gives no default")
            return mapped
        if found is not None:
            return found
        if default is not None:
            return default
        return Missing(f"{absent}, and the rule gives no default")

    return value


def _shown(part: tuple[str, str]) -> str:
    """A placeholder as the rules file writes it."""
    kind, name = part
    return "{" + (f"{kind}.{name}" if kind in ("meta", "modified") else name) + "}"


def _located(document: Any, path: list[Any]) -> str:
    """`rule 'name' (rules[2]).tags.k` for a path into the document."""
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
        rule = document["rules"][path[1]]
        name = rule.get("name") if isinstance(rule, dict) else None
        if isinstance(name, str):
            rest = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[2:])
            return f"rule {name!r} (rules[{path[1]}]){rest}"
    return text or "(the file)"


def _problem(document: Any) -> str:
    """The first thing wrong with the document, located and worded by its limit ("" when none is)."""
    import jsonschema

    structure = check_structure(document)
    if structure:
        return structure
    error = jsonschema.exceptions.best_match(_validator().iter_errors(document))
    if error is not None:
        return f"{_located(document, list(error.absolute_path))}: {schema_problem(error, _schema()['$defs'])}"
    for where, problem in literal_problems(document):
        path: list[Any] = [int(p) if p.isdigit() else p for p in re.split(r"[.\[\]]+", where) if p]
        return f"{_located(document, path)}: {problem}"
    return ""


def parse_rules(document: Any, source: str = "rules", record_secrets: tuple[str, ...] = ()) -> RuleSet:
    """Check and compile an already-decoded rules document; `record_secrets` key the ownership record's
    seal (the environment's AUTOTAG_RECORD_SECRET)."""
    problem = _problem(document)
    if problem:
        raise RulesError(f"{source}: {problem}")
    compiler = _Compiler()
    defaults_spec = document.get("defaults", {})
    defaults = _options(defaults_spec, TagOptions())
    ownership = Ownership(
        document.get("ownership_tag", DEFAULT_OWNERSHIP_TAG),
        frozenset(document.get("protected_keys", [])),
        record_secrets,
    )
    rules: list[engine.Rule] = []
    seen: set[str] = set()
    try:
        for index, spec in enumerate(document["rules"]):
            where = f"rule {spec['name']!r} (rules[{index}])"
            if spec["name"] in seen:
                raise RulesError(f"{where}: another rule already has this name")
            seen.add(spec["name"])
            key_regex = (
                _compile_regex(spec["key_regex"], f"{where}.key_regex") if "key_regex" in spec else None
            )
            captures = set(key_regex.groupindex) if key_regex is not None else set()
            rule_options = _options(spec, defaults)
            tags = tuple(
                TagRule(
                    key,
                    compiler.value(tag_spec, captures, f"{where}.tags.{key}"),
                    _options(tag_spec, rule_options) if isinstance(tag_spec, dict) else rule_options,
                )
                for key, tag_spec in spec["tags"].items()
            )
            when, listing_filter = None, None
            if "when" in spec:
                when = compiler.condition(spec["when"], f"{where}.when")
                listing_filter = compiler.listing_condition(spec["when"], f"{where}.when")[1]
            for tag in tags:
                if tag.key == ownership.tag:
                    raise RulesError(f"{where}.tags.{tag.key}: {tag.key!r} is the ownership record's key")
            definition = json.dumps(
                {"rule": {k: v for k, v in spec.items() if k != "description"}, "defaults": defaults_spec},
                sort_keys=True,
            )
            rules.append(engine.Rule(spec["name"], index, key_regex, when, tags, listing_filter, definition))
    except RulesError as exc:
        raise RulesError(f"{source}: {exc}") from None
    fingerprint = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:16]
    return RuleSet(tuple(rules), fingerprint, frozenset(compiler.needs), ownership)


def is_yaml_name(name: str) -> bool:
    return name.lower().endswith(YAML_SUFFIXES)


def yaml_refused(source: str) -> RulesError:
    return RulesError(
        f"{source}: the functions read rules as JSON, not YAML (FC's Python runtimes have no PyYAML); "
        "`autotag rules push FILE.yaml --to oss://BUCKET/KEY.json` uploads a YAML file's JSON form"
    )


def too_big(source: str, size: int | None) -> RulesError:
    size_text = f"this one is {size} bytes" if size is not None else "this one is larger"
    return RulesError(f"{source}: a rules file is at most 1 MiB; {size_text}")


def read_rules_file(path: str | Path) -> bytes:
    """The bytes of the rules file at `path`, refusing more than MAX_FILE_BYTES whatever the file is (a
    device, a pipe or `/dev/stdin` reports size 0): at most MAX_FILE_BYTES + 1 bytes are read."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise RulesError(f"{path}: cannot read the rules file: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        try:
            size: int | None = path.stat().st_size if path.is_file() else None
        except OSError:
            size = None
        raise too_big(str(path), size)
    return data


def load_rules(path: str | Path, record_secrets: tuple[str, ...] = ()) -> RuleSet:
    """Read, check and compile the JSON rules file at `path` (a .yaml/.yml name is refused, naming why)."""
    if is_yaml_name(str(path)):
        raise yaml_refused(str(path))
    return rules_from_bytes(read_rules_file(path), str(path), record_secrets)


def decode_text(data: bytes, source: str) -> str:
    if len(data) > MAX_FILE_BYTES:
        raise too_big(source, len(data))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RulesError(f"{source}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def rules_from_bytes(data: bytes, source: str, record_secrets: tuple[str, ...] = ()) -> RuleSet:
    """Check and compile a JSON rules file's bytes; `source` names it in errors."""
    text = decode_text(data, source)
    try:
        document = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise RulesError(f"{source}: the document nests more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # json.JSONDecodeError, or a NaN / Infinity
        raise _json_error(source, exc) from None
    return parse_rules(document, source, record_secrets)


def _no_constant(name: str) -> Any:
    """Python's json reads NaN and Infinity, which JSON has not (nor do rules have a use for them)."""
    raise ValueError(f"{name} is not a JSON number")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A key twice in one object: JSON readers keep one of them silently (which one differs), so a rule
    would not be what its author reads."""
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"{key!r} appears twice in one object")
        document[key] = value
    return document


def _json_error(source: str, exc: ValueError) -> RulesError:
    if isinstance(exc, json.JSONDecodeError):
        return RulesError(f"{source}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    return RulesError(f"{source}: not valid JSON: {exc}")
