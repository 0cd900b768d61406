"""The local cloud's clock: the real time plus an offset, so demos and tests can be "8 days later" the way
the real cloud would be — the local OSS answers with a shifted `Date`, stamps writes with a shifted
Last-Modified, and the local FC fires timers at shifted trigger times. Request signatures are still checked
against the real clock, so clients need no change. One Clock can be shared by the local OSS and the local
FC; its offset can change while they run."""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime, timedelta, timezone

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(w|d|h|m|s)")  # ASCII digits only
_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


class DurationError(ValueError):
    """Not a duration such as 8d, -1h or 1h30m."""


def parse_duration(text: str) -> timedelta:
    """`8d`, `-1h`, `1h30m`, `90s`, `2w`, `0`: a signed sum of parts in w, d, h, m and s."""
    spec = text.strip().lower()
    sign = -1.0 if spec.startswith("-") else 1.0
    body = spec.lstrip("+-")
    if body == "0":
        return timedelta(0)
    parts = _PART.findall(body)
    if not body or "".join(n + u for n, u in parts) != body:
        raise DurationError(f"{text!r} is not a duration such as 8d, -1h or 1h30m (units w, d, h, m, s)")
    seconds = sign * sum(float(n) * _UNITS[u] for n, u in parts)
    if abs(seconds) > 100 * 365 * 86400:
        raise DurationError(f"{text!r} is more than 100 years")
    return timedelta(seconds=seconds)


def format_duration(offset: timedelta) -> str:
    seconds = int(offset.total_seconds())
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return sign + "".join(parts)


class Clock:
    """Now, as the local cloud sees it: the real clock shifted by `offset` (which may be negative)."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self._offset = offset
        self._lock = threading.Lock()

    @property
    def offset(self) -> timedelta:
        with self._lock:
            return self._offset

    @offset.setter
    def offset(self, value: timedelta) -> None:
        with self._lock:
            self._offset = value

    def advance(self, delta: timedelta) -> None:
        """Move the clock by `delta` (later when positive)."""
        with self._lock:
            self._offset += delta

    def time(self) -> float:
        """Epoch seconds."""
        return time.time() + self.offset.total_seconds()

    def now(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset
