"""The local OSS HTTP server: real sockets, path-style addressing, OSS's wire format.

`LocalOSS` runs in a background thread for tests (`with LocalOSS() as oss: ...`) or in the foreground
for `autotag local oss`.

It holds its ground against careless or hostile local clients: request bodies are read only once the
request is authenticated and only up to the size OSS allows for the API; framing that could smuggle a
second request is refused; connections are bounded, and idle connections and request heads that do not
complete in time are closed by a watchdog; the admin API needs a token."""

from __future__ import annotations

import base64
import contextlib
import errno
import hmac
import json
import logging
import re
import secrets
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..clock import Clock
from . import admin, inventory_runs
from .api.common import OssResponse, ServerContext, check_content_md5
from .auth import DEFAULT_CREDENTIALS, Credential, authenticate
from .authorization import access_for, authorize
from .errors import OssError, is_decimal
from .events import EventTarget, Notifier, Subscription
from .faults import Conditions
from .inventory import DEFAULT_ROWS_PER_FILE, InventoryRun
from .limits import (
    DRAIN_BYTES,
    IDLE_TIMEOUT_SECONDS,
    IO_TIMEOUT_SECONDS,
    MAX_CONNECTIONS,
    body_limit,
    check_user_meta,
)
from .persistence import SqliteDirectory
from .request import OssRequest, host_bucket, split_target
from .routing import CREDENTIALS_FIRST, SELF_AUTHENTICATED, route
from .store import Store
from .xmlout import Doc

log = logging.getLogger(__name__)

DEFAULT_OWNER_ID = "1234567890123456"


def _error_response(error: OssError, method: str, request_id: str, host: str) -> OssResponse:
    doc = Doc("Error")
    doc.fields(None, Code=error.code, Message=error.message, RequestId=request_id, HostId=host)
    for name, value in error.details.items():
        if isinstance(value, dict):  # a nested element, such as AccessDeniedDetail
            doc.fields(doc.add(None, name), **value)
        else:
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


_UNSAFE_HEADER_VALUE = re.compile(r"[\r\n\x00]")


def _too_large(size: int, limit: int) -> OssError:
    return OssError(
        400,
        "EntityTooLarge",
        f"The request body is {size} bytes; this API takes at most {limit}.",
        MaxSizeAllowed=str(limit),
        ProposedSize=str(size),
    )


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, the body waits for the
    # client's delayed ACK (~40 ms) whenever a response follows a pause, such as injected latency.
    disable_nagle_algorithm = True
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.oss.io_timeout)  # a read stalled this long ends it

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

    def handle_one_request(self) -> None:
        self.server.watchdog.expect_head(self)  # the next request's head must arrive in time
        super().handle_one_request()

    def _body_length(self) -> int | None:
        """The announced body length (None: chunked), refusing framing two parsers could read apart."""
        lengths = self.headers.get_all("Content-Length") or []
        encodings = self.headers.get_all("Transfer-Encoding") or []
        if len(lengths) > 1 or (lengths and encodings) or len(encodings) > 1:
            self.close_connection = True
            raise OssError(
                400, "InvalidRequest", "The request has more than one Content-Length or Transfer-Encoding."
            )
        if encodings:
            if encodings[0].strip().lower() != "chunked":
                self.close_connection = True
                raise OssError(400, "InvalidRequest", f"Transfer-Encoding {encodings[0]!r} is not chunked.")
            return None
        if lengths and not is_decimal(lengths[0].strip()):
            self.close_connection = True
            raise OssError(400, "InvalidRequest", f"Content-Length {lengths[0]!r} is not a number.")
        return int(lengths[0]) if lengths else 0

    def _read_body(self, length: int | None, limit: int) -> bytes:
        if length is None:
            return self._read_chunked(limit)
        if length > limit:
            raise _too_large(length, limit)
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            self.close_connection = True
            raise OssError(400, "IncompleteBody", "The request body ended before its Content-Length.")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_text = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_text or b"0", 16)
            except ValueError as exc:
                self.close_connection = True
                raise OssError(400, "InvalidRequest", "A chunk size is not hexadecimal.") from exc
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > limit:
                self.close_connection = True
                raise _too_large(total, limit)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _skip_body(self, length: int | None) -> None:
        """After answering without the body: drop a small one to keep the connection, else hang up."""
        if length is not None and length <= DRAIN_BYTES:
            self.rfile.read(length)
        else:
            self.close_connection = True

    def _reset_connection(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _handle(self) -> None:
        self.server.watchdog.busy(self)
        oss = self.server.oss
        request_id = secrets.token_hex(12).upper()
        host = self.headers.get("Host", f"{oss.host}:{oss.port}")
        if self.path.startswith(admin.PREFIX):
            self._handle_admin(request_id)
            return
        length: int | None = 0
        body_read = False
        req: OssRequest | None = None
        try:
            length = self._body_length()
            if self.command in ("GET", "HEAD"):
                # OSS ignores a body on reads. Some clients announce one and send none, so it is never
                # waited for; when one is announced, the connection ends with this answer.
                body_read = True
                if length != 0:
                    self.close_connection = True
            bucket, key, query = split_target(self.path, host_bucket(host, oss.region))
            req = OssRequest(
                method=self.command,
                bucket=bucket,
                key=key,
                query=query,
                headers={k.lower(): v for k, v in self.headers.items()},
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
            if req.bucket and req.api not in CREDENTIALS_FIRST:
                oss.store.bucket(req.bucket)  # OSS answers NoSuchBucket before it looks at the credentials
            limit = body_limit(req.api)
            if length is not None and length > limit:
                raise _too_large(length, limit)
            if req.api in SELF_AUTHENTICATED:  # its credentials are in the body
                req.body, body_read = self._read_body(length, limit), True
            else:
                credential = authenticate(req, oss.credentials, region=oss.region)
                # RAM: what a role's credentials may do is decided before the body is read
                req.access = access_for(req, credential, region=oss.region, account_id=oss.owner_id)
                authorize(req)
                check_user_meta(req.api, req.headers)
            if not body_read and self.command not in ("GET", "HEAD"):
                req.body, body_read = self._read_body(length, limit), True
            check_content_md5(req, req.body)  # a signed Content-MD5 binds the body, whatever the API
            oss.conditions.before_serving(req)
            response = operation(oss.context, req)
        except OssError as error:
            response = _error_response(error, self.command, request_id, host)
        except (TimeoutError, ConnectionError):
            self.close_connection = True
            return
        except Exception:  # a bug here must still answer like a server, and say so in the log
            log.exception("local OSS failed on %s %s", self.command, self.path)
            response = _error_response(
                OssError(500, "InternalError", "The local OSS failed on this request."),
                self.command,
                request_id,
                host,
            )
        if not body_read and not self.close_connection:
            self._skip_body(length)
        self._write(response, request_id, req.api if req is not None else "")

    def _handle_admin(self, request_id: str) -> None:
        oss = self.server.oss
        scheme, _, presented = self.headers.get("Authorization", "").partition(" ")
        if oss.admin_token is not None and not (
            scheme == "Bearer" and hmac.compare_digest(presented.strip().encode(), oss.admin_token.encode())
        ):
            status, answer = 401, {"error": "the admin API needs Authorization: Bearer <admin token>"}
            self.close_connection = True  # its body, if any, stays unread
        else:
            try:
                length = self._body_length()
                body = self._read_body(length, admin.MAX_BODY_BYTES)
            except OssError as error:
                self.close_connection = True
                status, answer = error.status, {"error": error.message}
            else:
                status, answer = admin.handle(oss, self.command, self.path.split("?", 1)[0], body)
        payload = json.dumps(answer).encode() if answer is not None else b""
        self._write(OssResponse(status, {"Content-Type": "application/json"}, payload), request_id)

    def _write(self, response: OssResponse, request_id: str, api: str = "") -> None:
        self.send_response(response.status)
        headers = {"x-oss-request-id": request_id, **response.headers}
        for name, value in headers.items():
            if _UNSAFE_HEADER_VALUE.search(value):  # never let a value end the header block early
                log.error("local OSS dropped header %s: its value has a line break or NUL", name)
                continue
            if value != "":
                self.send_header(name, value)
        if response.status not in (204, 304) and "Content-Length" not in response.headers:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD" and response.status not in (204, 304):
            # in pieces, counting what the client took: one that drops the connection mid-body stops it
            body = memoryview(response.body)
            for start in range(0, len(body), _WRITE_CHUNK):
                piece = body[start : start + _WRITE_CHUNK]
                self.wfile.write(piece)
                self.server.oss.conditions.sent(api, len(piece))


_WRITE_CHUNK = 64 * 1024


class _Watchdog:
    """Closes connections whose request head is overdue: idle keep-alive connections, and heads that
    trickle in (each read quick, the whole never complete). One thread for every connection."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._deadlines: dict[BaseHTTPRequestHandler, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="local-oss-watchdog")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def expect_head(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self._deadlines[handler] = time.monotonic() + self.timeout

    def busy(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self._deadlines.pop(handler, None)

    def _run(self) -> None:
        while not self._stop.wait(min(0.25, self.timeout / 4)):
            now = time.monotonic()
            with self._lock:
                overdue = [h for h, deadline in self._deadlines.items() if deadline < now]
                for handler in overdue:
                    del self._deadlines[handler]
                    with contextlib.suppress(OSError):
                        handler.connection.shutdown(socket.SHUT_RDWR)  # unblocks the handler's read


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    oss: LocalOSS
    watchdog: _Watchdog
    max_connections: int

    def server_activate(self) -> None:
        super().server_activate()
        self._open = 0
        self._open_lock = threading.Lock()

    def get_request(self) -> tuple[socket.socket, Any]:
        try:
            return super().get_request()
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                time.sleep(0.05)  # out of descriptors: back off instead of spinning on accept()
            raise

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            admitted = self._open < self.max_connections
            if admitted:
                self._open += 1
        if not admitted:
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release()

    def _release(self) -> None:
        with self._open_lock:
            self._open -= 1

    def _refuse(self, request: socket.socket) -> None:
        body = (
            b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code><Message>'
            b"The local OSS serves at most %d connections at once; try again later.</Message></Error>"
            % self.max_connections
        )
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        try:
            request.settimeout(1)
            request.sendall(head.encode() + body)
        except OSError:
            pass
        self.shutdown_request(request)

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
        admin_token: str | None = "",
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout: float = IDLE_TIMEOUT_SECONDS,
        io_timeout: float = IO_TIMEOUT_SECONDS,
        clock: Clock | None = None,
    ) -> None:
        """`admin_token`: what `/_admin/` requests must present as `Authorization: Bearer ...`; "" (the
        default) makes a random one, None serves the admin API to anyone (an explicit choice)."""
        self.admin_token = secrets.token_urlsafe(24) if admin_token == "" else admin_token
        self.io_timeout = io_timeout
        self.credentials = {c.access_key_id: c for c in credentials}
        self.region = region
        self.owner_id = owner_id
        self.clock = clock or Clock()  # Date and Last-Modified; signatures are checked on the real clock
        self.store = Store(
            SqliteDirectory(Path(data_dir)) if data_dir else None, region=region, clock=self.clock
        )
        self.notifier = Notifier(region=region, owner_id=owner_id, workers=event_workers)
        self.conditions = Conditions()
        self.context = ServerContext(self.store, self.notifier, owner_id, self.credentials)
        self._http = _HttpServer((host, port), _RequestHandler)
        self._http.oss = self
        self._http.max_connections = max_connections
        self._http.watchdog = _Watchdog(idle_timeout)
        self._http.watchdog.start()
        self.host, self.port = self._http.server_address[:2]  # type: ignore[misc]
        self._thread: threading.Thread | None = None
        self._served = False  # shutdown() waits for a serve_forever loop: there is none before serving

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add_credentials(self, credentials: list[Credential]) -> None:
        """Accept more credentials, e.g. the role sessions the local FC hands its functions."""
        self.credentials.update({c.access_key_id: c for c in credentials})

    def subscribe(
        self, bucket: str, events: list[str], target: EventTarget, prefix: str = "", suffix: str = ""
    ) -> Subscription:
        return self.notifier.subscribe(bucket, events, target, prefix, suffix)

    def run_inventory(
        self, bucket: str, inventory_id: str, rows_per_file: int = DEFAULT_ROWS_PER_FILE
    ) -> InventoryRun:
        """Run the bucket's inventory `inventory_id` now, as OSS runs it on its schedule: the data files,
        then manifest.json and manifest.checksum, written into the destination bucket (each write publishes
        its PutObject event). Raises OssError when the bucket, the configuration or the destination is
        missing."""
        return inventory_runs.run(self.store, self.notifier, bucket, inventory_id, rows_per_file)

    def stats(self) -> dict[str, object]:
        return {
            **self.conditions.snapshot(),
            "events": {"delivered": self.notifier.delivered, "failed": self.notifier.failed},
        }

    def start(self) -> LocalOSS:
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True, name="local-oss")
        self._served = True
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._served = True
        self._http.serve_forever()

    def stop(self) -> None:
        """Stop serving and release the port (also when it never served: a start that failed later)."""
        if self._served:
            self._http.shutdown()
        self._http.server_close()
        self._http.watchdog.stop()
        self.notifier.close()

    def __enter__(self) -> LocalOSS:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
