"""The invocations the console lists, followed from the invocation log `autotag local up` writes (JSON
lines, one per invocation record, as autotag_cli/invocation_file.py describes them).

The index keeps, per record, only what the list shows and filters on, and where the whole record is in
the file: a page reads the records it shows, never the whole log, so 10,000 invocations cost a list of
small entries. `outcome` is what a filter picks: ok or failed for a finished call, else the record's kind
(retry, dead-letter, undelivered). When the log moves aside (it does at 10 MiB) the older entries point
into the moved file; records older than that are gone and say so."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

PAGE = 50
POLL_SECONDS = 0.3


@dataclass(frozen=True)
class Entry:
    seq: int  # 1 for the first record the console saw, and so on
    time: str
    function: str
    request_id: str
    outcome: str
    line: str  # the line `local up` printed for it
    ignored: bool  # the upload function ignoring a write of the system's own state
    path: str  # where the whole record is
    offset: int
    inode: int


def outcome_of(record: dict[str, Any]) -> str:
    kind = str(record.get("kind", ""))
    if kind != "done":
        return kind or "unknown"
    return "failed" if record.get("error") else "ok"


class InvocationIndex:
    """Follows the invocation log on a thread of its own and tells `listeners` of each new entry."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: list[Entry] = []
        self.listeners: list[Callable[[Entry], None]] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._inode = 0
        self._offset = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="console invocations", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def wait_for_more(self, seen: int, seconds: float) -> int:
        """How many entries there are, once there are more than `seen` or `seconds` have passed."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.entries) > seen, seconds)
            return len(self.entries)

    def page(self, function: str, outcome: str, before: int | None) -> tuple[list[Entry], int | None]:
        """Up to PAGE entries, newest first, older than seq `before`, that match; and the `before` of the
        next page (None on the last)."""
        with self._lock:
            end = len(self.entries) if before is None else max(0, min(before - 1, len(self.entries)))
            found: list[Entry] = []
            index = end - 1
            while index >= 0 and len(found) <= PAGE:
                entry = self.entries[index]
                if matches(entry, function, outcome):
                    found.append(entry)
                index -= 1
        if len(found) > PAGE:
            return found[:PAGE], found[PAGE - 1].seq
        return found, None

    def entry(self, seq: int) -> Entry | None:
        with self._lock:
            return self.entries[seq - 1] if 0 < seq <= len(self.entries) else None

    def record(self, entry: Entry) -> dict[str, Any] | None:
        """The whole record of `entry`, or None when the log no longer keeps it."""
        for candidate in (entry.path, entry.path + ".1"):
            try:
                with open(candidate, "rb") as file:
                    if os.fstat(file.fileno()).st_ino != entry.inode:
                        continue
                    file.seek(entry.offset)
                    document = json.loads(file.readline())
                    return document if isinstance(document, dict) else None
            except (OSError, ValueError):
                continue
        return None

    def _follow(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):  # not written yet, or moving aside: read again next time
                self._read_new()
            self._stop.wait(POLL_SECONDS)

    def _read_new(self) -> None:
        with open(self.path, "rb") as file:
            inode = os.fstat(file.fileno()).st_ino
            if inode != self._inode:  # a new file: the log began or moved aside
                self._inode, self._offset = inode, 0
            file.seek(self._offset)
            data = file.read()
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits for its end
        offset = self._offset
        new: list[Entry] = []
        for raw in complete.splitlines(keepends=True):
            start, offset = offset, offset + len(raw)
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            new.append(
                Entry(
                    seq=0,
                    time=str(record.get("time", "")),
                    function=str(record.get("function", "")),
                    request_id=str(record.get("requestId", "")),
                    outcome=outcome_of(record),
                    line=str(record.get("line", "")),
                    ignored=bool(record.get("ignored")),
                    path=str(self.path),
                    offset=start,
                    inode=inode,
                )
            )
        self._offset = offset
        if not new:
            return
        with self._changed:
            for entry in new:
                numbered = replace(entry, seq=len(self.entries) + 1)
                self.entries.append(numbered)
            self._changed.notify_all()
            added = self.entries[-len(new) :]
        for entry in added:
            for listener in list(self.listeners):
                listener(entry)


def matches(entry: Entry, function: str, outcome: str) -> bool:
    return (not function or entry.function == function) and (not outcome or entry.outcome == outcome)
