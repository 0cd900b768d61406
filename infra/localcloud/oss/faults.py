"""Request counters per OSS API, injected latency and faults, and hooks that run just before a request is
served (to land another client's request at an exact point of a race), for tests and benchmarks."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = ("error", "throttle", "reset")


@dataclass(frozen=True)
class FaultRule:
    """With probability `rate`, answer a request to one of `apis` (all when empty) with `kind`:
    `error` (500 InternalError), `throttle` (503 TotalQpsLimitExceeded) or `reset` (TCP reset, no reply)."""

    kind: str
    rate: float
    apis: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {self.kind!r} is not one of {', '.join(FAULT_KINDS)}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate {self.rate} is not between 0 and 1")

    def applies_to(self, api: str) -> bool:
        return not self.apis or api in self.apis


@dataclass
class Conditions:
    """What the server does to requests besides serving them; changed at run time by tests."""

    latency_seconds: float = 0.0
    faults: list[FaultRule] = field(default_factory=list)
    seed: int | None = None
    requests: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    bytes_sent: Counter[str] = field(default_factory=Counter)  # response body bytes written, per API
    # Called with each authenticated request just before it is served (an OssRequest).
    hooks: list[Callable[[Any], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(self.seed)

    def count(self, api: str) -> None:
        with self._lock:
            self.requests[api] += 1

    def sent(self, api: str, size: int) -> None:
        with self._lock:
            self.bytes_sent[api] += size

    def pick_fault(self, api: str) -> str | None:
        with self._lock:
            for rule in self.faults:
                if rule.applies_to(api) and self._random.random() < rule.rate:
                    self.injected[rule.kind] += 1
                    return rule.kind
        return None

    def before_serving(self, request: Any) -> None:
        for hook in list(self.hooks):
            hook(request)

    def set_faults(self, rules: list[FaultRule], seed: int | None = None) -> None:
        with self._lock:
            self.faults = list(rules)
            if seed is not None:
                self._random = random.Random(seed)

    def reset_counters(self) -> None:
        with self._lock:
            self.requests.clear()
            self.injected.clear()
            self.bytes_sent.clear()

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                "requests": dict(self.requests),
                "total": sum(self.requests.values()),
                "injected": dict(self.injected),
                "latency_ms": self.latency_seconds * 1000,
                "faults": [{"kind": r.kind, "rate": r.rate, "apis": sorted(r.apis)} for r in self.faults],
            }
