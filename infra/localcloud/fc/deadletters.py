"""The local on-failure destination: asynchronous invocations that failed every attempt, kept with the
original event, the error and the attempt count, as JSON lines (one destination message per line).

The message shape follows FC's result-callback context (requestContext / requestPayload /
responseContext / responsePayload), so a JSON-lines export of the MNS queue that template.yml names as
`OnFailure` reads the same way (`autotag replay --file`). A letter whose replay failed stays with that
failure as its reason; the reasons it had before, oldest first (the first is why FC dead-lettered it),
are kept beside it as `autotagEarlierErrors`, so a renewal never loses the original failure."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DeadLetter:
    id: str
    function_arn: str
    request_id: str
    payload: str  # the original event, as text
    error_type: str
    error_message: str
    attempts: int
    timestamp: str
    # The reasons it had before the latest (error type, message), oldest first: failed replays renew it.
    earlier_errors: tuple[tuple[str, str], ...] = ()

    @property
    def first_error(self) -> tuple[str, str]:
        """Why FC dead-lettered it (error type, message), whatever its replays said since."""
        return self.earlier_errors[0] if self.earlier_errors else (self.error_type, self.error_message)

    @property
    def function(self) -> str:
        return self.function_arn.rsplit("/", 1)[-1]

    @property
    def service(self) -> str:
        """The function's service, from `...:services/<service>/functions/<name>` ("" if not shaped so)."""
        _, found, rest = self.function_arn.partition(":services/")
        return rest.split("/functions/", 1)[0] if found and "/functions/" in rest else ""

    def message(self) -> dict[str, Any]:
        earlier = [{"errorType": t, "errorMessage": m} for t, m in self.earlier_errors]
        return {
            "id": self.id,
            "timestamp": self.timestamp,
            "requestContext": {
                "requestId": self.request_id,
                "functionArn": self.function_arn,
                "condition": "RetriesExhausted",
                "approximateInvokeCount": self.attempts,
            },
            "requestPayload": self.payload,
            "responseContext": {"statusCode": 200, "functionError": self.error_type},
            "responsePayload": json.dumps({"errorType": self.error_type, "errorMessage": self.error_message}),
            **({"autotagEarlierErrors": earlier} if earlier else {}),
        }


class DeadLetterError(ValueError):
    """A line that is not a destination message; the message names the line."""


def parse_dead_letter(message: dict[str, Any], where: str) -> DeadLetter:
    try:
        context = message["requestContext"]
        response = json.loads(message.get("responsePayload") or "{}")
        return DeadLetter(
            id=str(message.get("id") or context["requestId"]),
            function_arn=str(context["functionArn"]),
            request_id=str(context["requestId"]),
            payload=str(message["requestPayload"]),
            error_type=str(
                response.get("errorType") or message.get("responseContext", {}).get("functionError", "")
            ),
            error_message=str(response.get("errorMessage", "")),
            attempts=int(context.get("approximateInvokeCount", 0)),
            timestamp=str(message.get("timestamp", "")),
            earlier_errors=tuple(
                (str(earlier["errorType"]), str(earlier["errorMessage"]))
                for earlier in message.get("autotagEarlierErrors") or []
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DeadLetterError(f"{where}: not an FC destination message ({exc!r} missing or wrong)") from exc


def read_dead_letters(path: Path) -> list[DeadLetter]:
    letters = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            message = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DeadLetterError(f"{path}:{number}: not JSON: {exc.msg}") from exc
        letters.append(parse_dead_letter(message, f"{path}:{number}"))
    return letters


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
