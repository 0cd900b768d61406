"""The timer event and its payload as typed, validated plain data (pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from ..events import MAX_NESTING, load_json, nesting_depth
from ..schema_errors import describe, shown
from ..timestamps import parse_timestamp
from .clock import absurd


class SweepRequestError(ValueError):
    """The timer event or its payload is not usable; the message names the field."""


@dataclass(frozen=True)
class ShardRange:
    """Keys `start_at <= key < end_before` (no end: to the end of the prefix)."""

    index: int
    count: int
    start_at: str
    end_before: str | None

    def as_payload(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "count": self.count,
            "startAt": self.start_at,
            "endBefore": self.end_before,
        }


@dataclass(frozen=True)
class SweepRequest:
    buckets: tuple[str, ...]
    prefix: str = ""
    dry_run: bool = False
    full: bool = False
    workers: int = 8
    qps: float | None = None
    max_objects: int | None = None
    shards: int = 1
    shard: ShardRange | None = None
    inventory: str | None = None  # oss://… of a manifest.json, or of a folder of an inventory's runs

    def as_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "buckets": list(self.buckets),
            "prefix": self.prefix,
            "workers": self.workers,
        }
        for name, value in (("dryRun", self.dry_run), ("full", self.full)):
            if value:
                payload[name] = True
        for name, given in (("qps", self.qps), ("maxObjects", self.max_objects)):
            if given is not None:
                payload[name] = given
        if self.shards > 1:
            payload["shards"] = self.shards
        if self.shard is not None:
            payload["shard"] = self.shard.as_payload()
        if self.inventory is not None:
            payload["inventory"] = self.inventory
        return payload


@dataclass(frozen=True)
class TimerEvent:
    trigger_time: datetime  # the sweep's clock
    trigger_name: str
    request: SweepRequest


@cache
def _validator(schema_file: str) -> Any:
    import jsonschema

    schema = json.loads(resources.files("autotag").joinpath(f"schemas/{schema_file}").read_text())
    return jsonschema.Draft202012Validator(schema)


def _check(document: Any, schema_file: str, where: str) -> None:
    errors = sorted(
        _validator(schema_file).iter_errors(document), key=lambda e: (len(e.path), list(map(str, e.path)))
    )
    if errors:
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in errors[0].absolute_path)
        raise SweepRequestError(f"{where}{path}: {describe(errors[0])}")


def _json(text: str | bytes, what: str) -> Any:
    return load_json(text, what, SweepRequestError)


def parse_sweep_payload(payload: str | dict[str, Any]) -> SweepRequest:
    document = _json(payload, "payload") if isinstance(payload, str) else payload
    if nesting_depth(document, MAX_NESTING) > MAX_NESTING:
        raise SweepRequestError(f"payload nests more than {MAX_NESTING} levels deep")
    _check(document, "sweep-payload.schema.json", "payload")
    shard = document.get("shard")
    if shard is not None and shard["index"] >= shard["count"]:
        raise SweepRequestError(f"payload.shard.index: {shard['index']} is not below count {shard['count']}")
    if "inventory" in document:
        _check_inventory(document)
    return SweepRequest(
        buckets=tuple(document["buckets"]),
        prefix=document.get("prefix", ""),
        dry_run=document.get("dryRun", False),
        full=document.get("full", False),
        workers=document.get("workers", 8),
        qps=document.get("qps"),
        max_objects=document.get("maxObjects"),
        shards=document.get("shards", 1),
        shard=ShardRange(shard["index"], shard["count"], shard["startAt"], shard["endBefore"])
        if shard
        else None,
        inventory=document.get("inventory"),
    )


def _check_inventory(document: dict[str, Any]) -> None:
    """An inventory plans the shards of one bucket: it needs shards, one bucket, and a location that says
    whether it is a manifest or a folder of runs (a folder without its `/` would be read as an object)."""
    location = document["inventory"]
    if not location.endswith(("/", ".json")):
        raise SweepRequestError(
            f"payload.inventory: {shown(location)} is neither a manifest (…/manifest.json) nor a folder "
            "of an inventory's runs (ending in /)"
        )
    if document.get("shards", 1) < 2:
        raise SweepRequestError("payload.inventory: it plans the shards of a sweep; give shards of 2 or more")
    if len(document["buckets"]) > 1:
        raise SweepRequestError(
            f"payload.inventory: an inventory lists one bucket; buckets names {len(document['buckets'])}"
        )


def parse_timer_event(event: bytes | str | dict[str, Any]) -> TimerEvent:
    """Check a timer event (FC hands it over as bytes) and its JSON payload; errors name the field."""
    document = event if isinstance(event, dict) else _json(event, "the event")
    if nesting_depth(document, MAX_NESTING) > MAX_NESTING:
        raise SweepRequestError(f"the event nests more than {MAX_NESTING} levels deep")
    _check(document, "timer-event.schema.json", "event")
    trigger_time = parse_timestamp(document["triggerTime"])
    if trigger_time is None:
        raise SweepRequestError(f"event.triggerTime: {document['triggerTime']!r} is not a date and time")
    if absurd(trigger_time):
        raise SweepRequestError(
            f"event.triggerTime: {document['triggerTime']!r} {absurd(trigger_time)}: no timer fires then"
        )
    return TimerEvent(trigger_time, document["triggerName"], parse_sweep_payload(document["payload"]))
