"""What `autotag local up` prints about the local CloudFlow's executions: a line when one starts, its
progress every few seconds while its items move, and a line when it ends (executions that had ended
before it started watching, with --data-dir, are not news). `progress_lines` is pure: it compares what
each execution showed last with what it shows now."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import click

EVERY_SECONDS = 5.0

Shown = tuple[str, int, int, int]  # status, items read, done, failed


def _shown(record: dict[str, Any]) -> Shown:
    total = done = failed = 0
    for run in (record.get("MapRuns") or {}).values():
        counts = run.get("ItemCounts") or {}
        total += int(counts.get("Total") or 0)
        done += int(counts.get("Succeed") or 0) + int(counts.get("Failed") or 0)
        failed += int(counts.get("Failed") or 0)
    return str(record.get("Status", "")), total, done, failed


def progress_lines(
    before: dict[tuple[str, str], Shown], records: Iterable[dict[str, Any]], clock: str
) -> tuple[list[str], dict[tuple[str, str], Shown]]:
    """The lines to print, and what each execution shows now."""
    lines, now = [], {}
    for record in records:
        key = (str(record.get("FlowName", "")), str(record.get("Name", "")))
        shown = now[key] = _shown(record)
        if before.get(key) == shown:
            continue
        status, total, done, failed = shown
        items = f"{done:,} of {total:,} items read so far done, {failed:,} failed"
        lines.append(f"{clock} CloudFlow {key[0]}/{key[1]}: {status}, {items}")
    return lines, now


class FlowsLog:
    """Prints `progress_lines` every EVERY_SECONDS for the executions `records()` gives."""

    def __init__(self, records: Callable[[], list[dict[str, Any]]]) -> None:
        self.records = records
        self._seen: dict[tuple[str, str], Shown] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="local-up-flows")

    def _watch(self) -> None:
        self._seen = progress_lines({}, self.records(), "")[1]  # what ran before is not news
        while not self._stop.wait(EVERY_SECONDS):
            try:
                lines, self._seen = progress_lines(self._seen, self.records(), time.strftime("%H:%M:%S"))
            except RuntimeError:  # a record changed under the read (the engine's threads): next time
                continue
            for line in lines:
                click.echo(line)

    def __enter__(self) -> FlowsLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
