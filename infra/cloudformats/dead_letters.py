"""An FC destination message, the shape of a dead letter (pure): an asynchronous invocation that failed
every attempt, with the original event, the error and the attempt count, as FC's result-callback context
(requestContext / requestPayload / responseContext / responsePayload). The local FC's store writes these
as JSON lines, and a JSON-lines export of the MNS queue that template.yml names as `OnFailure` reads the
same way. A letter whose replay failed is renewed with that failure as its reason; the reasons it had
before, oldest first (the first is why FC dead-lettered it), are kept beside it as `autotagEarlierErrors`,
so a renewal never loses the original failure."""

from __future__ import annotations

import json
from dataclasses import dataclass
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
