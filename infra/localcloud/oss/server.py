"""The local OSS HTTP server: real sockets, path-style addressing, OSS's wire format.

`LocalOSS` runs in a background thread for tests (`with LocalOSS() as oss: ...`) or in the foreground
for `autotag local oss`."""

from __future__ import annotations

import base64
import json
import logging
import secrets
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..clock import Clock
from . import admin
from .api.common import OssResponse, ServerContext
from .auth import DEFAULT_CREDENTIALS, Credential, authenticate
from .errors import OssError
from .events import EventTarget, Notifier, Subscription
from .faults import Conditions
from .persistence import SqliteDirectory
from .request import OssRequest, split_target
from .routing import SELF_AUTHENTICATED, route
from .store import Store
from .xmlout import Doc

log = logging.getLogger(__name__)

DEFAULT_OWNER_ID = "1234567890123456"


def _error_response(error: OssError, method: str, request_id: str, host: str) -> OssResponse:
    doc = Doc("Error")
    doc.fields(None, Code=error.code, Message=error.message, RequestId=request_id, HostId=host)
    for name, value in error.details.items():
        doc.add(None, name, value)
    if error.ec:
        doc.add(None, "EC", error.ec)
    body = doc.render()
    if error.status == 304:
        return OssResponse(304, dict(error.headers))  # no body and no x-oss-err: clients read a bare 304
    headers = {"Content-Type": "application/xml", **error.headers}
    if error.ec:
        headers["x-oss-ec"] = error.ec
    if method == "HEAD":
        # HEAD answers have no body, so OSS carries the error document in a header.
        headers["x-oss-err"] = base64.b64encode(body).decode()
        return OssResponse(error.status, headers, b"")
    return OssResponse(error.status, headers, body)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, the body waits for the
    # client's delayed ACK (~40 ms) whenever a response follows a pause, such as injected latency.
    disable_nagle_algorithm = True
    server: _HttpServer

    def version_string(self) -> str:
        return "AliyunOSS"

    def date_time_string(self, timestamp: float | None = None) -> str:
        # The `Date` of every answer is the local OSS's clock (see localcloud.clock).
        return super().date_time_string(self.server.oss.clock.time() if timestamp is None else timestamp)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._handle()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reset_connection(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _handle(self) -> None:
        oss = self.server.oss
        request_id = secrets.token_hex(12).upper()
        host = self.headers.get("Host", f"{oss.host}:{oss.port}")
        if self.command in ("GET", "HEAD"):
            # OSS ignores a body on reads (some clients send Content-Length with none); not reading it
            # means this connection cannot be reused.
            body = b""
            if self.headers.get("Content-Length", "0") not in ("", "0") or self.headers.get(
                "Transfer-Encoding"
            ):
                self.close_connection = True
        else:
            body = self._read_body()
        if self.path.startswith(admin.PREFIX):
            status, answer = admin.handle(oss, self.command, self.path.split("?", 1)[0], body)
            payload = json.dumps(answer).encode() if answer is not None else b""
            self._write(OssResponse(status, {"Content-Type": "application/json"}, payload), request_id)
            return
        try:
            bucket, key, query = split_target(self.path)
            req = OssRequest(
                method=self.command,
                bucket=bucket,
                key=key,
                query=query,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                host=host,
                client_ip=self.client_address[0],
                request_id=request_id,
            )
            req.api, operation = route(req)
            oss.conditions.count(req.api)
            if oss.conditions.latency_seconds:
                time.sleep(oss.conditions.latency_seconds)
            fault = oss.conditions.pick_fault(req.api)
            if fault == "reset":
                self._reset_connection()
                return
            if fault == "error":
                raise OssError(500, "InternalError", "We encountered an internal error. Please try again.")
            if fault == "throttle":
                raise OssError(503, "TotalQpsLimitExceeded", "Max total qps limit is exceeded")
            if req.api not in SELF_AUTHENTICATED:
                authenticate(req, oss.credentials, region=oss.region)
            oss.conditions.before_serving(req)
            response = operation(oss.context, req)
        except OssError as error:
            response = _error_response(error, self.command, request_id, host)
        except Exception:  # a bug here must still answer like a server, and say so in the log
            log.exception("local OSS failed on %s %s", self.command, self.path)
            response = _error_response(
                OssError(500, "InternalError", "The local OSS failed on this request."),
                self.command,
                request_id,
                host,
            )
        self._write(response, request_id)

    def _write(self, response: OssResponse, request_id: str) -> None:
        self.send_response(response.status)
        headers = {"x-oss-request-id": request_id, **response.headers}
        for name, value in headers.items():
            if value != "":
                self.send_header(name, value)
        if response.status not in (204, 304) and "Content-Length" not in response.headers:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.status not in (204, 304):
            self.wfile.write(response.body)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    oss: LocalOSS

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that hang up (timeouts, injected resets) are routine here, not server failures.
        log.debug("connection from %s ended abruptly", client_address, exc_info=True)


class LocalOSS:
    """An OSS-compatible server on a real socket. Port 0 picks a free port."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: list[Credential] | tuple[Credential, ...] = DEFAULT_CREDENTIALS,
        data_dir: Path | str | None = None,
        region: str = "cn-hangzhou",
        owner_id: str = DEFAULT_OWNER_ID,
        event_workers: int = 4,
        clock: Clock | None = None,
    ) -> None:
        self.credentials = {c.access_key_id: c for c in credentials}
        self.region = region
        self.clock = clock or Clock()  # Date and Last-Modified; signatures are checked on the real clock
        self.store = Store(
            SqliteDirectory(Path(data_dir)) if data_dir else None, region=region, clock=self.clock
        )
        self.notifier = Notifier(region=region, owner_id=owner_id, workers=event_workers)
        self.conditions = Conditions()
        self.context = ServerContext(self.store, self.notifier, owner_id, self.credentials)
        self._http = _HttpServer((host, port), _RequestHandler)
        self._http.oss = self
        self.host, self.port = self._http.server_address[:2]  # type: ignore[misc]
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def subscribe(
        self, bucket: str, events: list[str], target: EventTarget, prefix: str = "", suffix: str = ""
    ) -> Subscription:
        return self.notifier.subscribe(bucket, events, target, prefix, suffix)

    def stats(self) -> dict[str, object]:
        return {
            **self.conditions.snapshot(),
            "events": {"delivered": self.notifier.delivered, "failed": self.notifier.failed},
        }

    def start(self) -> LocalOSS:
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True, name="local-oss")
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._http.serve_forever()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self.notifier.close()

    def __enter__(self) -> LocalOSS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
