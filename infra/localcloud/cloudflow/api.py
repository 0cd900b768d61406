"""The local CloudFlow's HTTP endpoint: CloudFlow's RPC API (FnF, version 2019-03-15) as the official SDK
(alibabacloud-fnf20190315) calls it, at `/`, parameters in the query and the form body.

Every request must be signed (signature.py); a role's STS credentials need their SecurityToken. Answers
are JSON with a RequestId; errors are `{"RequestId", "HostId", "Code", "Message"}` with the HTTP status,
which the SDK raises as ClientException / ServerException carrying the code.

`LocalCloudFlow(oss_endpoint, fc_endpoint, roles=[...], data_dir=...)` runs the whole service: `start()`
resumes executions left running in `data_dir`, `endpoint` is what the SDK's Config takes."""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import uuid
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cloudformats.items import MAX_INFLATED_BYTES

from ..oss.auth import DEFAULT_CREDENTIALS, Credential
from .engine import Engine
from .gateways import Gateways
from .service import CloudFlowService
from .signature import NonceWindow, RpcError, verify
from .store import Store

API_VERSION = "2019-03-15"
MAX_REQUEST_BYTES = 1024 * 1024  # CloudFlow's maximum request size, 1,024 KiB
log = logging.getLogger("localcloud.cloudflow.api")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    cloudflow: LocalCloudFlow


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        request_id = str(uuid.uuid4()).upper()
        cloudflow = self.server.cloudflow
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_REQUEST_BYTES:
                raise RpcError(413, "RequestTooLarge", f"The request is over {MAX_REQUEST_BYTES} bytes.")
            body = self.rfile.read(length) if length else b""
            split = urlsplit(self.path)
            parameters = dict(parse_qsl(split.query, keep_blank_values=True))
            if body and "x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
                parameters.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            if split.path != "/":
                raise RpcError(404, "InvalidAction.NotFound", "Specified api is not found.")
            verify(self.command, parameters, cloudflow.credentials, cloudflow.nonces)
            if parameters.get("Version") != API_VERSION:
                raise RpcError(400, "InvalidVersion", "Specified parameter Version is not valid.")
            document = cloudflow.service.handle(parameters.get("Action", ""), parameters)
            status, answer = 200, {**document, "RequestId": request_id}
        except RpcError as error:
            status = error.status
            answer = {"RequestId": request_id, "HostId": self.headers.get("Host", ""), "Code": error.code}
            answer["Message"] = error.message
        except Exception as error:  # a bug must still answer as the gateway does, and say so
            log.exception("local CloudFlow API failed on %s", self.path)
            status = 500
            answer = {"RequestId": request_id, "Code": "InternalError", "Message": repr(error)}
        payload = json.dumps(answer, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class LocalCloudFlow:
    def __init__(
        self,
        oss_endpoint: str,
        fc_endpoint: str,
        *,
        roles: Iterable[str] = (),
        data_dir: Path | None = None,
        credentials: Iterable[Credential] = DEFAULT_CREDENTIALS,
        region: str = "cn-hangzhou",
        host: str = "127.0.0.1",
        port: int = 0,
        max_threads: int = 8,
        time_scale: float = 1.0,
        max_inflated_bytes: int = MAX_INFLATED_BYTES,
    ) -> None:
        self._temporary = None if data_dir else tempfile.TemporaryDirectory(prefix="local-cloudflow-")
        root = Path(data_dir) / "cloudflow" if data_dir else Path(self._temporary.name)  # type: ignore[union-attr]
        self.roles = set(roles)
        self.credentials = {c.access_key_id: c for c in credentials}
        self.nonces = NonceWindow()
        store = Store(root)

        def gateways(role_arn: str) -> Gateways:
            return Gateways(oss_endpoint, fc_endpoint, role_arn, region)

        self.engine = Engine(
            store,
            gateways,
            max_threads=max_threads,
            time_scale=time_scale,
            max_inflated_bytes=max_inflated_bytes,
        )
        self.service = CloudFlowService(store, self.engine, lambda: self.roles)
        self._http = _Server((host, port), _Handler)
        self._http.cloudflow = self
        self.host, self.port = str(self._http.server_address[0]), int(self._http.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> LocalCloudFlow:
        self.service.resume()
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True, name="local-cloudflow")
        self._thread.start()
        return self

    def stop(self) -> None:
        for (flow, name), record in list(self.service.executions.items()):
            if record["Status"] == "Running":  # as a process that ends: the record stays Running
                run = self.engine.runs.get((flow, name))
                if run is not None:
                    run.stop.set()
        if self._thread is not None:
            self._http.shutdown()
        self._http.server_close()
        if self._temporary is not None:
            self._temporary.cleanup()

    def __enter__(self) -> LocalCloudFlow:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
