"""The local on-failure destination: asynchronous invocations that failed every attempt, kept with the
original event, the error and the attempt count, as JSON lines (one destination message per line).

The message shape (cloudformats/dead_letters.py) follows FC's result-callback context, so a JSON-lines
export of the MNS queue that template.yml names as `OnFailure` reads the same way
(`autotag replay --file`). A letter whose replay failed stays with that failure as its reason, its earlier
reasons kept beside it (the first is why FC dead-lettered it)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

from cloudformats.dead_letters import DeadLetter, DeadLetterError, parse_dead_letter, read_dead_letters


class DeadLetterStore:
    """Append-only JSON lines (or memory only, without a path); `remove` rewrites the file without the
    given ids, after a successful replay."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._memory: list[DeadLetter] = []

    def put(
        self,
        function_arn: str,
        request_id: str,
        payload: bytes,
        error_type: str,
        error_message: str,
        attempts: int,
    ) -> DeadLetter:
        letter = DeadLetter(
            id=str(uuid.uuid4()),
            function_arn=function_arn,
            request_id=request_id,
            payload=payload.decode("utf-8", errors="replace"),
            error_type=error_type,
            error_message=error_message,
            attempts=attempts,
            timestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        )
        with self._lock:
            if self.path is None:
                self._memory.append(letter)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(letter.message(), ensure_ascii=False) + "\n")
        return letter

    def all(self) -> list[DeadLetter]:
        with self._lock:
            if self.path is None:
                return list(self._memory)
            return read_dead_letters(self.path) if self.path.exists() else []

    def renew(self, reasons: dict[str, tuple[str, str]]) -> None:
        """Give letters (by id) a new error type and message, a failed replay's: the letter stays, saying
        why it failed last, and keeps the reasons it had before (the first among them)."""
        with self._lock:
            if self.path is None:
                self._memory = [_renewed(d, reasons) for d in self._memory]
                return
            if not self.path.exists():
                return
            kept = [_renewed(d, reasons) for d in read_dead_letters(self.path)]
            self.path.write_text(
                "".join(json.dumps(d.message(), ensure_ascii=False) + "\n" for d in kept), encoding="utf-8"
            )

    def remove(self, ids: set[str]) -> None:
        with self._lock:
            if self.path is None:
                self._memory = [d for d in self._memory if d.id not in ids]
                return
            if not self.path.exists():
                return
            kept = [d for d in read_dead_letters(self.path) if d.id not in ids]
            self.path.write_text(
                "".join(json.dumps(d.message(), ensure_ascii=False) + "\n" for d in kept), encoding="utf-8"
            )


def _renewed(letter: DeadLetter, reasons: dict[str, tuple[str, str]]) -> DeadLetter:
    if letter.id not in reasons:
        return letter
    latest = reasons[letter.id]
    if latest == (letter.error_type, letter.error_message):  # failed again the same way: nothing new
        return letter
    earlier = (*letter.earlier_errors, (letter.error_type, letter.error_message))
    return replace(letter, error_type=latest[0], error_message=latest[1], earlier_errors=earlier)


__all__ = ["DeadLetter", "DeadLetterError", "DeadLetterStore", "parse_dead_letter", "read_dead_letters"]
