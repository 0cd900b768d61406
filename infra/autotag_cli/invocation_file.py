"""The local FC's invocation log: what `autotag local up` prints of each invocation, and what the function
logged during it, kept as JSON lines in `.localcloud/invocations-<pid>.jsonl` of the folder it runs in,
one per running instance (the instance's file names it; the logs of instances no longer running are
removed when another starts; at 10 MiB the file moves to `invocations-<pid>.jsonl.1` and a new one
begins) for `autotag logs`. One line per record:

    {"time": "2026-12-01T03:00:07.123Z", "function": "tag-on-upload", "requestId": "…", "kind": "done",
     "attempt": 1, "ignored": false, "line": "03:00:07 tag-on-upload PutObject a.jpg: tagged [31 ms, …]",
     "log": ["2026-12-01 03:00:07,100 INFO {\\"key\\": \\"a.jpg\\", …}"],
     "event": "{\\"events\\": …}", "result": "{\\"results\\": …}", "error": ""}

`kind` is done (a handler call finished, either way), retry, dead-letter or undelivered; `ignored` marks
the upload events of the system's own state objects, which the function ignores. `event`
is the event the function was invoked with, `result` what it returned and `error` what it raised, each cut
to 64 KiB (the console shows them)."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from localcloud.fc.runtime import DONE, InvocationRecord

from .function_host import LOCAL_STATE
from .invocation_log import format_record, is_ignored_state_write

_INSTANCE_LOG = re.compile(r"invocations-([0-9]+)\.jsonl(\.1)?")


def invocation_log_of(pid: int, folder: Path = LOCAL_STATE) -> Path:
    """The invocation log of the local cloud running as process `pid`."""
    return folder / f"invocations-{pid}.jsonl"


def remove_stale_logs(running: set[int], folder: Path = LOCAL_STATE) -> None:
    """Remove the invocation logs of the instances no longer running (not in `running`)."""
    if not folder.is_dir() or folder.is_symlink():
        return
    for path in folder.iterdir():
        found = _INSTANCE_LOG.fullmatch(path.name)
        if found and int(found[1]) not in running:
            path.unlink(missing_ok=True)


def latest_log(folder: Path = LOCAL_STATE) -> Path | None:
    """The invocation log written last in `folder` (of an instance since stopped), if any."""
    if not folder.is_dir():
        return None
    logs = [p for p in folder.iterdir() if _INSTANCE_LOG.fullmatch(p.name) and not p.name.endswith(".1")]
    return max(logs, key=lambda p: p.stat().st_mtime, default=None)


MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_SHOWN_BYTES = 64 * 1024  # of the event, the result and the error each
MAX_LINES_PER_INVOCATION = 200  # of the function's log, the last ones (FC's tail keeps the last 4 KB)
_HANDLER_SUFFIX = " handler"  # the local FC runs each handler on a thread named "<invoking thread> handler"


class FunctionLog(logging.Handler):
    """The log records of each running handler, by the thread that invoked it, until that invocation's
    record takes them (`take`)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self._lines: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        name = record.threadName or ""
        if not name.endswith(_HANDLER_SUFFIX):
            return  # not a function's handler
        try:
            text = self.format(record)
        except Exception:  # a record that cannot be formatted is not worth failing an invocation for
            return
        with self._lock:
            lines = self._lines.setdefault(name.removesuffix(_HANDLER_SUFFIX), [])
            lines.append(text)
            del lines[:-MAX_LINES_PER_INVOCATION]

    def take(self, thread: str) -> list[str]:
        with self._lock:
            return self._lines.pop(thread, [])


class InvocationLogWriter:
    """Appends a record per invocation record to the invocation log, with the lines the function logged."""

    def __init__(self, path: Path, function_log: FunctionLog, state_prefix: str) -> None:
        self.path, self.function_log, self.state_prefix = path, function_log, state_prefix
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        # readable by its owner only: the functions' log lines name objects and rules
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))

    def __call__(self, record: InvocationRecord) -> None:
        logged = self.function_log.take(threading.current_thread().name) if record.kind == DONE else []
        now = datetime.now(timezone.utc)
        document = {
            "time": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "function": record.function,
            "requestId": record.request_id,
            "kind": record.kind,
            "attempt": record.attempt,
            "ignored": is_ignored_state_write(record, self.state_prefix),
            "line": format_record(record, now.timestamp()),
            "log": logged,
            "event": record.event[:MAX_SHOWN_BYTES].decode("utf-8", errors="replace"),
            "result": (record.result.payload or "")[:MAX_SHOWN_BYTES] if record.result else "",
            "error": record.result.error_message[:MAX_SHOWN_BYTES] if record.result else "",
        }
        text = json.dumps(document, ensure_ascii=False) + "\n"
        with self._lock:
            if self.path.exists() and self.path.stat().st_size > MAX_FILE_BYTES:
                self.path.replace(self.path.with_name(self.path.name + ".1"))
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as file:
                file.write(text)


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of the invocation log, oldest first (the moved-aside file's, then the current one's); a
    line that is not a record (one being written) is skipped."""
    for part in (path.with_name(path.name + ".1"), path):
        try:
            text = part.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        for line in text.splitlines():
            record = parse_record(line)
            if record is not None:
                yield record


def parse_record(line: str) -> dict[str, Any] | None:
    try:
        document = json.loads(line)
    except ValueError:
        return None
    return document if isinstance(document, dict) and "line" in document else None
