"""Where one shard of a backfill stands, as plain data with a JSON codec (pure), and the job's totals.

A shard's checkpoint holds its position — the last key of a listing, or the data file and record number of
an inventory or manifest — and its counts by outcome, so the job's progress, rate and ETA are read from
the checkpoints alone. Counts and position are written together: a run killed between checkpoints redoes
the objects after the last one (tagging is idempotent), so no object is counted twice, though one tagged
by the killed run is counted as unchanged by the redo."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from ..timestamps import format_timestamp, parse_timestamp

FORMAT_VERSION = 1
# Outcomes of an object: the upload path's own (tag_object) and the job's.
OUTCOMES = ("tagged", "unchanged", "skipped", "ignored", "rejected", "failed", "older")
FAILURES = ("rejected", "failed")  # what the report's failed.csv lists


class ProgressError(ValueError):
    """A shard checkpoint this version cannot read."""


class _Counted:
    """Objects by outcome, and the sums a report shows."""

    counts: dict[str, int]

    @property
    def processed(self) -> int:
        return sum(self.counts.values())

    @property
    def failed(self) -> int:
        return sum(self.counts.get(name, 0) for name in FAILURES)


@dataclass(frozen=True)
class ShardProgress(_Counted):
    after_key: str = ""  # a listing: the last key done
    unit: int = 0  # an inventory or manifest: the data file being read
    row: int = 0  # ... and the number of its next record
    counts: dict[str, int] = field(default_factory=dict)
    requests: int = 0  # OSS requests the shard made, state included
    units_bytes: int = 0  # bytes of the data files done (an inventory shard's progress)
    active_seconds: float = 0.0  # time spent working, over every run
    runs: int = 0
    failure_chunks: int = 0  # failures-*.csv written so far
    done: bool = False
    stopped: str = ""  # why the last run ended before the shard was done
    started: datetime | None = None
    updated: datetime | None = None

    def rate(self) -> float:
        """Objects per second of working time."""
        return self.processed / self.active_seconds if self.active_seconds > 0 else 0.0


def add_counts(counts: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    merged = dict(counts)
    for name, number in more.items():
        merged[name] = merged.get(name, 0) + number
    return merged


def advanced(progress: ShardProgress, **changes: Any) -> ShardProgress:
    return replace(progress, **changes)


def _time(moment: datetime | None) -> str | None:
    return format_timestamp(moment) if moment is not None else None


def encode_progress(progress: ShardProgress) -> bytes:
    document = {"format": FORMAT_VERSION, **asdict(progress)}
    document["started"], document["updated"] = _time(progress.started), _time(progress.updated)
    return json.dumps(document, ensure_ascii=False, indent=1).encode()


def decode_progress(data: bytes) -> ShardProgress:
    try:
        document = json.loads(data)
        if document.get("format") != FORMAT_VERSION:
            raise ProgressError(f"checkpoint format {document.get('format')!r} is not {FORMAT_VERSION}")
        counts = {str(k): int(v) for k, v in document["counts"].items() if k in OUTCOMES}
        return ShardProgress(
            after_key=str(document["after_key"]),
            unit=int(document["unit"]),
            row=int(document["row"]),
            counts=counts,
            requests=int(document["requests"]),
            units_bytes=int(document["units_bytes"]),
            active_seconds=float(document["active_seconds"]),
            runs=int(document["runs"]),
            failure_chunks=int(document["failure_chunks"]),
            done=bool(document["done"]),
            stopped=str(document["stopped"]),
            started=parse_timestamp(document["started"] or ""),
            updated=parse_timestamp(document["updated"] or ""),
        )
    except ProgressError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProgressError(f"unreadable checkpoint: {exc!r}") from None


@dataclass(frozen=True)
class JobTotals(_Counted):
    counts: dict[str, int]
    requests: int
    shards: int
    done: int


def totals(progresses: list[ShardProgress]) -> JobTotals:
    counts: dict[str, int] = {}
    for progress in progresses:
        counts = add_counts(counts, progress.counts)
    return JobTotals(
        {name: counts.get(name, 0) for name in OUTCOMES},
        sum(p.requests for p in progresses),
        len(progresses),
        sum(p.done for p in progresses),
    )
