"""The Functions page's test events: templates for the shapes the functions take, as FC's console
offers them (an OSS trigger's event, one EventBridge CloudEvent, an event-streaming batch, a timer's
event), and the events saved by name, per function, in a JSON file of this local cloud's own (never in
the repository)."""

from __future__ import annotations

import json
import re
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path

from autotag.output import to_json as _to_json
from cloudformats.eventbridge_events import cloud_event, queue_event
from cloudformats.oss_events import ObjectEvent, event_record

OWNER_ID = "1234567890123456"  # the local cloud's account, as its events name it
EVENTS_QUEUE = "oss-autotag-events"  # the queue template.yml's batched trigger reads
TEMPLATES = {
    "oss": "OSS trigger",
    "eventbridge": "one EventBridge CloudEvent",
    "batch": "an EventBridge batch",
    "timer": "a timer",
}
EVENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
MAX_SAVED_PER_FUNCTION = 100
MAX_EVENT_CHARS = 12 * 1024  # a form carries at most 16 KiB


def to_json(document: object, indent: int | None = None) -> str:
    return str(_to_json(document, indent=indent))


def _record(bucket: str, key: str, region: str, size: int = 1024) -> dict[str, object]:
    event = ObjectEvent(
        "ObjectCreated:PutObject",
        bucket,
        key,
        size=size,
        delta_size=size,
        etag="",
        request_id=uuid.uuid4().hex[:24].upper(),
        source_ip="127.0.0.1",
    )
    return event_record(event, region=region, owner_id=OWNER_ID, rule_id="console-test-event")


def template_event(
    kind: str, bucket: str, region: str, timer_payload: str, timer_name: str, now: datetime
) -> str:
    """The test event of template `kind`, as text for the editor."""
    if kind == "timer":
        moment = now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return to_json({"triggerTime": moment, "triggerName": timer_name, "payload": timer_payload}, indent=2)
    if kind == "eventbridge":
        return to_json(cloud_event(_record(bucket, "uploads/example.jpg", region), OWNER_ID), indent=2)
    if kind == "batch":
        keys = ("uploads/first.jpg", "uploads/second.txt")
        events = [cloud_event(_record(bucket, key, region), OWNER_ID) for key in keys]
        batch = [queue_event(to_json(event), EVENTS_QUEUE, OWNER_ID, region) for event in events]
        return to_json(batch, indent=2)
    return to_json({"events": [_record(bucket, "uploads/example.jpg", region)]}, indent=2)


def pretty(text: str) -> str:
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


class SavedEvents:
    """Test events saved by name, per function, in one JSON file."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()

    def _all(self) -> dict[str, dict[str, str]]:
        if self.path is None or not self.path.exists():
            return {}
        try:
            found = json.loads(self.path.read_text(encoding="utf-8"))
        except ValueError:
            return {}
        return found if isinstance(found, dict) else {}

    def names(self, function: str) -> list[str]:
        with self._lock:
            return sorted(self._all().get(function, {}))

    def get(self, function: str, name: str) -> str | None:
        with self._lock:
            found = self._all().get(function, {}).get(name)
            return found if isinstance(found, str) else None

    def save(self, function: str, name: str, event: str) -> str:
        """Save `event` as `name`; "" when saved, else why not (one line)."""
        if not EVENT_NAME.match(name):
            return "a test event's name is 1 to 64 letters, digits, spaces, dots, dashes or underscores"
        if len(event) > MAX_EVENT_CHARS:
            return f"a test event is at most {MAX_EVENT_CHARS} characters"
        if self.path is None:
            return "this console has no folder to save test events in"
        with self._lock:
            saved = self._all()
            mine = saved.setdefault(function, {})
            if name not in mine and len(mine) >= MAX_SAVED_PER_FUNCTION:
                return f"{function} has {MAX_SAVED_PER_FUNCTION} saved test events already: delete one"
            mine[name] = event
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(saved, indent=2, ensure_ascii=False), encoding="utf-8")
        return ""

    def delete(self, function: str, name: str) -> None:
        if self.path is None:
            return
        with self._lock:
            saved = self._all()
            if saved.get(function, {}).pop(name, None) is not None:
                self.path.write_text(json.dumps(saved, indent=2, ensure_ascii=False), encoding="utf-8")
