"""Flow definitions (CloudFlow's FDL, `SpecVersion: v1`), parsed and checked the way the local CloudFlow
runs them (pure).

`parse_definition(text)` reads the YAML or JSON a CreateFlow carries and returns a `Flow`, or raises
DefinitionError with one line naming the field, e.g.
`States[0].ItemReader.SourceType: 'FOO' is not supported (supported: OSS_CSV, ...)`. What is understood:
states Pass, Task (FC:InvokeFunction, RequestComplete, with Retry and Catch), Succeed, Fail and a
distributed Map (ItemReader, ItemBatcher, ItemConstructor, ResultWriter, MaxConcurrency, tolerated
failures, a Processor of the same states). Everything else is refused, never ignored. docs/cloudflow.md
lists each field with its source."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from .expressions import ExpressionError, check_constructor, check_expression, construct, evaluate

MAX_DEFINITION_BYTES = 1024 * 1024  # CloudFlow's maximum request size, 1,024 KiB
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,127}")  # flows and executions: CloudFlow's naming rules
SOURCE_TYPES = ("OSS_CSV", "OSS_INVENTORY_FILES", "OSS_JSON_LIST", "OSS_OBJECTS")
EXECUTION_MODES = ("Express", "Standard")
MAX_INTERVAL_SECONDS = 86400  # Retry IntervalSeconds and MaxBackoffSeconds: at most 86,400
MAX_CONCURRENCY = 10000  # a distributed Map runs up to 10,000 sub-workflows at once
# FC 2.0's function ARN, as the local FC (FC API 2016-08-15) names functions
_FUNCTION_ARN = re.compile(
    r"acs:fc:(?P<region>[a-z0-9-]*):(?P<account>[0-9]*):services/(?P<service>[A-Za-z_][A-Za-z0-9_-]*)"
    r"(?:\.(?P<qualifier>[A-Za-z0-9_-]+))?/functions/(?P<function>[A-Za-z_][A-Za-z0-9_-]*)"
)
_COMMON = frozenset({"Name", "Type", "Description", "Next", "End", "InputConstructor", "OutputConstructor"})
_FIELDS = {
    "Pass": _COMMON,
    "Succeed": frozenset({"Name", "Type", "Description", "InputConstructor", "OutputConstructor"}),
    "Fail": frozenset({"Name", "Type", "Description", "Code", "Detail"}),
    "Task": _COMMON | {"Action", "TaskMode", "Parameters", "Retry", "Catch"},
    "Map": _COMMON
    | {"ItemsPath", "ItemReader", "ItemBatcher", "ItemConstructor", "ResultWriter", "ProcessorConfig"}
    | {"Processor", "MaxConcurrency", "ToleratedFailurePercentage", "ToleratedFailureCount"}
    | {"MaxConcurrency.$", "ToleratedFailurePercentage.$", "ToleratedFailureCount.$"}
    | {"Retry", "Catch"},
}
_IN, _OUT, _ITEM = (
    frozenset({"Input", "Context"}),
    frozenset({"Input", "Output", "Context"}),
    frozenset({"Item", "Input", "Context"}),
)


class DefinitionError(ValueError):
    """A definition the local CloudFlow refuses; the message is one line naming the field."""


@dataclass(frozen=True)
class Retry:
    errors: tuple[str, ...]
    max_attempts: int
    interval_seconds: float
    backoff_rate: float = 1.0
    max_backoff_seconds: float | None = None

    def delay(self, attempt: int) -> float:
        """Seconds before retry number `attempt` (1-based)."""
        seconds = self.interval_seconds * self.backoff_rate ** (attempt - 1)
        return min(seconds, self.max_backoff_seconds) if self.max_backoff_seconds is not None else seconds


@dataclass(frozen=True)
class Catch:
    errors: tuple[str, ...]
    next: str
    output_constructor: dict[str, Any] | None = None


@dataclass(frozen=True)
class FunctionTarget:
    service: str
    function: str
    qualifier: str
    invocation_type: str  # Sync or Async
    body: Any  # a constant, or a constructor / expression over $Input and $Context
    body_expression: str  # set when the body is one expression (`body.$`)


@dataclass(frozen=True)
class ItemReader:
    source_type: str
    bucket: str
    prefix: str = ""  # OSS_OBJECTS
    object_name: str = ""  # OSS_CSV, OSS_JSON_LIST, OSS_INVENTORY_FILES (its manifest.json)
    csv_headers: tuple[str, ...] = ()
    dynamic: bool = False  # its SourceParameters hold expressions: resolve_map gives the values


@dataclass(frozen=True)
class ItemBatcher:
    max_items: int | None
    max_bytes: int | None
    batch_input: dict[str, Any] | None


@dataclass(frozen=True)
class States:
    start_at: str
    states: dict[str, State]


@dataclass(frozen=True)
class MapSpec:
    processor: States
    execution_mode: str
    items_path: str = ""
    reader: ItemReader | None = None
    batcher: ItemBatcher | None = None
    item_constructor: dict[str, Any] | None = None
    result_bucket: str = ""
    result_prefix: str = ""
    max_concurrency: int = 0  # 0: CloudFlow's default, as many as it allows
    tolerated_percentage: float | None = None
    tolerated_count: int | None = None
    # Set when a field is an expression over the Map's input (`Bucket.$`, `MaxConcurrency.$`, ...):
    # `resolve_map` evaluates them when the Map starts. The definition as written, to do that with.
    dynamic: bool = False
    source: dict[str, Any] = field(compare=False, default_factory=dict)


@dataclass(frozen=True)
class State:
    name: str
    type: str
    next: str = ""
    end: bool = False
    input_constructor: dict[str, Any] | None = None
    output_constructor: dict[str, Any] | None = None
    task: FunctionTarget | None = None
    map: MapSpec | None = None
    retry: tuple[Retry, ...] = ()
    catch: tuple[Catch, ...] = ()
    fail_code: str = ""
    fail_detail: str = ""


@dataclass(frozen=True)
class Flow:
    name: str
    body: States
    source: dict[str, Any] = field(compare=False, default_factory=dict)


def parse_definition(text: str) -> Flow:
    if len(text.encode()) > MAX_DEFINITION_BYTES:
        raise DefinitionError(f"Definition: {len(text.encode())} bytes; at most {MAX_DEFINITION_BYTES}")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        raise DefinitionError(f"Definition: not YAML or JSON{at}") from None
    if not isinstance(document, dict):
        raise DefinitionError("Definition: must be an object with Type, SpecVersion, StartAt and States")
    _only(document, {"Type", "Name", "SpecVersion", "StartAt", "States", "Comment", "Description"}, "")
    if document.get("Type") != "StateMachine":
        raise DefinitionError(f"Type: {document.get('Type')!r} is not supported (supported: StateMachine)")
    if document.get("SpecVersion") != "v1":
        raise DefinitionError(
            f"SpecVersion: {document.get('SpecVersion')!r} is not supported (supported: v1)"
        )
    name = document.get("Name", "")
    if name and not (isinstance(name, str) and NAME.fullmatch(name)):
        raise DefinitionError(f"Name: {str(name)[:80]!r} is not a flow name")
    return Flow(str(name or ""), _states(document, ""), document)


def _states(document: dict[str, Any], where: str) -> States:
    start = document.get("StartAt")
    listed = document.get("States")
    if not isinstance(listed, list) or not listed:
        raise DefinitionError(f"{where}States: must be a non-empty list of states")
    states: dict[str, State] = {}
    for index, raw in enumerate(listed):
        state = _state(raw, f"{where}States[{index}]")
        if state.name in states:
            raise DefinitionError(f"{where}States[{index}].Name: {state.name!r} is used twice")
        states[state.name] = state
    if not isinstance(start, str) or start not in states:
        raise DefinitionError(f"{where}StartAt: {start!r} names no state")
    for index, state in enumerate(states.values()):
        targets = [state.next] + [c.next for c in state.catch]
        for target in filter(None, targets):
            if target not in states:
                raise DefinitionError(f"{where}States[{index}].Next: {target!r} names no state")
    return States(start, states)


def _only(raw: dict[str, Any], allowed: frozenset[str] | set[str], where: str) -> None:
    for key in raw:
        if key not in allowed:
            listed = ", ".join(sorted(allowed))
            raise DefinitionError(
                f"{where}{key}: is not supported by the local CloudFlow (supported: {listed})"
            )


def _text(raw: dict[str, Any], key: str, where: str, required: bool = True) -> str:
    value = raw.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value:
        raise DefinitionError(f"{where}.{key}: must be a non-empty string")
    return value


def _integer(raw: dict[str, Any], key: str, where: str, low: int, high: int) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise DefinitionError(f"{where}.{key}: {value!r} is not an integer from {low} to {high}")
    return value


def _constructor(raw: dict[str, Any], key: str, where: str, roots: frozenset[str]) -> dict[str, Any] | None:
    value = raw.get(key)
    if value is None:
        return None
    try:
        check_constructor(value, f"{where}.{key}", roots)
    except ExpressionError as error:
        raise DefinitionError(str(error)) from None
    return dict(value)


def _state(raw: Any, where: str) -> State:
    if not isinstance(raw, dict):
        raise DefinitionError(f"{where}: a state must be an object")
    kind = raw.get("Type")
    if kind not in _FIELDS:
        raise DefinitionError(
            f"{where}.Type: {kind!r} is not supported (supported: {', '.join(sorted(_FIELDS))})"
        )
    _only(raw, _FIELDS[kind], f"{where}.")
    name = _text(raw, "Name", where)
    terminal = kind in ("Succeed", "Fail")
    nxt, end = raw.get("Next"), raw.get("End", False)
    if not terminal and not ((isinstance(nxt, str) and nxt) != (end is True)):
        raise DefinitionError(f"{where}: a {kind} state needs exactly one of Next and End: true")
    common: dict[str, Any] = {
        "name": name,
        "type": kind,
        "next": nxt or "",
        "end": end is True,
        "input_constructor": _constructor(raw, "InputConstructor", where, _IN),
        "output_constructor": _constructor(raw, "OutputConstructor", where, _OUT),
    }
    if kind == "Fail":
        return State(**common, fail_code=str(raw.get("Code", "")), fail_detail=str(raw.get("Detail", "")))
    retry, catch = _retries(raw.get("Retry"), f"{where}.Retry"), _catches(raw.get("Catch"), f"{where}.Catch")
    if kind == "Task":
        return State(**common, task=_task(raw, where), retry=retry, catch=catch)
    if kind == "Map":
        return State(**common, map=_map(raw, where), retry=retry, catch=catch)
    return State(**common)


def _errors(raw: dict[str, Any], where: str) -> tuple[str, ...]:
    errors = raw.get("Errors")
    if not isinstance(errors, list) or not errors or not all(isinstance(e, str) and e for e in errors):
        raise DefinitionError(f"{where}.Errors: must be a non-empty list of error names (FnF.ALL: any)")
    return tuple(errors)


def _retries(raw: Any, where: str) -> tuple[Retry, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise DefinitionError(f"{where}: must be a list of retry rules")
    rules = []
    for index, rule in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(rule, dict):
            raise DefinitionError(f"{at}: a retry rule must be an object")
        _only(
            rule,
            {"Errors", "Description", "MaxAttempts", "IntervalSeconds", "BackoffRate", "MaxBackoffSeconds"},
            f"{at}.",
        )
        attempts = _integer(rule, "MaxAttempts", at, 0, 1000)
        interval = _integer(rule, "IntervalSeconds", at, 0, MAX_INTERVAL_SECONDS)
        if attempts is None or interval is None:
            raise DefinitionError(f"{at}: MaxAttempts and IntervalSeconds are required")
        rate = rule.get("BackoffRate", 1.0)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate < 1:
            raise DefinitionError(f"{at}.BackoffRate: {rate!r} is not a number of at least 1")
        ceiling = _integer(rule, "MaxBackoffSeconds", at, 1, MAX_INTERVAL_SECONDS)
        rules.append(Retry(_errors(rule, at), attempts, float(interval), float(rate), ceiling))
    return tuple(rules)


def _catches(raw: Any, where: str) -> tuple[Catch, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise DefinitionError(f"{where}: must be a list of catch rules")
    rules = []
    for index, rule in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(rule, dict):
            raise DefinitionError(f"{at}: a catch rule must be an object")
        _only(rule, {"Errors", "Description", "Next", "OutputConstructor"}, f"{at}.")
        rules.append(
            Catch(
                _errors(rule, at), _text(rule, "Next", at), _constructor(rule, "OutputConstructor", at, _IN)
            )
        )
    return tuple(rules)


def _task(raw: dict[str, Any], where: str) -> FunctionTarget:
    action = raw.get("Action")
    if action != "FC:InvokeFunction":
        raise DefinitionError(f"{where}.Action: {action!r} is not supported (supported: FC:InvokeFunction)")
    mode = raw.get("TaskMode", "RequestComplete")
    if mode != "RequestComplete":
        raise DefinitionError(f"{where}.TaskMode: {mode!r} is not supported (supported: RequestComplete)")
    parameters = raw.get("Parameters")
    at = f"{where}.Parameters"
    if not isinstance(parameters, dict):
        raise DefinitionError(f"{at}: must be an object with resourceArn (and invocationType, body)")
    _only(parameters, {"resourceArn", "invocationType", "body", "body.$"}, f"{at}.")
    arn = _text(parameters, "resourceArn", at)
    match = _FUNCTION_ARN.fullmatch(arn)
    if not match:
        raise DefinitionError(
            f"{at}.resourceArn: {arn[:120]!r} is not a function ARN "
            "(acs:fc:<region>:<account-id>:services/<service>[.<qualifier>]/functions/<function>)"
        )
    invocation = parameters.get("invocationType", "Sync")
    if invocation not in ("Sync", "Async"):
        raise DefinitionError(
            f"{at}.invocationType: {invocation!r} is not supported (supported: Async, Sync)"
        )
    expression = parameters.get("body.$", "")
    body = parameters.get("body")
    try:
        if expression:
            check_expression(expression, f"{at}.body.$", _IN)
        elif isinstance(body, dict):
            check_constructor(body, f"{at}.body", _IN)
    except ExpressionError as error:
        raise DefinitionError(str(error)) from None
    return FunctionTarget(
        match["service"], match["function"], match["qualifier"] or "LATEST", invocation, body, expression
    )


def _map(raw: dict[str, Any], where: str) -> MapSpec:
    config = raw.get("ProcessorConfig")
    if not isinstance(config, dict) or config.get("ExecutionMode") not in EXECUTION_MODES:
        shown = config.get("ExecutionMode") if isinstance(config, dict) else None
        raise DefinitionError(
            f"{where}.ProcessorConfig.ExecutionMode: {shown!r} is not supported (supported: Express, "
            "Standard; the local CloudFlow runs Map states in distributed mode only)"
        )
    _only(config, {"ExecutionMode"}, f"{where}.ProcessorConfig.")
    processor = raw.get("Processor")
    if not isinstance(processor, dict):
        raise DefinitionError(f"{where}.Processor: must be an object with StartAt and States")
    _only(processor, {"StartAt", "States"}, f"{where}.Processor.")
    body = _states(processor, f"{where}.Processor.")
    for index, inner in enumerate(body.states.values()):
        if inner.type == "Map":
            raise DefinitionError(
                f"{where}.Processor.States[{index}].Type: a Map inside a Map is not supported"
            )
    reader = _reader(raw.get("ItemReader"), f"{where}.ItemReader") if "ItemReader" in raw else None
    items_path = raw.get("ItemsPath", "")
    if reader is None:
        try:
            check_expression(items_path, f"{where}.ItemsPath", _IN)
        except ExpressionError as error:
            raise DefinitionError(str(error)) from None
    elif items_path:
        raise DefinitionError(f"{where}.ItemsPath: give either ItemsPath or ItemReader, not both")
    bucket, prefix = "", ""
    if "ResultWriter" in raw:
        bucket, prefix = _writer(raw["ResultWriter"], f"{where}.ResultWriter")
    limits = _dynamic_fields(
        raw, ("MaxConcurrency", "ToleratedFailurePercentage", "ToleratedFailureCount"), where
    )
    dynamic = (
        bool(limits)
        or (reader is not None and reader.dynamic)
        or (bool(raw.get("ResultWriter")) and not bucket)
    )
    percentage = raw.get("ToleratedFailurePercentage")
    if percentage is not None and (
        isinstance(percentage, bool) or not isinstance(percentage, (int, float)) or not 0 <= percentage <= 100
    ):
        raise DefinitionError(f"{where}.ToleratedFailurePercentage: {percentage!r} is not from 0 to 100")
    return MapSpec(
        processor=body,
        execution_mode=config["ExecutionMode"],
        items_path=items_path,
        reader=reader,
        batcher=_batcher(raw.get("ItemBatcher"), f"{where}.ItemBatcher"),
        item_constructor=_constructor(raw, "ItemConstructor", where, _ITEM),
        result_bucket=bucket,
        result_prefix=prefix,
        max_concurrency=_integer(raw, "MaxConcurrency", where, 1, MAX_CONCURRENCY) or 0,
        tolerated_percentage=None if percentage is None else float(percentage),
        tolerated_count=_integer(raw, "ToleratedFailureCount", where, 0, 2**31 - 1),
        dynamic=dynamic,
        source=raw,
    )


def _dynamic_fields(raw: dict[str, Any], names: tuple[str, ...], where: str) -> set[str]:
    """The names among `names` given as expressions (`name.$`), checked; both forms at once are refused."""
    given = set()
    for name in names:
        if f"{name}.$" not in raw:
            continue
        if name in raw:
            raise DefinitionError(f"{where}.{name}: give {name} or {name}.$, not both")
        try:
            check_expression(raw[f"{name}.$"], f"{where}.{name}.$", _IN)
        except ExpressionError as error:
            raise DefinitionError(str(error)) from None
        given.add(name)
    return given


def resolve_map(spec: MapSpec, scope: dict[str, Any], where: str) -> MapSpec:
    """`spec` with its expressions evaluated over `scope` ($Input, $Context) and the values checked as a
    written definition's are; DefinitionError naming the field when a value is not what the field takes."""
    if not spec.dynamic:
        return spec
    raw = {k: v for k, v in spec.source.items() if not k.endswith(".$")}
    for key, value in spec.source.items():
        if key.endswith(".$"):
            raw[key[:-2]] = evaluate(value, scope)
    if isinstance(raw.get("ItemReader"), dict):
        parameters = raw["ItemReader"].get("SourceParameters")
        if isinstance(parameters, dict):
            raw["ItemReader"] = {**raw["ItemReader"], "SourceParameters": construct(parameters, scope)}
    if isinstance(raw.get("ResultWriter"), dict):
        parameters = raw["ResultWriter"].get("Parameters")
        if isinstance(parameters, dict):
            raw["ResultWriter"] = {**raw["ResultWriter"], "Parameters": construct(parameters, scope)}
    return _map(raw, where)


def _reader(raw: Any, where: str) -> ItemReader:
    if not isinstance(raw, dict):
        raise DefinitionError(f"{where}: must be an object with SourceType and SourceParameters")
    _only(raw, {"SourceType", "SourceParameters", "ReaderConfig"}, f"{where}.")
    kind = raw.get("SourceType")
    if kind not in SOURCE_TYPES:
        raise DefinitionError(
            f"{where}.SourceType: {kind!r} is not supported (supported: {', '.join(SOURCE_TYPES)})"
        )
    parameters = raw.get("SourceParameters")
    at = f"{where}.SourceParameters"
    if not isinstance(parameters, dict):
        raise DefinitionError(f"{at}: must be an object")
    named = {"Bucket", "Prefix"} if kind == "OSS_OBJECTS" else {"Bucket", "ObjectName"}
    _only(parameters, named | {f"{n}.$" for n in named}, f"{at}.")
    dynamic = _parameter_expressions(parameters, at)
    config = raw.get("ReaderConfig") or {}
    if not isinstance(config, dict):
        raise DefinitionError(f"{where}.ReaderConfig: must be an object")
    _only(config, {"CSVHeaders"} if kind == "OSS_CSV" else set(), f"{where}.ReaderConfig.")
    headers = config.get("CSVHeaders", [])
    if not isinstance(headers, list) or not all(isinstance(h, str) and h for h in headers):
        raise DefinitionError(f"{where}.ReaderConfig.CSVHeaders: must be a list of column names")
    if dynamic:
        return ItemReader(kind, "", csv_headers=tuple(headers), dynamic=True)
    bucket = _text(parameters, "Bucket", at)
    if kind == "OSS_OBJECTS":
        prefix = parameters.get("Prefix", "")
        if not isinstance(prefix, str):
            raise DefinitionError(f"{at}.Prefix: must be a string")
        return ItemReader(kind, bucket, prefix=prefix)
    return ItemReader(
        kind, bucket, object_name=_text(parameters, "ObjectName", at), csv_headers=tuple(headers)
    )


def _batcher(raw: Any, where: str) -> ItemBatcher | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise DefinitionError(f"{where}: must be an object")
    _only(raw, {"MaxItemsPerBatch", "MaxInputBytesPerBatch", "BatchInput"}, f"{where}.")
    items = _integer(raw, "MaxItemsPerBatch", where, 1, 2**31 - 1)
    size = _integer(raw, "MaxInputBytesPerBatch", where, 1, 64 * 1024)
    if items is None and size is None:
        raise DefinitionError(f"{where}: give MaxItemsPerBatch, MaxInputBytesPerBatch or both")
    return ItemBatcher(items, size, _constructor(raw, "BatchInput", where, _IN))


def _writer(raw: Any, where: str) -> tuple[str, str]:
    if not isinstance(raw, dict):
        raise DefinitionError(f"{where}: must be an object with Parameters (Bucket, Prefix)")
    _only(raw, {"Parameters"}, f"{where}.")
    parameters = raw.get("Parameters")
    if not isinstance(parameters, dict):
        raise DefinitionError(f"{where}.Parameters: must be an object with Bucket and Prefix")
    _only(parameters, {"Bucket", "Prefix", "Bucket.$", "Prefix.$"}, f"{where}.Parameters.")
    if _parameter_expressions(parameters, f"{where}.Parameters"):
        return "", ""  # resolve_map gives the values
    prefix = parameters.get("Prefix", "")
    if not isinstance(prefix, str):
        raise DefinitionError(f"{where}.Parameters.Prefix: must be a string")
    return _text(parameters, "Bucket", f"{where}.Parameters"), prefix


def _parameter_expressions(parameters: dict[str, Any], where: str) -> bool:
    """True when some parameters are expressions (`Bucket.$`), checked: $Input and $Context only, and
    never a parameter in both forms."""
    dynamic = [key[:-2] for key in parameters if key.endswith(".$")]
    for name in dynamic:
        if name in parameters:
            raise DefinitionError(f"{where}.{name}: give {name} or {name}.$, not both")
    if dynamic:
        try:
            check_constructor(parameters, where, _IN)
        except ExpressionError as error:
            raise DefinitionError(str(error)) from None
    return bool(dynamic)
