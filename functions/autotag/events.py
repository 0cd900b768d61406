"""OSS trigger events as typed, validated plain data (pure: no I/O but reading the shipped schema).

FC hands the handler the event as bytes. `parse_oss_event` checks it against schemas/oss-event.schema.json
and returns one `ObjectEvent` per record, or raises `EventError` naming the offending field."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

# Operations after which no object exists yet (parts of an unfinished multipart upload).
_NOT_YET_AN_OBJECT = frozenset({"InitiateMultipartUpload", "UploadPart", "UploadPartCopy"})
MAX_EVENT_BYTES = 128 * 1024  # FC's limit for an asynchronous invocation payload
MAX_NESTING = 32  # OSS events nest 7 levels deep; anything far deeper is not one


class EventError(ValueError):
    """The event is not an OSS trigger event; the message names the field and what is wrong with it."""


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

    @property
    def family(self) -> str:
        return self.event_name.split(":", 1)[0]

    @property
    def operation(self) -> str:
        return self.event_name.split(":", 1)[1]

    @property
    def creates_object(self) -> bool:
        """True when an object exists to be tagged after this event."""
        return self.family == "ObjectCreated" and self.operation not in _NOT_YET_AN_OBJECT


@cache
def _validator() -> Any:
    # jsonschema is imported and the schema compiled on first use, not at import time (cold starts).
    import jsonschema

    schema = json.loads(resources.files("autotag").joinpath("schemas/oss-event.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)


def _field_path(path: Any) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
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
    if len(payload) > MAX_EVENT_BYTES:
        raise EventError(f"the event is {len(payload)} bytes; FC delivers at most {MAX_EVENT_BYTES}")
    return load_json(payload, "the event", EventError)


def parse_oss_event(payload: bytes | str | dict[str, Any]) -> list[ObjectEvent]:
    document = _decode(payload)
    errors = sorted(_validator().iter_errors(document), key=lambda e: (len(e.path), list(map(str, e.path))))
    if errors:
        error = errors[0]
        raise EventError(f"{_field_path(error.absolute_path)}: {error.message}")
    parsed = []
    replay = document.get("autotagReplay")
    replay_of = str(replay.get("originalRequestId", "")) or None if isinstance(replay, dict) else None
    for record in document["events"]:
        obj = record["oss"]["object"]
        meta = obj.get("objectMeta") or {}
        parsed.append(
            ObjectEvent(
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
            )
        )
    return parsed
