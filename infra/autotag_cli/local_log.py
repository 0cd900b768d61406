"""What `autotag local up` prints while it runs: a line per invocation, retry and dead letter — except the
upload function ignoring the system's own state objects (a sweep keeping its state in the tagged bucket
writes many: their upload events fire the trigger too), which are counted instead, in a line at most every
30 s and one at the end (`-v` prints them too) — and the functions' own log lines at `--log-level`, while
every invocation goes to the invocation log (invocation_file.py) with what the function logged at INFO and
above, as FC's log keeps it."""

from __future__ import annotations

import logging
import threading
import time

import click

from localcloud.fc.runtime import InvocationRecord

from .invocation_log import format_record, is_ignored_state_write

COUNT_EVERY_SECONDS = 30.0
WHY = "upload events of the system's own state objects; -v shows them"


class LocalUpLog:
    def __init__(self, state_prefix: str, verbose: bool) -> None:
        self.state_prefix, self.verbose = state_prefix, verbose
        self.ignored = 0  # in all
        self._pending = 0  # since the last count line
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True, name="local-up-log")

    def __call__(self, record: InvocationRecord) -> None:
        if not self.verbose and is_ignored_state_write(record, self.state_prefix):
            with self._lock:
                self.ignored += 1
                self._pending += 1
            return
        click.echo(format_record(record))

    def _tick(self) -> None:
        while not self._stop.wait(COUNT_EVERY_SECONDS):
            with self._lock:
                pending, self._pending = self._pending, 0
            if pending:
                since = f"in the last {COUNT_EVERY_SECONDS:.0f} s"
                click.echo(f"{time.strftime('%H:%M:%S')} {pending:,} ignored state writes {since} ({WHY})")

    def __enter__(self) -> LocalUpLog:
        self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.ignored:
            click.echo(f"{time.strftime('%H:%M:%S')} {self.ignored:,} ignored state writes in all ({WHY})")


class BelowLevel(logging.Filter):
    """Drops the functions' own records below `level` from the console (the invocation log keeps them)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name.startswith("autotag") and record.levelno < self.level)
