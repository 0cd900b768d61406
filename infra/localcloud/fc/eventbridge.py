"""The local EventBridge path from OSS to a function (an `EventBridge` trigger of template.yml).

OSS events reach a function through EventBridge in two ways (docs/tag-on-upload.md, with sources):

- **event-driven** (`EventSourceType: Default`, the default bus that carries Alibaba Cloud services'
  events): each OSS event matching the trigger's event pattern is one CloudEvent (`source: acs.oss`,
  `type: oss:<eventName>`, `subject: acs:oss:<region>:<account>:<bucket>/<key>`, the OSS record under
  `data`), one invocation each;
- **event-streaming** from a queue (`EventSourceType: MNS`) that the matching OSS events are routed to:
  the function gets batches, a JSON array pushed when `CountBasedWindow` events are waiting or
  `TimeBasedWindow` seconds have passed, whichever comes first. Each element is a CloudEvent of the queue
  whose `data.messageBody` is the OSS CloudEvent, or with `EventSchema: RawData` the bare `data` element.

`cloud_event` and `queue_event` (cloudformats/eventbridge_events.py) and `matches` are pure;
`EventBridgeDelivery` does the delivering."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cloudformats.eventbridge_events import cloud_event, queue_event

from .template_errors import TemplateError

DEFAULT, QUEUE = "Default", "MNS"
EVENT_DRIVEN, EVENT_STREAMING = "event-driven", "event-streaming"
CLOUD_EVENTS, RAW_DATA = "CloudEvents", "RawData"
MAX_COUNT_WINDOW, MAX_TIME_WINDOW = 10_000, 15  # FC's BatchWindow limits
# A failed push: BACKOFF_RETRY retries 3 times (10-20 s apart), EXPONENTIAL_DECAY_RETRY 176 times over a day.
BACKOFF, EXPONENTIAL = "BACKOFF_RETRY", "EXPONENTIAL_DECAY_RETRY"
RETRIES_OF_STRATEGY = {BACKOFF: 3, EXPONENTIAL: 176}


# ---- event patterns (EventBridge's: AND across fields, OR within a field's list) -------------------------


def _field_matches(conditions: list[Any], value: Any) -> bool:
    for condition in conditions:
        if isinstance(condition, dict):
            ((operator, argument),) = condition.items()
            if operator == "prefix" and isinstance(value, str) and value.startswith(argument):
                return True
            if operator == "suffix" and isinstance(value, str) and value.endswith(argument):
                return True
            if operator == "exists" and (value is not None) == bool(argument):
                return True
            if operator == "anything-but":
                excluded = argument if isinstance(argument, list) else [argument]
                if value is not None and value not in excluded:
                    return True
        elif condition == value:
            return True
    return False


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    for name, condition in pattern.items():
        value = event.get(name) if isinstance(event, Mapping) else None
        if isinstance(condition, Mapping):
            if not isinstance(value, Mapping) or not matches(condition, value):
                return False
        elif not _field_matches(list(condition), value):
            return False
    return True


_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


def pattern_buckets(pattern: Mapping[str, Any]) -> set[str]:
    """The buckets an OSS event pattern names in full in its `subject`
    (`acs:oss:<region>:<account>:<bucket>/<key>`): an exact subject, or a prefix reaching past the
    bucket's `/`. A pattern without one matches every bucket's events and names none."""
    conditions = pattern.get("subject")
    named: set[str] = set()
    for condition in conditions if isinstance(conditions, list) else []:
        subject = condition.get("prefix") if isinstance(condition, Mapping) else condition
        parts = subject.split(":", 4) if isinstance(subject, str) else []
        if len(parts) == 5 and parts[:2] == ["acs", "oss"]:
            bucket, slash, _ = parts[4].partition("/")
            if slash and _BUCKET_NAME.fullmatch(bucket):
                named.add(bucket)
    return named


def check_pattern(pattern: Any, where: str) -> None:
    """Refuse what the local EventBridge would not match as EventBridge does."""
    if not isinstance(pattern, dict):
        raise TemplateError(f"{where}: an event pattern is a JSON object, got {pattern!r}")
    for name, condition in pattern.items():
        if isinstance(condition, dict):
            check_pattern(condition, f"{where}.{name}")
            continue
        if not isinstance(condition, list) or not condition:
            raise TemplateError(f"{where}.{name}: a non-empty list of values or conditions")
        for item in condition:
            if isinstance(item, dict) and (
                len(item) != 1 or next(iter(item)) not in ("prefix", "suffix", "exists", "anything-but")
            ):
                raise TemplateError(
                    f"{where}.{name}: {item!r}: the local EventBridge matches prefix, suffix, exists and "
                    "anything-but conditions"
                )


# ---- the trigger's configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EventBridgeConfig:
    enabled: bool
    source_type: str  # Default or MNS
    queue: str
    pattern: dict[str, Any]
    mode: str  # event-driven or event-streaming
    schema: str  # CloudEvents or RawData
    count_window: int
    time_window: float
    base64_decode: bool = False  # the queue's message bodies are decoded before the push
    asynchronous: bool = True  # pushed as asynchronous invocations (FC's retries) or synchronous ones
    push_retries: int = 3  # a failed synchronous push is retried this often (the retry strategy) ...
    dead_letter_queue: str = ""  # ... and then sent here ("": dropped)

    @classmethod
    def from_properties(cls, properties: Mapping[str, Any], where: str) -> EventBridgeConfig:
        source = properties.get("EventSourceConfig") or {}
        source_type = str(source.get("EventSourceType", DEFAULT))
        parameters = (source.get("EventSourceParameters") or {}).get("SourceMNSParameters") or {}
        queue = str(parameters.get("QueueName", ""))
        try:
            pattern = json.loads(str(properties.get("EventRuleFilterPattern", "")))
        except ValueError as error:
            raise TemplateError(f"{where}.EventRuleFilterPattern: not JSON ({error})") from None
        check_pattern(pattern, f"{where}.EventRuleFilterPattern")
        delivery = (properties.get("EventSinkConfig") or {}).get("DeliveryOption") or {}
        run = properties.get("RunOptions") or {}
        mode = str(run.get("Mode") or delivery.get("Mode") or EVENT_DRIVEN)
        window = run.get("BatchWindow") or {}
        strategy = run.get("RetryStrategy") or {}
        config = cls(
            enabled=bool(properties.get("TriggerEnable", True)),
            source_type=source_type,
            queue=queue,
            pattern=pattern,
            mode=mode,
            schema=str(delivery.get("EventSchema", CLOUD_EVENTS)),
            count_window=int(window.get("CountBasedWindow", 1)),
            time_window=float(window.get("TimeBasedWindow", 0)),
            base64_decode=bool(parameters.get("IsBase64Decode", False)),
            asynchronous=bool(properties.get("AsyncInvocationType", True)),
            push_retries=RETRIES_OF_STRATEGY.get(str(strategy.get("PushRetryStrategy", BACKOFF)), -1),
            dead_letter_queue=str((run.get("DeadLetterQueue") or {}).get("Arn", "")),
        )
        config.check(where)
        return config

    def check(self, where: str) -> None:
        if self.source_type not in (DEFAULT, QUEUE):
            raise TemplateError(
                f"{where}.EventSourceConfig.EventSourceType: {self.source_type!r}; Default or MNS"
            )
        if self.mode not in (EVENT_DRIVEN, EVENT_STREAMING):
            raise TemplateError(f"{where}.RunOptions.Mode: {self.mode!r}; event-driven or event-streaming")
        if self.schema not in (CLOUD_EVENTS, RAW_DATA):
            raise TemplateError(f"{where}.EventSinkConfig.DeliveryOption.EventSchema: {self.schema!r}")
        if self.source_type == DEFAULT and self.mode != EVENT_DRIVEN:
            raise TemplateError(
                f"{where}.RunOptions.Mode: the default bus (Alibaba Cloud services' events, OSS's among "
                "them) delivers event-driven, one event per invocation; batches need a queue source (MNS)"
            )
        if self.source_type == QUEUE and (self.mode != EVENT_STREAMING or not self.queue):
            raise TemplateError(
                f"{where}: a queue source is event-streaming and names its queue "
                "(EventSourceParameters.SourceMNSParameters.QueueName)"
            )
        if self.push_retries < 0:
            raise TemplateError(
                f"{where}.RunOptions.RetryStrategy.PushRetryStrategy: {BACKOFF} or {EXPONENTIAL}"
            )
        if not 1 <= self.count_window <= MAX_COUNT_WINDOW or not 0 <= self.time_window <= MAX_TIME_WINDOW:
            raise TemplateError(
                f"{where}.RunOptions.BatchWindow: CountBasedWindow 1-{MAX_COUNT_WINDOW}, "
                f"TimeBasedWindow 0-{MAX_TIME_WINDOW} s"
            )


# ---- the trigger as FC's API has it (EventBridgeTriggerConfig) -------------------------------------------
# The template spells every key PascalCase, as its other properties; FC's API has the outer keys camelCase
# and keeps PascalCase inside SourceMNSParameters, BatchWindow, RetryStrategy and DeadLetterQueue.

_API_NAMES = {
    "TriggerEnable": "triggerEnable",
    "AsyncInvocationType": "asyncInvocationType",
    "EventRuleFilterPattern": "eventRuleFilterPattern",
    "EventSourceConfig": "eventSourceConfig",
    "EventSourceType": "eventSourceType",
    "EventSourceParameters": "eventSourceParameters",
    "SourceMNSParameters": "sourceMNSParameters",
    "EventSinkConfig": "eventSinkConfig",
    "DeliveryOption": "deliveryOption",
    "Mode": "mode",
    "EventSchema": "eventSchema",
    "RunOptions": "runOptions",
    "BatchWindow": "batchWindow",
    "RetryStrategy": "retryStrategy",
    "ErrorsTolerance": "errorsTolerance",
    "DeadLetterQueue": "deadLetterQueue",
}
_KEEP_INSIDE = ("SourceMNSParameters", "BatchWindow", "RetryStrategy", "DeadLetterQueue")
_TEMPLATE_NAMES = {api: template for template, api in _API_NAMES.items()}


def _renamed(value: Any, names: Mapping[str, str], keep: tuple[str, ...]) -> Any:
    if not isinstance(value, Mapping):
        return value
    return {
        names.get(key, key): (dict(inner) if key in keep else _renamed(inner, names, keep))
        for key, inner in value.items()
    }


def api_trigger_config(properties: Mapping[str, Any]) -> dict[str, Any]:
    """An EventBridge trigger's template properties as FC's API takes its `triggerConfig`."""
    return _renamed(properties, _API_NAMES, _KEEP_INSIDE)


def template_properties(trigger_config: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of `api_trigger_config`."""
    return _renamed(trigger_config, _TEMPLATE_NAMES, tuple(_API_NAMES[k] for k in _KEEP_INSIDE))


@dataclass(frozen=True)
class QueueRoute:
    """An EventBridge rule on the default bus whose target is a queue (`ALIYUN::EventBridge::Rule` with
    an `acs.mns.queue` target): the matching OSS events become messages of that queue, from which an
    event-streaming trigger pushes them to the function in batches."""

    name: str
    enabled: bool
    pattern: dict[str, Any]
    queue: str
    base64: bool  # the message body is the event's JSON base64-encoded (ParamList IsBase64Encode)

    @classmethod
    def from_resource(cls, name: str, body: Mapping[str, Any], where: str) -> QueueRoute:
        properties = body.get("Properties")
        if not isinstance(properties, Mapping):
            raise TemplateError(f"{where}.Properties: a mapping")
        if str(properties.get("EventBusName", "")) != "default":
            raise TemplateError(
                f"{where}.Properties.EventBusName: {properties.get('EventBusName')!r}; OSS's events are "
                "on the default bus"
            )
        pattern = properties.get("FilterPattern")
        if isinstance(pattern, str):
            try:
                pattern = json.loads(pattern)
            except ValueError as error:
                raise TemplateError(f"{where}.Properties.FilterPattern: not JSON ({error})") from None
        check_pattern(pattern, f"{where}.Properties.FilterPattern")
        targets = properties.get("Targets")
        if not isinstance(targets, list) or len(targets) != 1 or not isinstance(targets[0], Mapping):
            raise TemplateError(f"{where}.Properties.Targets: one target, a queue")
        target = targets[0]
        endpoint = str(target.get("Endpoint", ""))
        if target.get("Type") != "acs.mns.queue" or ":queues/" not in endpoint:
            raise TemplateError(
                f"{where}.Properties.Targets[0]: the local EventBridge routes to queues: Type "
                "acs.mns.queue, Endpoint acs:mns:<region>:<account>:queues/<name>"
            )
        parameters = {
            str(p.get("ResourceKey", "")).lower(): p
            for p in target.get("ParamList") or []
            if isinstance(p, Mapping)
        }
        body_parameter = parameters.get("body") or {}
        if body_parameter.get("Form") != "ORIGINAL":
            raise TemplateError(
                f"{where}.Properties.Targets[0].ParamList: the message body must be the event as it is "
                "(ResourceKey Body, Form ORIGINAL), which the function reads"
            )
        encode = str((parameters.get("isbase64encode") or {}).get("Value", "false")).lower() == "true"
        return cls(
            name=name,
            enabled=str(properties.get("Status", "ENABLE")) != "DISABLE",
            pattern=pattern,
            queue=endpoint.rsplit(":queues/", 1)[1].strip("/"),
            base64=encode,
        )


class TriggerDelivery:
    """One EventBridge trigger of a function: hands it what arrives, through `invoke` (an asynchronous
    invocation): each event on its own (event-driven), or batches of queue messages (event-streaming)."""

    def __init__(self, config: EventBridgeConfig, invoke: Callable[[bytes], object]) -> None:
        self.config, self.invoke = config, invoke
        self._waiting: list[dict[str, Any]] = []
        self._oldest = 0.0
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self.batches: list[int] = []  # sizes of the pushes made, in order

    def start(self) -> None:
        if self.config.mode == EVENT_STREAMING:
            self._flusher = threading.Thread(
                target=self._flush_on_time, daemon=True, name="eventbridge-window"
            )
            self._flusher.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        self.flush()

    def deliver(self, event: dict[str, Any]) -> None:
        """An event of the default bus (event-driven: one invocation each)."""
        if not matches(self.config.pattern, event):
            return
        self.batches.append(1)
        self.invoke(json.dumps(event if self.config.schema == CLOUD_EVENTS else event["data"]).encode())

    def enqueue(self, element: dict[str, Any]) -> None:
        """A message of the trigger's queue, as its CloudEvent (event-streaming: pushed in batches)."""
        if not matches(self.config.pattern, element):
            return
        with self._lock:
            if not self._waiting:
                self._oldest = time.monotonic()
            self._waiting.append(element if self.config.schema == CLOUD_EVENTS else element["data"])
            full = len(self._waiting) >= self.config.count_window
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            batch, self._waiting = (
                self._waiting[: self.config.count_window],
                self._waiting[self.config.count_window :],
            )
            if self._waiting:
                self._oldest = time.monotonic()
        if batch:
            self.batches.append(len(batch))
            self.invoke(json.dumps(batch).encode())

    def pending(self) -> int:
        with self._lock:
            return len(self._waiting)

    def _flush_on_time(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                due = self._oldest + self.config.time_window if self._waiting else None
                now = time.monotonic()
                if due is None or due > now:
                    self._lock.wait(min(0.05, due - now) if due is not None else 0.05)
                    continue
            self.flush()


class LocalEventBridge:
    """The default bus as far as OSS's events go: each OSS notification becomes a CloudEvent, handed to
    every event-driven trigger whose pattern matches, and routed by every enabled queue rule whose pattern
    matches into that queue, whose event-streaming trigger (one per queue) batches it."""

    def __init__(self, routes: tuple[QueueRoute, ...], account_id: str, region: str) -> None:
        self.routes = tuple(r for r in routes if r.enabled)
        self.account_id, self.region = account_id, region
        self.triggers: dict[tuple[str, str], TriggerDelivery] = {}  # by (function, trigger)
        self.unconsumed: dict[str, int] = {}  # messages routed to a queue no enabled trigger reads

    def add(self, function: str, trigger: str, delivery: TriggerDelivery) -> None:
        queue = delivery.config.queue
        for (other_function, other_trigger), other in self.triggers.items():
            if queue and other.config.queue == queue:
                raise TemplateError(
                    f"{function}.{trigger}: the queue {queue!r} is already read by "
                    f"{other_function}.{other_trigger}; one trigger per queue here"
                )
        delivery.start()
        self.triggers[(function, trigger)] = delivery

    def remove(self, function: str, trigger: str) -> None:
        delivery = self.triggers.pop((function, trigger), None)
        if delivery is not None:
            delivery.stop()

    def stop(self) -> None:
        for delivery in list(self.triggers.values()):
            delivery.stop()

    def pending(self) -> int:
        return sum(d.pending() for d in list(self.triggers.values()))

    def on_oss_notification(self, payload: bytes) -> None:
        for record in json.loads(payload)["events"]:
            event = cloud_event(record, self.account_id)
            for delivery in list(self.triggers.values()):
                if delivery.config.source_type == DEFAULT:
                    delivery.deliver(event)
            for route in self.routes:
                if matches(route.pattern, event):
                    self._to_queue(route, event)

    def _to_queue(self, route: QueueRoute, event: dict[str, Any]) -> None:
        body = json.dumps(event)
        self.send_to_queue(route.queue, base64.b64encode(body.encode()).decode() if route.base64 else body)

    def send_to_queue(self, queue: str, body: str) -> None:
        """A message on `queue`, as a rule's routing or any other producer's SendMessage puts it there;
        the trigger reading the queue decodes a base64 body when it is set to."""
        readers = [d for d in list(self.triggers.values()) if d.config.queue == queue]
        if not readers:
            self.unconsumed[queue] = self.unconsumed.get(queue, 0) + 1
            return
        if readers[0].config.base64_decode:
            with contextlib.suppress(ValueError):  # not base64: handed over as it is
                body = base64.b64decode(body, validate=True).decode()
        readers[0].enqueue(queue_event(body, queue, self.account_id, self.region))
