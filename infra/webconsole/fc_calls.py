"""Calls the console makes on the local cloud's documented APIs: a synchronous InvokeFunction through the
FC API with the log's tail (as `autotag invoke --remote` sends it), and the local OSS's request counters
and clock through its admin API (docs/local-oss.md)."""

from __future__ import annotations

import base64
import json
import urllib.request
from dataclasses import dataclass
from typing import Any

MAX_ANSWER_CHARS = 64 * 1024


@dataclass(frozen=True)
class Invoked:
    request_id: str
    error_type: str  # "" when the function returned
    answer: str  # what it returned, or its error document
    log: tuple[str, ...]  # the tail of its log lines
    unreachable: str = ""  # why the FC API did not answer

    @property
    def ok(self) -> bool:
        return not self.error_type and not self.unreachable

    @property
    def error_message(self) -> str:
        """The function's error as `Type: message`, the way the local FC records it."""
        try:
            document = json.loads(self.answer)
            return f"{document.get('errorType')}: {document.get('errorMessage')}"
        except (ValueError, AttributeError):
            return self.answer


def invoke_sync(client: Any, service: str, function: str, payload: bytes) -> Invoked:
    """Invoke `function` synchronously through the FC API, asking for the log's tail."""
    path = f"/{client.api_version}/services/{service}/functions/{function}/invocations"
    headers = client._build_common_headers(
        "POST", path, {"x-fc-invocation-type": "Sync", "x-fc-log-type": "Tail"}
    )
    try:
        response = client._do_request("POST", path, headers, body=payload)
    except Exception as error:  # the FC API unreachable or refusing: one line on the page
        return Invoked("", "", "", (), unreachable=f"the FC API did not answer ({type(error).__name__})")
    answer = response.content.decode("utf-8", errors="replace")[:MAX_ANSWER_CHARS]
    tail = str(response.headers.get("x-fc-log-result", ""))
    try:
        log = tuple(base64.b64decode(tail).decode("utf-8", "replace").splitlines()) if tail else ()
    except ValueError:
        log = ()
    return Invoked(
        request_id=str(response.headers.get("x-fc-request-id", "")),
        error_type=str(response.headers.get("x-fc-error-type", "")),
        answer=answer,
        log=log,
    )


def oss_admin(endpoint: str, token: str, method: str, path: str, body: Any = None) -> Any:
    """One call of the local OSS's admin API (`/_admin/...`), its JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{endpoint}/_admin/{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"null")


def request_counts(endpoint: str, token: str) -> dict[str, int]:
    """The local OSS's requests so far, per API."""
    stats = oss_admin(endpoint, token, "GET", "stats")
    return {str(k): int(v) for k, v in (stats.get("requests") or {}).items()}


def spent(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The requests made between two counts, per API (ones made meanwhile by others included)."""
    return {api: n - before.get(api, 0) for api, n in sorted(after.items()) if n > before.get(api, 0)}
