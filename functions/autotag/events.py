"""OSS events as typed, validated plain data (pure: no I/O but reading the shipped schema).

FC hands the handler the event as bytes, in one of the shapes an OSS event reaches a function
(docs/tag-on-upload.md has them, with sources):

- an OSS trigger's event, `{"events": [record, ...]}`;
- through EventBridge, one CloudEvent (`source: acs.oss`, the OSS record under `data`);
- through EventBridge from a queue the OSS events were routed to (event streaming), a batch: a JSON array
  of CloudEvents whose `data` is a queue message with the OSS event as its body, or of the bare `data`
  elements when the trigger delivers RawData.

`parse_delivery` checks each against schemas/oss-event.schema.json and returns one `ObjectEvent` per OSS
record; in a batch, an element that is not a usable OSS event is reported on its own (`Refused`), never
failing the others, and so is each record a queue message carries beyond the one OSS puts in an event.
`parse_oss_event` is the same for a single event, raising `EventError` naming the field."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from .schema_errors import cut, describe, shown

# Operations after which no object exists yet (parts of an unfinished multipart upload).
_NOT_YET_AN_OBJECT = frozenset({"InitiateMultipartUpload", "UploadPart", "UploadPartCopy"})
MAX_EVENT_BYTES = 128 * 1024  # FC's limit for an asynchronous invocation payload
MAX_BATCH_BYTES = 32 * 1024 * 1024  # FC's limit for a synchronous one: how batches are pushed
MAX_BATCH_EVENTS = 10_000  # EventBridge's largest CountBasedWindow
MAX_NESTING = 32  # OSS events nest 7 levels deep; anything far deeper is not one
# OSS puts one record in an event's `events` (docs/tag-on-upload.md): in a batch, a queue message whose
# body holds more is not OSS's, and each record beyond is refused rather than multiplying the batch.
MAX_RECORDS_PER_EVENT = 1


class EventError(ValueError):
    """The event is not an OSS trigger event; the message names the field and what is wrong with it."""


# Objects cross-region replication wrote into the bucket: finished objects (EventBridge only; the native
# OSS trigger has no such events). https://help.aliyun.com/document_detail/205739.html
REPLICATED_OBJECT_EVENTS = frozenset({"ObjectReplication:ObjectCreated", "ObjectReplication:ObjectModified"})


@dataclass(frozen=True)
class ObjectEvent:
    event_name: str  # e.g. ObjectCreated:PutObject (no `oss:` prefix in deliveries)
    bucket: str
    key: str  # the raw object key, as OSS stores it
    region: str
    event_time: str = ""
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    request_id: str | None = None
    mime_type: str | None = None  # objectMeta, present only in newer deliveries
    user_meta: dict[str, str] | None = None
    replay_of: str | None = None  # a re-driven event: the request id of the invocation that failed
    element: int | None = None  # its position in a batch (None: not delivered in a batch)

    @property
    def family(self) -> str:
        return self.event_name.split(":", 1)[0]

    @property
    def operation(self) -> str:
        return self.event_name.split(":", 1)[1]

    @property
    def creates_object(self) -> bool:
        """True when an object exists to be tagged after this event: an upload that finished, or an
        object cross-region replication created or overwrote (EventBridge's
        oss:ObjectReplication:ObjectCreated / ObjectModified, docs/tag-on-upload.md)."""
        if self.event_name in REPLICATED_OBJECT_EVENTS:
            return True
        return self.family == "ObjectCreated" and self.operation not in _NOT_YET_AN_OBJECT


@cache
def _validator(definition: str = "") -> Any:
    """The schema's validator, or one for one of its $defs (record, cloudEvent, queueMessage).
    jsonschema is imported and the schema compiled on first use, not at import time (cold starts)."""
    import jsonschema

    schema = json.loads(resources.files("autotag").joinpath("schemas/oss-event.schema.json").read_text())
    if definition:
        schema = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    return jsonschema.Draft202012Validator(schema)


def _check(document: Any, definition: str, where: str) -> None:
    # The shallowest error first; at one depth, what is wrong in itself before what a conditional
    # (`if source is acs.oss then ... else ...`) concludes from it.
    errors = sorted(
        _validator(definition).iter_errors(document),
        key=lambda e: (
            len(e.path),
            any(step in ("then", "else") for step in e.schema_path),
            list(map(str, e.path)),
        ),
    )
    if errors:
        path = _field_path(errors[0].absolute_path)
        place = where + ("" if path == "(the event)" else (path if path.startswith("[") else f".{path}"))
        raise EventError(f"{place or path}: {describe(errors[0])}")


def _field_path(path: Any) -> str:
    text = ""
    for part in path:
        # a name may be anyone's (a userMeta entry's): cut short like a value
        text += f"[{part}]" if isinstance(part, int) else f".{cut(part)}" if text else cut(str(part))
    return text or "(the event)"


def nesting_depth(document: Any, limit: int) -> int:
    """How deep `document` nests (a scalar is 0), counting no further than `limit` + 1. Iterative: a
    hostile document cannot exhaust the stack here."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(document, 0)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            if depth > limit:
                return depth
            pending.extend((child, depth) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def load_json(text: bytes | str, what: str, error: type[ValueError], limit: int = MAX_NESTING) -> Any:
    """Decode JSON, refusing what no caller sends: invalid UTF-8, bad syntax, or nesting beyond `limit`
    (deep enough nesting would otherwise end in a RecursionError, in the decoder or later)."""
    try:
        document = json.loads(text)
    except UnicodeDecodeError as exc:
        raise error(f"{what} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{what} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise error(f"{what} nests more than {limit} levels deep") from None
    if nesting_depth(document, limit) > limit:
        raise error(f"{what} nests more than {limit} levels deep")
    return document


def _decode(payload: bytes | str | dict[str, Any]) -> Any:
    if isinstance(payload, dict):
        if nesting_depth(payload, MAX_NESTING) > MAX_NESTING:
            raise EventError(f"the event nests more than {MAX_NESTING} levels deep")
        return payload
    batch = payload.lstrip()[:1] in (b"[", "[")
    limit = MAX_BATCH_BYTES if batch else MAX_EVENT_BYTES
    if len(payload) > limit:
        what = "a batch" if batch else "an event"
        raise EventError(f"the event is {len(payload)} bytes; FC delivers at most {limit} in {what}")
    return load_json(payload, "the event", EventError)


def _object_event(record: dict[str, Any], replay_of: str | None, element: int | None) -> ObjectEvent:
    obj = record["oss"]["object"]
    meta = obj.get("objectMeta") or {}
    return ObjectEvent(
        event_name=record["eventName"],
        bucket=record["oss"]["bucket"]["name"],
        key=obj["key"],
        region=record["region"],
        event_time=record.get("eventTime", ""),
        size=obj.get("size"),
        etag=obj.get("eTag"),
        version_id=obj.get("versionId"),
        request_id=(record.get("responseElements") or {}).get("requestId"),
        mime_type=meta.get("mimeType"),
        user_meta=meta.get("userMeta") if "userMeta" in meta else None,
        replay_of=replay_of,
        element=element,
    )


def _native(
    document: dict[str, Any], where: str, element: int | None, beyond: list[str] | None = None
) -> list[ObjectEvent]:
    """The records of an OSS event (`{"events": [...]}`). With `beyond` (in a batch), records past
    MAX_RECORDS_PER_EVENT are not read: each is named there instead."""
    records = document.get("events")
    if beyond is not None and isinstance(records, list) and len(records) > MAX_RECORDS_PER_EVENT:
        beyond += [
            f"{where}.events[{n}]: OSS puts {MAX_RECORDS_PER_EVENT} record in an event; "
            "one beyond it is not OSS's and is refused"
            for n in range(MAX_RECORDS_PER_EVENT, len(records))
        ]
        document = {**document, "events": records[:MAX_RECORDS_PER_EVENT]}
    if where:
        _check(document, "", where)
    else:
        errors = sorted(
            _validator().iter_errors(document), key=lambda e: (len(e.path), list(map(str, e.path)))
        )
        if errors:
            raise EventError(f"{_field_path(errors[0].absolute_path)}: {describe(errors[0])}")
    replay = document.get("autotagReplay")
    replay_of = str(replay.get("originalRequestId", "")) or None if isinstance(replay, dict) else None
    return [_object_event(record, replay_of, element) for record in document["events"]]


def _queue_body(message: dict[str, Any], where: str) -> Any:
    """The OSS event a queue message carries: JSON, plain or base64-encoded (as OSS notifications to MNS
    are by default)."""
    body = message["messageBody"]
    try:
        return load_json(body, f"{where}.messageBody", EventError)
    except EventError:
        pass
    try:
        decoded = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if not decoded:
        raise EventError(f"{where}.messageBody: neither JSON nor base64-encoded JSON")
    return load_json(decoded, f"{where}.messageBody (base64-decoded)", EventError)


def _from_element(
    element: Any,
    where: str,
    index: int | None,
    nested: bool = False,
    replay_of: str | None = None,
    beyond: list[str] | None = None,
) -> list[ObjectEvent]:
    """The OSS events of one delivered element: a CloudEvent, or (RawData) an OSS record or a queue
    message; `nested` for what a queue message carries (which holds no further queue messages).
    `replay_of` is the provenance (`autotagreplay`) of an enclosing CloudEvent, which holds for what it
    carries; `beyond` collects the records refused past an event's first (see `_native`)."""
    if not isinstance(element, dict):
        raise EventError(f"{where or '(the event)'}: an object, not {type(element).__name__}")
    if "specversion" in element:
        source = element.get("source")
        if isinstance(source, str) and source != "acs.oss" and (nested or not _carries_a_message(element)):
            # another service's event (or a queue's, where no queue message may be): what its `data`
            # lacks compared with a queue message would say nothing useful
            carries = "" if nested else ", and it is no queue message (data.messageBody)"
            raise EventError(f"{where}.source: {shown(source)} is not acs.oss{carries}")
        _check(element, "cloudEvent", where)
        replay = str(element.get("autotagreplay") or "") or replay_of
        if source == "acs.oss":
            return [_object_event(element["data"], replay, index)]
        return _from_element(element["data"], f"{where}.data", index, replay_of=replay, beyond=beyond)
    if "messageBody" in element and not nested:
        _check(element, "queueMessage", where)
        body = _queue_body(element, where)
        inner = f"{where}.messageBody"
        if isinstance(body, dict) and "events" in body:
            return _native(body, inner, index, beyond)
        return _from_element(body, inner, index, nested=True, replay_of=replay_of, beyond=beyond)
    if "eventName" in element:
        _check(element, "record", where)
        return [_object_event(element, replay_of, index)]
    if "events" in element and nested:
        return _native(element, where, index, beyond)
    raise EventError(
        f"{where or '(the event)'}: neither a CloudEvent, an OSS event record nor a queue message"
    )


def _carries_a_message(cloud_event: dict[str, Any]) -> bool:
    """Whether a CloudEvent not from OSS is a queue's (an MNS trigger's `mns:` type, or a message under
    `data`), so that its `data` is checked as a queue message."""
    data = cloud_event.get("data")
    kind = cloud_event.get("type")
    return (isinstance(data, dict) and "messageBody" in data) or (
        isinstance(kind, str) and kind.startswith("mns:")
    )


@dataclass(frozen=True)
class Refused:
    """An element of a batch that carries no usable OSS event: reported, never retried."""

    element: int
    reason: str


@dataclass(frozen=True)
class Delivery:
    shape: str  # "oss-trigger", "eventbridge" (one CloudEvent) or "eventbridge-batch"
    events: list[ObjectEvent]
    refused: list[Refused]


def parse_delivery(payload: bytes | str | dict[str, Any] | list[Any]) -> Delivery:
    """The OSS events of whatever shape FC delivered. A whole event that is not one raises EventError; in
    a batch, each element that is not one is `Refused` on its own."""
    document = _decode(payload) if not isinstance(payload, list) else payload
    if isinstance(document, list):
        if not document:
            raise EventError("the event is an empty batch")
        if len(document) > MAX_BATCH_EVENTS:
            raise EventError(
                f"the batch has {len(document)} events; EventBridge pushes at most {MAX_BATCH_EVENTS}"
            )
        events: list[ObjectEvent] = []
        refused: list[Refused] = []
        for index, element in enumerate(document):
            beyond: list[str] = []
            try:
                events += _from_element(element, f"[{index}]", index, beyond=beyond)
            except EventError as error:
                refused.append(Refused(index, str(error)))
            refused += [Refused(index, reason) for reason in beyond]
        return Delivery("eventbridge-batch", events, refused)
    if isinstance(document, dict) and (
        "specversion" in document or ("events" not in document and "eventName" in document)
    ):
        # one CloudEvent, or (EventSchema RawData) the bare OSS record it carries
        return Delivery("eventbridge", _from_element(document, "", None), [])
    if isinstance(document, dict) and "events" in document:
        return Delivery("oss-trigger", _native(document, "", None), [])
    raise EventError(
        'the event is none of the shapes OSS events arrive in: an OSS trigger event ({"events": [...]}), '
        "a CloudEvent (specversion, source acs.oss), an OSS event record (eventName), or an array of "
        "them (an EventBridge batch)"
    )


def parse_oss_event(payload: bytes | str | dict[str, Any] | list[Any]) -> list[ObjectEvent]:
    """The OSS events of one delivery, any shape; raises EventError for anything that is not one, a
    batch's first unusable element included."""
    delivery = parse_delivery(payload)
    if delivery.refused:
        raise EventError(delivery.refused[0].reason)
    return delivery.events
