"""OSS event notifications: subscriptions, and each operation's event (as cloudformats.oss_events writes
it) delivered to every subscription it matches.

Delivery is asynchronous (a queue drained by worker threads), so an upload never waits for a subscriber,
as with OSS. PutObjectTagging and reads publish nothing."""

from __future__ import annotations

import itertools
import json
import logging
import queue
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from cloudformats.oss_events import ObjectEvent, event_record

log = logging.getLogger(__name__)

EventTarget = Callable[[bytes], None] | str  # a Python callback taking the JSON bytes, or an HTTP URL


def normalise_event_name(name: str) -> str:
    """`oss:ObjectCreated:PutObject` and `ObjectCreated:PutObject` name the same event."""
    return name[4:] if name.startswith("oss:") else name


@dataclass(frozen=True)
class Subscription:
    id: str
    bucket: str  # "*": every bucket (EventBridge's default bus carries every bucket's events)
    events: tuple[str, ...]
    target: EventTarget
    prefix: str = ""
    suffix: str = ""

    def matches(self, bucket: str, event_name: str, key: str) -> bool:
        if (
            self.bucket not in ("*", bucket)
            or not key.startswith(self.prefix)
            or not key.endswith(self.suffix)
        ):
            return False
        family = event_name.split(":", 1)[0]
        return any(
            pattern == event_name or pattern == f"{family}:*" or pattern == "*"
            for pattern in map(normalise_event_name, self.events)
        )


class Notifier:
    def __init__(self, *, region: str, owner_id: str, workers: int = 4) -> None:
        self.region = region
        self.owner_id = owner_id
        self._subscriptions: dict[str, Subscription] = {}
        self._ids = itertools.count(1)
        self._queue: queue.Queue[tuple[Subscription, bytes] | None] = queue.Queue()
        self._lock = threading.Lock()
        self.delivered = 0
        self.failed = 0
        self._workers = [
            threading.Thread(target=self._deliver_forever, daemon=True, name=f"oss-events-{i}")
            for i in range(workers)
        ]
        for worker in self._workers:
            worker.start()

    def subscribe(
        self,
        bucket: str,
        events: list[str] | tuple[str, ...],
        target: EventTarget,
        prefix: str = "",
        suffix: str = "",
    ) -> Subscription:
        subscription = Subscription(
            f"local-rule-{next(self._ids):04d}", bucket, tuple(events), target, prefix, suffix
        )
        with self._lock:
            self._subscriptions[subscription.id] = subscription
        return subscription

    def unsubscribe(self, subscription_id: str) -> bool:
        with self._lock:
            return self._subscriptions.pop(subscription_id, None) is not None

    def subscriptions(self) -> list[Subscription]:
        with self._lock:
            return list(self._subscriptions.values())

    def publish(self, event: ObjectEvent) -> int:
        """Queue the event for every matching subscription; returns how many will receive it."""
        matching = [s for s in self.subscriptions() if s.matches(event.bucket, event.event_name, event.key)]
        for subscription in matching:
            record = event_record(event, region=self.region, owner_id=self.owner_id, rule_id=subscription.id)
            payload = json.dumps({"events": [record]}, ensure_ascii=False).encode()
            self._queue.put((subscription, payload))
        return len(matching)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was delivered (or failed); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self) -> None:
        for _ in self._workers:
            self._queue.put(None)

    def _deliver_forever(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                subscription, payload = item
                self._deliver(subscription, payload)
            finally:
                self._queue.task_done()

    def _deliver(self, subscription: Subscription, payload: bytes) -> None:
        try:
            if isinstance(subscription.target, str):
                request = urllib.request.Request(
                    subscription.target,
                    data=payload,
                    method="POST",
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=30) as response:
                    response.read()
            else:
                subscription.target(payload)
        except Exception:  # a subscriber's failure must not stop delivery to the others
            log.exception("event delivery to %s failed", subscription.id)
            with self._lock:
                self.failed += 1
        else:
            with self._lock:
                self.delivered += 1
