"""The time a resumable run (a sweep shard) may work: FC's function timeout, less a
reserve to finish the work in hand and write the checkpoint the next run resumes from."""

from __future__ import annotations

from typing import Any


def function_timeout(context: Any) -> float:
    """The function's timeout in seconds, from FC's context (0 where the context has none)."""
    return float(getattr(getattr(context, "function", None), "timeout", 0) or 0)


def reserve_seconds(timeout: float) -> float:
    """Kept back from the timeout: a tenth of it, at least 3 s (a checkpoint write) and at most 60 s."""
    return max(3.0, min(60.0, timeout * 0.1))


def work_deadline(started: float, timeout: float) -> float | None:
    """The monotonic time a run started at `started` stops taking new work (None: no timeout known)."""
    return started + timeout - reserve_seconds(timeout) if timeout else None
