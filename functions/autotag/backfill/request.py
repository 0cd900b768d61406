"""The backfill function's events as typed, validated plain data (pure): start (or resume) a job, run one
of its shards, or cancel it (schemas/backfill-event.schema.json). Errors name the field."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

from ..events import MAX_NESTING, load_json, nesting_depth
from ..inventory import InventoryError, parse_location
from ..timestamps import parse_timestamp
from .job import INVENTORY, LISTING, MANIFEST

DEFAULT_SHARDS = 1
DEFAULT_WORKERS = 16
DEFAULT_MAX_FAILURE_RATE = 0.5


class BackfillRequestError(ValueError):
    """The event is not one the backfill function takes; the message names the field."""


@dataclass(frozen=True)
class StartJob:
    bucket: str
    prefix: str = ""
    source: str = LISTING
    location: str = ""
    since: datetime | None = None
    shards: int = DEFAULT_SHARDS
    workers: int = DEFAULT_WORKERS
    qps: float | None = None
    max_failure_rate: float = DEFAULT_MAX_FAILURE_RATE
    restart: bool = False

    def as_event(self) -> bytes:
        body: dict[str, Any] = {
            "action": "start",
            "bucket": self.bucket,
            "prefix": self.prefix,
            "shards": self.shards,
            "workers": self.workers,
            "maxFailureRate": self.max_failure_rate,
            "restart": self.restart,
        }
        if self.source != LISTING:
            body[self.source] = self.location
        if self.since is not None:
            body["since"] = self.since.isoformat()
        if self.qps is not None:
            body["qps"] = self.qps
        return json.dumps({"backfill": body}, ensure_ascii=False).encode()


@dataclass(frozen=True)
class RunShard:
    bucket: str
    job: str
    run: int
    shard: int

    def as_event(self) -> bytes:
        body = {"action": "shard", "bucket": self.bucket, "job": self.job}
        return json.dumps({"backfill": {**body, "run": self.run, "shard": self.shard}}).encode()


@dataclass(frozen=True)
class CancelJob:
    bucket: str
    job: str

    def as_event(self) -> bytes:
        return json.dumps({"backfill": {"action": "cancel", "bucket": self.bucket, "job": self.job}}).encode()


BackfillEvent = StartJob | RunShard | CancelJob


@cache
def _validators() -> dict[str, Any]:
    """The event's envelope, and each action's body, as validators sharing the schema's definitions."""
    import jsonschema

    schema = json.loads(resources.files("autotag").joinpath("schemas/backfill-event.schema.json").read_text())
    validators = {"": jsonschema.Draft202012Validator(schema)}
    for action in ("start", "shard", "cancel"):
        body = {**schema["$defs"][action], "$defs": schema["$defs"]}
        validators[action] = jsonschema.Draft202012Validator(body)
    return validators


def _first_error(validator: Any, document: Any, where: str) -> None:
    errors = sorted(validator.iter_errors(document), key=lambda e: (len(e.path), list(map(str, e.path))))
    if errors:
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in errors[0].absolute_path)
        raise BackfillRequestError(f"{where}{path}: {errors[0].message}")


def parse_backfill_event(event: bytes | str | dict[str, Any]) -> BackfillEvent:
    document = event if isinstance(event, dict) else load_json(event, "the event", BackfillRequestError)
    if nesting_depth(document, MAX_NESTING) > MAX_NESTING:
        raise BackfillRequestError(f"the event nests more than {MAX_NESTING} levels deep")
    validators = _validators()
    _first_error(validators[""], document, "event")
    _first_error(validators[document["backfill"]["action"]], document["backfill"], "event.backfill")
    if "inventory" in document["backfill"] and "manifest" in document["backfill"]:
        raise BackfillRequestError("event.backfill: give inventory or manifest, not both")
    body = document["backfill"]
    action = body["action"]
    if action == "shard":
        return RunShard(body["bucket"], body["job"], body["run"], body["shard"])
    if action == "cancel":
        return CancelJob(body["bucket"], body["job"])
    since = None
    if "since" in body:
        since = parse_timestamp(body["since"])
        if since is None:
            raise BackfillRequestError(f"event.backfill.since: {body['since']!r} is not an ISO-8601 time")
    source, location = LISTING, ""
    for kind in (INVENTORY, MANIFEST):
        if kind in body:
            source, location = kind, body[kind]
            try:
                parse_location(location, f"event.backfill.{kind}")
            except InventoryError as error:
                raise BackfillRequestError(str(error)) from None
    return StartJob(
        bucket=body["bucket"],
        prefix=body.get("prefix", ""),
        source=source,
        location=location,
        since=since,
        shards=body.get("shards", DEFAULT_SHARDS),
        workers=body.get("workers", DEFAULT_WORKERS),
        qps=body.get("qps"),
        max_failure_rate=body.get("maxFailureRate", DEFAULT_MAX_FAILURE_RATE),
        restart=body.get("restart", False),
    )
