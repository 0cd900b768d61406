"""An FC 2.0 API endpoint (version 2016-08-15) in front of the local FC, for the calls aliyun-fc2 makes in
this project: services, functions (code as a base64 zip), triggers, async-invoke configs, and
invoke_function synchronously or asynchronously (`x-fc-invocation-type: Async`).

Requests must carry FC's signature (`Authorization: FC <AccessKeyId>:<base64 HMAC-SHA256>` over method,
Content-MD5, Content-Type, Date, the `x-fc-*` headers and the path), a Date within 15 minutes, and for STS
keys the matching `x-fc-security-token`. Requests made with a role's credentials (a function calling FC,
such as the sweep's fan-out) are authorised against the role's policies. Errors are JSON
`{"ErrorCode", "ErrorMessage"}`; a function's own error is a 200 with `x-fc-error-type`."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import io
import json
import logging
import re
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from cloudformats.checksums import crc64
from cloudformats.package import build_package  # the same deterministic zip deploy builds

from ..oss.auth import DEFAULT_CREDENTIALS, Credential
from .authorization import FcAccessDenied, authorize
from .eventbridge import EventBridgeConfig, api_trigger_config, template_properties
from .runtime import ACCOUNT_ID, MAX_SYNC_PAYLOAD, LocalFC, PayloadTooLarge, handler_thread_name
from .template import FunctionSpec, TemplateError, TriggerSpec

API_VERSION = "2016-08-15"
log = logging.getLogger("localcloud.fc.api")
MAX_SKEW_SECONDS = 15 * 60
_ROUTE = re.compile(
    rf"^/{API_VERSION}/services(?:/(?P<service>[^/]+)"
    r"(?P<functions>/functions(?:/(?P<function>[^/]+)(?:/(?P<leaf>code|invocations|async-invoke-config|triggers)"
    r"(?:/(?P<trigger>[^/]+))?)?)?)?)?/?$"
)
# FC's names: a letter or `_` first, then letters, digits, `_` and `-`; 1 to 128 characters.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,127}")
MAX_REQUEST_BYTES = 100 * 1024**2  # a base64 code zip of FC's 50 MB API upload limit, with room
MAX_CODE_UNZIPPED_BYTES = 500 * 1024**2  # FC's limit on a code package once unzipped
LOG_TAIL_BYTES = 4096  # x-fc-log-result carries the last 4 KB of the invocation's log


class FcApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def string_to_sign(method: str, path: str, headers: dict[str, str], queries: dict[str, str] | None) -> str:
    fc_headers = sorted((k.lower(), v) for k, v in headers.items() if k.lower().startswith("x-fc-"))
    canonical = "".join(f"{k}:{v}\n" for k, v in fc_headers)
    resource = (
        path if queries is None else path + "\n" + "\n".join(sorted(f"{k}={v}" for k, v in queries.items()))
    )
    parts = [
        method.upper(),
        headers.get("content-md5", ""),
        headers.get("content-type", ""),
        headers.get("date", ""),
    ]
    return "\n".join([*parts, canonical + resource])


class FcRegistry:
    """Services, functions, triggers and async configs as created through the API."""

    def __init__(self, fc: LocalFC, code_root: Path) -> None:
        self.fc = fc
        self.code_root = code_root
        self.services: dict[str, dict[str, Any]] = {}
        self.functions: dict[tuple[str, str], dict[str, Any]] = {}
        self.code: dict[tuple[str, str], bytes] = {}
        self.triggers: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.async_configs: dict[tuple[str, str], dict[str, Any]] = {}
        self.lock = threading.RLock()
        for spec in fc.template.functions.values():
            self._adopt(spec)

    def _adopt(self, spec: FunctionSpec) -> None:
        """Show a function the local FC runs from template.yml as `autotag deploy` would have deployed it:
        its service, its attributes (the code's checksum that of the package deploy uploads to the local
        cloud, the code alone), its triggers and its async configuration, so that deploying the same
        template changes nothing."""
        now = _now()
        self.services.setdefault(
            spec.service,
            {
                "serviceName": spec.service,
                "serviceId": str(uuid.uuid4()),
                "description": str(spec.service_properties.get("Description", "")),
                "role": spec.role,
                "createdTime": now,
                "lastModifiedTime": now,
            },
        )
        key = (spec.service, spec.name)
        self.functions[key] = {
            "functionName": spec.name,
            "functionId": str(uuid.uuid4()),
            "description": spec.description,
            "handler": spec.handler,
            "runtime": spec.runtime,
            "timeout": spec.timeout,
            "memorySize": spec.memory,
            "initializer": spec.initializer,
            "initializationTimeout": spec.initialization_timeout,
            "environmentVariables": spec.environment,
            "codeChecksum": str(crc64(build_package(spec.code_uri, None))),
            "createdTime": now,
            "lastModifiedTime": now,
        }
        self.triggers[key] = {
            t.name: _trigger_attributes(t, self.fc.region, now)
            for t in spec.triggers
            if t.created_disabled or t.eventbridge.enabled  # as `autotag deploy` creates them
        }
        config: dict[str, Any] = {
            "service": spec.service,
            "function": spec.name,
            "qualifier": "LATEST",
            "maxAsyncRetryAttempts": spec.max_async_retries,
            "maxAsyncEventAgeInSeconds": spec.max_async_event_age,
            "createdTime": now,
            "lastModifiedTime": now,
        }
        if spec.on_failure:
            destination = _in_region(spec.on_failure, self.fc.region)
            config["destinationConfig"] = {"onFailure": {"destination": destination}}
        self.async_configs[key] = config

    def service(self, name: str) -> dict[str, Any]:
        if name not in self.services:
            raise FcApiError(404, "ServiceNotFound", f"service '{name}' does not exist")
        return self.services[name]

    def function(self, service: str, name: str) -> dict[str, Any]:
        self.service(service)
        if (service, name) not in self.functions:
            raise FcApiError(
                404, "FunctionNotFound", f"function '{name}' does not exist in service '{service}'"
            )
        return self.functions[(service, name)]

    def deploy(self, service: str, name: str) -> None:
        """Make the local FC run the function as registered now: code unpacked, triggers wired."""
        attributes = self.functions[(service, name)]
        if (service, name) in self.code:
            folder = self.code_root / service / name / attributes["codeChecksum"]
            if not folder.exists():
                with zipfile.ZipFile(io.BytesIO(self.code[(service, name)])) as archive:
                    archive.extractall(folder)
        else:  # still the code the local FC loaded from template.yml's CodeUri
            folder = self.fc.function(name, service).code_uri
        config = self.async_configs.get((service, name), {})
        destination = ((config.get("destinationConfig") or {}).get("onFailure") or {}).get("destination", "")
        triggers = tuple(_trigger_spec(t) for t in self.triggers.get((service, name), {}).values())
        role = str(self.services.get(service, {}).get("role") or "")
        self.fc.register(
            FunctionSpec(
                service=service,
                name=name,
                handler=attributes["handler"],
                code_uri=folder,
                runtime=attributes["runtime"],
                timeout=attributes["timeout"],
                memory=attributes["memorySize"],
                initializer=attributes.get("initializer") or "",
                initialization_timeout=attributes.get("initializationTimeout") or 3,
                environment=attributes.get("environmentVariables") or {},
                max_async_retries=config.get("maxAsyncRetryAttempts", 3),
                on_failure=destination,
                triggers=triggers,
                role=role,
            )
        )


def _in_region(arn: str, region: str) -> str:
    """A template's ARN with its empty region and account filled (`acs:mns:::/queues/q`), as FC keeps it."""
    parts = arn.split(":", 4)
    if len(parts) == 5 and parts[0] == "acs":
        parts[2], parts[3] = parts[2] or region, parts[3] or ACCOUNT_ID
    return ":".join(parts)


def _trigger_attributes(trigger: TriggerSpec, region: str, now: str) -> dict[str, Any]:
    """The trigger as FC's API describes one (the inverse of `_trigger_spec`)."""
    common = {"triggerName": trigger.name, "createdTime": now, "lastModifiedTime": now}
    if trigger.type == "EventBridge":
        return {
            **common,
            "triggerType": "eventbridge",
            "triggerConfig": api_trigger_config(trigger.properties),
        }
    if trigger.type == "OSS":
        prefix, suffix = trigger.key_filter
        return {
            **common,
            "triggerType": "oss",
            "sourceArn": f"acs:oss:{region}:{ACCOUNT_ID}:{trigger.bucket}",
            "triggerConfig": {
                "events": trigger.events,
                "filter": {"key": {"prefix": prefix, "suffix": suffix}},
            },
        }
    return {
        **common,
        "triggerType": "timer",
        "triggerConfig": {
            "cronExpression": trigger.cron,
            "payload": trigger.payload,
            "enable": trigger.enabled,
        },
    }


def _page(items: list[dict[str, Any]], name_field: str, queries: dict[str, str]) -> dict[str, Any]:
    """One page of a List call: `prefix`, `startKey` and `nextToken` (names to start at), `limit`."""
    prefix = queries.get("prefix", "")
    start = max(queries.get("startKey", ""), queries.get("nextToken", ""))
    limit_text = queries.get("limit", "100") or "100"
    if not (limit_text.isascii() and limit_text.isdigit()) or not 1 <= int(limit_text) <= 100:
        raise FcApiError(400, "InvalidArgument", f"limit {limit_text!r} is not between 1 and 100")
    chosen = sorted(
        (i for i in items if i[name_field].startswith(prefix) and i[name_field] >= start),
        key=lambda i: str(i[name_field]),
    )
    page: dict[str, Any] = {"items": chosen[: int(limit_text)]}
    if len(chosen) > int(limit_text):
        page["nextToken"] = chosen[int(limit_text)][name_field]
    return page


def _check_name(kind: str, name: str) -> str:
    if not _NAME.fullmatch(name):
        raise FcApiError(
            400,
            "InvalidArgument",
            f"{kind} name {name[:80]!r} is not an FC name: a letter or _ first, then letters, digits, "
            "_ and -, at most 128 characters",
        )
    return name


def _check_eventbridge(name: str, config: Any) -> None:
    """Refuse an EventBridge trigger configuration as FC would, naming the field."""
    if not isinstance(config, dict):
        raise FcApiError(400, "InvalidArgument", f"trigger {name!r}: triggerConfig must be an object")
    try:
        EventBridgeConfig.from_properties(template_properties(config), f"trigger {name}.triggerConfig")
    except TemplateError as error:
        raise FcApiError(400, "InvalidArgument", str(error)) from None


def _trigger_spec(attributes: dict[str, Any]) -> TriggerSpec:
    config = attributes.get("triggerConfig") or {}
    if attributes["triggerType"] == "eventbridge":
        return TriggerSpec(attributes["triggerName"], "EventBridge", template_properties(config))
    if attributes["triggerType"] == "oss":
        key = (config.get("filter") or {}).get("key") or {}
        return TriggerSpec(
            attributes["triggerName"],
            "OSS",
            {
                "BucketName": attributes.get("sourceArn", "").rsplit(":", 1)[-1],
                "Events": config.get("events", []),
                "Filter": {"Key": {"Prefix": key.get("prefix", ""), "Suffix": key.get("suffix", "")}},
            },
        )
    return TriggerSpec(
        attributes["triggerName"],
        "Timer",
        {
            "CronExpression": config.get("cronExpression", ""),
            "Payload": config.get("payload", ""),
            "Enable": config.get("enable", True),
        },
    )


_FUNCTION_FIELDS = (
    "description",
    "runtime",
    "handler",
    "initializer",
    "initializationTimeout",
    "timeout",
    "memorySize",
    "environmentVariables",
    "instanceConcurrency",
)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the CLI prints what matters
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        request_id = str(uuid.uuid4())
        self._announced, self._body_read = 0, False
        body = b""
        try:
            length = self._body_length()
            split = urlsplit(self.path)
            path = unquote(split.path)
            queries = dict(parse_qsl(split.query, keep_blank_values=True))
            credential = self._authenticate(path, queries)  # the one point where the signature is verified
            try:  # a role's credentials: the call must be one its policies allow, before the body is read
                authorize(credential.role, self.command, path, self.server.api.region, ACCOUNT_ID)
            except FcAccessDenied as denied:
                raise FcApiError(403, "AccessDenied", str(denied)) from None
            body = self.rfile.read(length) if length else b""
            self._body_read = True
            _check_content_md5(self.headers.get("Content-MD5", ""), body)
            status, headers, payload = self.server.api.handle(self.command, path, queries, self.headers, body)
        except FcApiError as error:
            status, headers = error.status, {"Content-Type": "application/json"}
            payload = json.dumps({"ErrorCode": error.code, "ErrorMessage": error.message}).encode()
        except Exception as error:  # a bug here must still answer like FC does, and say so
            log.exception("local FC API failed on %s %s", self.command, self.path)
            status, headers = 500, {"Content-Type": "application/json"}
            payload = json.dumps({"ErrorCode": "InternalError", "ErrorMessage": repr(error)}).encode()
        if self._unread():
            self.close_connection = True  # refused before its body was read: the connection cannot go on
        self.send_response(status)
        for name, value in {"x-fc-request-id": request_id, **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _body_length(self) -> int:
        lengths = self.headers.get_all("Content-Length") or []
        self._announced = 0
        if self.headers.get("Transfer-Encoding") or len(lengths) > 1:
            self.close_connection = True
            raise FcApiError(400, "InvalidArgument", "chunked bodies and repeated Content-Length are refused")
        text = lengths[0].strip() if lengths else "0"
        if not (text.isascii() and text.isdigit()):
            self.close_connection = True
            raise FcApiError(400, "InvalidArgument", f"Content-Length {text!r} is not a number")
        if int(text) > MAX_REQUEST_BYTES:
            self.close_connection = True
            raise FcApiError(413, "EntityTooLarge", f"the body is {text} bytes; at most {MAX_REQUEST_BYTES}")
        self._announced = int(text)
        return self._announced

    def _unread(self) -> bool:
        """Whether the request announced a body this handler never read (it answered before)."""
        return bool(getattr(self, "_announced", 0)) and not getattr(self, "_body_read", False)

    def _authenticate(self, path: str, queries: dict[str, str]) -> Credential:
        headers = {k.lower(): v for k, v in self.headers.items()}
        authorization = headers.get("authorization", "")
        match = re.fullmatch(r"FC ([^:]+):(.+)", authorization)
        if not match:
            raise FcApiError(
                403, "AccessDenied", "the request carries no FC signature (Authorization: FC ak:sig)"
            )
        credential = self.server.credentials.get(match[1])
        if credential is None:
            raise FcApiError(403, "InvalidAccessKeyID", f"access key id {match[1]!r} does not exist")
        if credential.security_token and headers.get("x-fc-security-token") != credential.security_token:
            raise FcApiError(403, "InvalidSecurityToken", "the security token is missing or does not match")
        date = email.utils.parsedate_to_datetime(headers["date"]).timestamp() if headers.get("date") else 0.0
        if abs(time.time() - date) > MAX_SKEW_SECONDS:
            raise FcApiError(
                403, "RequestTimeTooSkewed", "the Date header is missing or more than 15 minutes off"
            )
        expected = [
            base64.b64encode(
                hmac.new(
                    credential.access_key_secret.encode(),
                    string_to_sign(self.command, path, headers, variant).encode(),
                    hashlib.sha256,
                ).digest()
            ).decode()
            for variant in (None, queries)
        ]
        if match[2] not in expected:
            raise FcApiError(
                403, "SignatureNotMatch", "the request signature does not match the one computed"
            )
        return credential


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: FcApi
    credentials: dict[str, Credential]


class FcApi:
    """The API's behaviour, apart from HTTP and signatures."""

    def __init__(
        self, registry: FcRegistry, region: str, max_code_unzipped_bytes: int = MAX_CODE_UNZIPPED_BYTES
    ) -> None:
        self.registry = registry
        self.region = region
        self.max_code_unzipped_bytes = max_code_unzipped_bytes

    def handle(
        self, method: str, path: str, queries: dict[str, str], headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        match = _ROUTE.match(path)
        if not match:
            raise FcApiError(404, "PathNotSupported", f"{method} {path} is not an FC {API_VERSION} API")
        service_part, function, leaf, trigger = (
            match["service"],
            match["function"],
            match["leaf"],
            match["trigger"],
        )
        service = _check_name("service", service_part.split(".", 1)[0]) if service_part else None
        if function is not None:
            _check_name("function", function)
        if trigger is not None:
            _check_name("trigger", trigger)
        registry = self.registry
        if leaf == "invocations" and method == "POST":  # outside the lock: a function may call the API
            assert service and function
            return self._invoke(service, function, headers, body)
        with registry.lock:
            document = self._json(body) if method in ("POST", "PUT") else {}
            if service is None:
                if method == "POST":
                    return self._create_service(document)
                if method == "GET":
                    page = _page(list(registry.services.values()), "serviceName", queries)
                    return _ok({"services": page.pop("items"), **page})
            elif match["functions"] and function is None and method == "GET":
                registry.service(service)
                functions = [f for (s, _), f in registry.functions.items() if s == service]
                page = _page(functions, "functionName", queries)
                return _ok({"functions": page.pop("items"), **page})
            elif function is None:
                return self._service(method, service, document)
            elif leaf is None:
                return self._function(method, service, function, document)
            elif leaf == "code" and method == "GET":
                registry.function(service, function)
                return _ok({"url": "", "checksum": registry.functions[(service, function)]["codeChecksum"]})
            elif leaf == "async-invoke-config":
                return self._async_config(method, service, function, document)
            elif leaf == "triggers":
                return self._trigger(method, service, function, trigger, document, queries)
        raise FcApiError(405, "MethodNotAllowed", f"{method} is not allowed on {path}")

    @staticmethod
    def _json(body: bytes) -> dict[str, Any]:
        try:
            document = json.loads(body or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise FcApiError(400, "InvalidArgument", f"the request body is not JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise FcApiError(400, "InvalidArgument", "the request body must be a JSON object")
        return document

    def _create_service(self, document: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        name = _check_name("service", _required(document, "serviceName"))
        try:
            exists = bool(self.registry.service(name))
        except FcApiError:
            exists = False
        if exists:
            raise FcApiError(409, "ServiceAlreadyExists", f"service '{name}' already exists")
        now = _now()
        service = {**document, "serviceId": str(uuid.uuid4()), "createdTime": now, "lastModifiedTime": now}
        self.registry.services[name] = service
        return _ok(service)

    def _service(self, method: str, name: str, document: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        service = self.registry.service(name)
        if method == "GET":
            return _ok(service)
        if method == "PUT":
            service.update({k: v for k, v in document.items() if k != "serviceName"}, lastModifiedTime=_now())
            return _ok(service)
        if method == "DELETE":
            if any(s == name for s, _ in self.registry.functions):
                raise FcApiError(412, "ServiceNotEmpty", f"service '{name}' still has functions")
            del self.registry.services[name]
            return 204, {}, b""
        if method == "POST":
            return self._create_function(name, document)
        raise FcApiError(405, "MethodNotAllowed", f"{method} on a service")

    def _create_function(self, service: str, document: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        name = _check_name("function", _required(document, "functionName"))
        try:
            exists = bool(self.registry.function(service, name))
        except FcApiError:
            exists = False
        if exists:
            raise FcApiError(409, "FunctionAlreadyExists", f"function '{name}' already exists")
        for needed in ("runtime", "handler"):
            _required(document, needed)
        now = _now()
        attributes = {
            "functionName": name,
            "functionId": str(uuid.uuid4()),
            "createdTime": now,
            "timeout": 3,
            "memorySize": 128,
        }
        self.registry.functions[(service, name)] = attributes
        return self._update_function(service, name, document, created=now)

    def _update_function(
        self, service: str, name: str, document: dict[str, Any], created: str | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        attributes = self.registry.functions[(service, name)]
        attributes.update({k: document[k] for k in _FUNCTION_FIELDS if k in document})
        code = (document.get("code") or {}).get("zipFile")
        if code is not None:
            try:
                data = base64.b64decode(code, validate=True)
                unzipped = sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(data)).infolist())
            except (ValueError, zipfile.BadZipFile) as exc:
                raise FcApiError(400, "InvalidArgument", f"code.zipFile is not a base64 zip: {exc}") from exc
            if unzipped > self.max_code_unzipped_bytes:
                raise FcApiError(
                    400,
                    "CodeTooLarge",
                    f"code.zipFile unzips to {unzipped} bytes; at most {self.max_code_unzipped_bytes}",
                )
            self.registry.code[(service, name)] = data
            attributes.update(codeChecksum=str(crc64(data)), codeSize=len(data))
        if (service, name) not in self.registry.code:
            raise FcApiError(400, "InvalidArgument", "code.zipFile is required")
        attributes["lastModifiedTime"] = created or _now()
        self.registry.deploy(service, name)
        return _ok(attributes)

    def _function(
        self, method: str, service: str, name: str, document: dict[str, Any]
    ) -> tuple[int, dict[str, str], bytes]:
        attributes = self.registry.function(service, name)
        if method == "GET":
            return _ok(attributes)
        if method == "PUT":
            return self._update_function(service, name, document)
        if method == "DELETE":
            if self.registry.triggers.get((service, name)):
                raise FcApiError(412, "FunctionNotEmpty", f"function '{name}' still has triggers")
            del self.registry.functions[(service, name)]
            self.registry.code.pop((service, name), None)
            self.registry.fc.unregister(name, service)
            return 204, {}, b""
        raise FcApiError(405, "MethodNotAllowed", f"{method} on a function")

    def _async_config(
        self, method: str, service: str, function: str, document: dict[str, Any]
    ) -> tuple[int, dict[str, str], bytes]:
        self.registry.function(service, function)
        key = (service, function)
        if method == "PUT":
            self.registry.async_configs[key] = {
                **document,
                "service": service,
                "function": function,
                "qualifier": "LATEST",
                "lastModifiedTime": _now(),
            }
            self.registry.deploy(service, function)
            return _ok(self.registry.async_configs[key])
        if method == "GET":
            if key not in self.registry.async_configs:
                raise FcApiError(404, "AsyncConfigNotExists", f"no async invoke config for '{function}'")
            return _ok(self.registry.async_configs[key])
        if method == "DELETE":
            self.registry.async_configs.pop(key, None)
            self.registry.deploy(service, function)
            return 204, {}, b""
        raise FcApiError(405, "MethodNotAllowed", f"{method} on an async invoke config")

    def _trigger(
        self,
        method: str,
        service: str,
        function: str,
        name: str | None,
        document: dict[str, Any],
        queries: dict[str, str],
    ) -> tuple[int, dict[str, str], bytes]:
        self.registry.function(service, function)
        triggers = self.registry.triggers.setdefault((service, function), {})
        if name is None:
            if method == "GET":
                page = _page(list(triggers.values()), "triggerName", queries)
                return _ok({"triggers": page.pop("items"), **page})
            if method == "POST":
                trigger_name = _check_name("trigger", _required(document, "triggerName"))
                if trigger_name in triggers:
                    raise FcApiError(409, "TriggerAlreadyExists", f"trigger '{trigger_name}' already exists")
                kind = _required(document, "triggerType")
                if kind not in ("oss", "timer", "eventbridge"):
                    raise FcApiError(
                        400,
                        "InvalidArgument",
                        f"triggerType {kind!r}: the local FC has oss, timer and eventbridge",
                    )
                if kind == "eventbridge":
                    _check_eventbridge(trigger_name, document.get("triggerConfig"))
                now = _now()
                triggers[trigger_name] = {**document, "createdTime": now, "lastModifiedTime": now}
                self.registry.deploy(service, function)
                return _ok(triggers[trigger_name])
            raise FcApiError(405, "MethodNotAllowed", f"{method} on triggers")
        if name not in triggers:
            raise FcApiError(404, "TriggerNotFound", f"trigger '{name}' does not exist")
        if method == "GET":
            return _ok(triggers[name])
        if method == "PUT":
            triggers[name].update(
                {k: v for k, v in document.items() if k in ("triggerConfig", "invocationRole", "description")}
            )
            triggers[name]["lastModifiedTime"] = _now()
            self.registry.deploy(service, function)
            return _ok(triggers[name])
        if method == "DELETE":
            del triggers[name]
            self.registry.deploy(service, function)
            return 204, {}, b""
        raise FcApiError(405, "MethodNotAllowed", f"{method} on a trigger")

    def _invoke(
        self, service: str, function: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        with self.registry.lock:
            self.registry.function(service, function)
        fc = self.registry.fc
        if (headers.get("x-fc-invocation-type") or "Sync").lower() == "async":
            try:
                request_id = fc.invoke_async(function, body, service=service)
            except PayloadTooLarge as error:
                raise FcApiError(413, "EntityTooLarge", str(error)) from None
            return 202, {"x-fc-request-id": request_id}, b""
        if len(body) > MAX_SYNC_PAYLOAD:
            raise FcApiError(
                413, "EntityTooLarge", f"the payload is {len(body)} bytes; at most {MAX_SYNC_PAYLOAD}"
            )
        tail = (headers.get("x-fc-log-type") or "None").lower() == "tail"
        request_id = str(uuid.uuid4())
        with _ThreadLog() as captured:
            result = fc.invoke(function, body, request_id, service=service)
        # The answer's X-Fc-Request-Id is the function's own request id, as FC's: the id its log lines carry
        extra = {"x-fc-request-id": request_id}
        if tail:
            extra["x-fc-log-result"] = _log_tail(request_id, captured.lines)
        if result.ok:
            return 200, {"Content-Type": "application/octet-stream", **extra}, (result.payload or "").encode()
        # As FC answers a Python function's exception: its message, and its class as the type apart
        kind, _, message = result.error_message.partition(": ")
        if not message or not kind.isidentifier():
            kind, message = result.error_type, result.error_message
        error = {"errorMessage": message, "errorType": kind}
        return (
            200,
            {"x-fc-error-type": result.error_type, "Content-Type": "application/json", **extra},
            json.dumps(error).encode(),
        )


class _ThreadLog(logging.Handler):
    """Log records of the invocation made on this thread while installed: its own and its handler's."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.thread = threading.get_ident()
        self.handler_thread = handler_thread_name()
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread or record.threadName == self.handler_thread:
            self.lines.append(self.format(record))

    def __enter__(self) -> _ThreadLog:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger().removeHandler(self)


def _log_tail(request_id: str, lines: list[str]) -> str:
    """What FC puts in x-fc-log-result: the invocation's log, its last 4 KB, base64-encoded."""
    text = "\n".join(
        [f"FC Invoke Start RequestId: {request_id}", *lines, f"FC Invoke End RequestId: {request_id}"]
    )
    return base64.b64encode(text.encode()[-LOG_TAIL_BYTES:]).decode()


def _check_content_md5(sent: str, body: bytes) -> None:
    """A signed Content-MD5 binds the body: a replay with another body is refused, as FC does. Two forms
    name the same digest: the base64 of the 16-byte MD5 (FC's documented example) and the base64 of its
    32-character hex form, which the official Node.js SDK @alicloud/fc2 (and so Funcraft) sends."""
    digest = hashlib.md5(body)
    accepted = (base64.b64encode(digest.digest()), base64.b64encode(digest.hexdigest().encode()))
    if sent and sent.strip().encode() not in accepted:
        raise FcApiError(400, "InvalidArgument", "the Content-MD5 header does not match the request body")


def _required(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise FcApiError(400, "InvalidArgument", f"{name} is required")
    return value


def _ok(document: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps(document, ensure_ascii=False).encode()


class LocalFcApi:
    """The API server: `LocalFcApi(fc).start()`; `endpoint` is what aliyun-fc2's Client takes."""

    def __init__(
        self,
        fc: LocalFC,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: Iterable[Credential] = DEFAULT_CREDENTIALS,
        region: str = "cn-hangzhou",
        max_code_unzipped_bytes: int = MAX_CODE_UNZIPPED_BYTES,
    ) -> None:
        self._code_root = tempfile.TemporaryDirectory(prefix="local-fc-code-")
        self.registry = FcRegistry(fc, Path(self._code_root.name))
        self._http = _Server((host, port), _Handler)
        self._http.api = FcApi(self.registry, region, max_code_unzipped_bytes)
        self._http.credentials = {c.access_key_id: c for c in [*credentials, *fc.role_credentials()]}
        self.host, self.port = self._http.server_address[:2]  # type: ignore[misc]
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add_credentials(self, credentials: Iterable[Credential]) -> None:
        """Accept more credentials, e.g. the role sessions another local service (CloudFlow) signs with."""
        self._http.credentials.update({c.access_key_id: c for c in credentials})

    def start(self) -> LocalFcApi:
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True, name="local-fc-api")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:  # shutdown() waits for a serve_forever loop: none before start()
            self._http.shutdown()
        self._http.server_close()
        self._code_root.cleanup()

    def __enter__(self) -> LocalFcApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
