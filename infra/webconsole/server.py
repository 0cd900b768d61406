"""The console's HTTP server: routes, sessions and CSRF checks, pages rendered from Jinja2 templates with
autoescape, and server-sent event streams for what changes while a page is open.

It listens on 127.0.0.1 only and answers only requests whose Host is its own address (a page of another
site cannot reach it through a DNS name that resolves here). Every answer carries a Content-Security-Policy
that allows only the console's own script and styles, and is not cached. Pages read OSS through oss2, the
functions through the FC API, and invocations from the invocation log (invocations.py)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import threading
import urllib.error
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jinja2
import oss2

from autotag.facts import ObjectFacts
from autotag.gateway import ObjectGone, OssFailure, OssGateway
from cloudformats.dead_letters import DeadLetter, DeadLetterError
from cloudformats.letter_replay import with_provenance
from cloudformats.oss_events import ObjectEvent as OssEvent
from cloudformats.oss_events import event_record

from .access import Access, Session, cookie_header, cookie_value
from .bulk import backfill_runs, cloudflow_client, stop_run, sweep_counts
from .fc_calls import Invoked, invoke_sync, oss_admin, request_counts, spent
from .functions import FunctionInfo
from .invocations import Entry, InvocationIndex, matches
from .letters import Letter, read_letters, rewrite, settle
from .objects import duration, read_object
from .playground import (
    Change,
    Derived,
    RuleVerdict,
    check_rules,
    explain,
    parse_metadata,
    what_would_change,
)
from .rules import RulesInForce
from .test_events import TEMPLATES, SavedEvents, pretty, template_event
from .text import shown

HERE = Path(__file__).parent
PAGE_SIZE = 100
KEEPALIVE_SECONDS = 15
MAX_FORM_BYTES = 320 * 1024  # edited rules are at most 256 KiB, as the functions read them
SAMPLE_SIZE = 50  # objects "What would change" reads
MAX_SHOWN_CHARS = 64 * 1024  # of an event, a result, a function's answer
KEPT_EVENT_BYTES = 64 * 1024  # the invocation log keeps an event's first 64 KiB (invocation_file.py)
OWNER_ID = "1234567890123456"  # the local cloud's account, as its OSS events name it
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
STATIC = {"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"}


@dataclass(frozen=True)
class ConsoleConfig:
    """What the console is pointed at: where OSS and the FC API answer and the keys it signs with, the
    upload function to run for "Tag again" and what it runs with (its rules' location and record secrets,
    never shown), and the invocation log to follow."""

    oss_endpoint: str
    fc_endpoint: str
    region: str
    access_key_id: str
    access_key_secret: str = field(repr=False)
    upload_service: str
    upload_function: str
    invocation_log: Path
    rules_location: str
    record_secrets: tuple[str, ...] = field(repr=False)
    state_prefix: str
    functions: tuple[str, ...] = ()
    function_infos: tuple[FunctionInfo, ...] = ()
    dead_letters: Path | None = None  # the local FC's dead-letter store
    oss_admin_token: str = field(default="", repr=False)
    data_dir: Path | None = None  # this instance's own files (saved test events)
    cloudflow_endpoint: str = ""  # host:port of the local CloudFlow API
    flows: tuple[str, ...] = ()  # template.yml's flows: the backfill runs are their executions


class Console:
    def __init__(self, config: ConsoleConfig, port: int = 9003) -> None:
        self.config = config
        self.access = Access()
        self.invocations = InvocationIndex(config.invocation_log)
        self.stopping = threading.Event()
        self._replaying = threading.Lock()
        data_dir = config.data_dir
        self.saved_events = SavedEvents(data_dir / "test-events.json" if data_dir else None)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates.filters["shown"] = shown
        self.templates.filters["encoded"] = encoded
        self.templates.filters["when"] = when
        self.templates.filters["duration"] = duration
        self.templates.globals["query"] = lambda **values: urlencode({k: v for k, v in values.items() if v})
        self.auth = oss2.Auth(config.access_key_id, config.access_key_secret)
        self.rules = RulesInForce(config.rules_location, config.record_secrets, self.bucket)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))  # this machine only
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="console", daemon=True)

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def login_link(self) -> str:
        return f"{self.address}/login?{urlencode({'token': self.access.login_token})}"

    def start(self) -> Console:
        self.invocations.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._thread.is_alive():  # shutdown waits for serve_forever, which must have begun
            self.httpd.shutdown()
        self.httpd.server_close()
        self.invocations.stop()

    def __enter__(self) -> Console:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what the pages read ----------------------------------------------------------------------

    def bucket(self, name: str) -> oss2.Bucket:
        return oss2.Bucket(self.auth, self.config.oss_endpoint, name)

    def fc_client(self) -> Any:
        import fc2

        return fc2.Client(
            endpoint=self.config.fc_endpoint,
            accessKeyID=self.config.access_key_id,
            accessKeySecret=self.config.access_key_secret,
        )

    def cloudflow_client(self) -> Any:
        config = self.config
        keys = (config.access_key_id, config.access_key_secret)
        return cloudflow_client(config.cloudflow_endpoint, config.region, *keys)

    def render(self, template_name: str, session: Session | None, **values: Any) -> bytes:
        template = self.templates.get_template(template_name)
        flash = list(session.flash) if session else []
        if session:
            session.flash.clear()
        csrf = session.csrf if session else ""
        return template.render(csrf=csrf, flash=flash, functions=self.config.functions, **values).encode()

    def tag_again(self, bucket_name: str, key: str) -> str:
        """Run the upload function now for the object, synchronously through the FC API, with the event
        an upload of it would send; what it answered, for the page."""
        bucket = self.bucket(bucket_name)
        try:
            head = bucket.head_object(key)
        except oss2.exceptions.NotFound:
            return f"Tag again: oss://{bucket_name}/{shown(key)} does not exist"
        except oss2.exceptions.OssError as error:
            return f"Tag again: OSS answered {error.status} {error.code or ''}".rstrip()
        event = OssEvent(
            "ObjectCreated:PutObject",
            bucket_name,
            key,
            size=int(head.content_length or 0),
            delta_size=int(head.content_length or 0),
            etag=str(head.etag or ""),
            request_id=uuid.uuid4().hex[:24].upper(),
            source_ip="127.0.0.1",
        )
        document = {"events": [event_record(event, region=self.config.region, owner_id=OWNER_ID, rule_id="")]}
        config = self.config
        invoked = self.invoke(config.upload_service, config.upload_function, json.dumps(document).encode())
        if invoked.unreachable:
            return f"Tag again: {invoked.unreachable}"
        said = "failed" if invoked.error_type else "ran"
        answer = shown(invoked.answer)
        return f"Tag again: {config.upload_function} {said} (request id {invoked.request_id}): {answer}"

    def invoke(self, service: str, function: str, payload: bytes) -> Invoked:
        return invoke_sync(self.fc_client(), service, function, payload)

    @property
    def function_infos(self) -> dict[str, FunctionInfo]:
        return {f.name: f for f in self.config.function_infos}

    def letters(self) -> list[Letter]:
        if self.config.dead_letters is None:
            return []
        return read_letters(self.config.dead_letters, self.function_infos)

    def replay_letters(self, ids: set[str] | None) -> list[str]:
        """Re-drive the letters of `ids` (every replayable one for None) through their function,
        synchronously through the FC API, each with its provenance; the store keeps a letter unless its
        replay succeeded. One line per letter for the page."""
        path = self.config.dead_letters
        if path is None:
            return ["this console has no dead-letter store"]
        with self._replaying:  # one replay at a time: each rewrites the store
            try:
                letters = self.letters()
            except DeadLetterError as error:
                return [f"the dead-letter store cannot be read: {error}"]
            picked = [item for item in letters if ids is None or item.letter.id in ids]
            if ids is not None and len(picked) < len(ids):
                lines = ["a letter picked is gone already (replayed elsewhere?)"]
            else:
                lines = []
            removed: set[str] = set()
            renewed: dict[str, tuple[str, str]] = {}
            for item in picked:
                letter = item.letter
                name = f"{letter.function} {letter.request_id} ({shown(item.objects)})"
                if item.refused:
                    lines.append(f"{name}: not replayed, {item.refused}")
                    continue
                function = self.function_infos[letter.function]
                settled = settle(self.invoke(function.service, function.name, with_provenance(letter)))
                lines.append(f"{name}: {shown(settled.outcome)}")
                if settled.done:
                    removed.add(letter.id)
                elif settled.renewal is not None:
                    renewed[letter.id] = settled.renewal
            rewrite(path, removed, renewed)
        if not picked:
            lines.append("no dead letter to replay")
        return lines

    def clock(self) -> dict[str, str]:
        """The local cloud's clock: its offset and what time it is there (OSS's admin API)."""
        found = oss_admin(self.config.oss_endpoint, self.config.oss_admin_token, "GET", "clock")
        return {"offset": str(found.get("offset", "")), "now": str(found.get("now", ""))}

    def set_clock(self, offset: str) -> str:
        """Shift the local cloud's clock; what the page says about it."""
        try:
            found = oss_admin(
                self.config.oss_endpoint, self.config.oss_admin_token, "PUT", "clock", {"offset": offset}
            )
        except urllib.error.HTTPError as error:
            said = error.read().decode("utf-8", "replace")[:300]
            return f"the local clock stays: OSS answered {error.code}: {shown(said)}"
        return f"the local cloud's clock is now {found.get('now')} (offset {found.get('offset')})"

    def invoke_test(self, function: FunctionInfo, event: str) -> tuple[Invoked, dict[str, int]]:
        """Invoke `function` with `event`, and the OSS requests counted meanwhile (any other work on the
        local OSS at the same time counts too)."""
        endpoint, token = self.config.oss_endpoint, self.config.oss_admin_token
        before = request_counts(endpoint, token)
        invoked = self.invoke(function.service, function.name, event.encode())
        return invoked, spent(before, request_counts(endpoint, token))

    def replay_invocation(self, entry: Entry, record: dict[str, Any]) -> str:
        """Run an invocation's event again, as it was, through its function, marked as a replay the way
        `autotag replay` marks one (the original request id as its provenance)."""
        function = self.function_infos.get(entry.function)
        if function is None:
            return f"Replay: no function {shown(entry.function)} in the template"
        event = record.get("event")
        if not isinstance(event, str):
            return "Replay: the invocation log keeps no event for this invocation"
        if len(event.encode()) >= KEPT_EVENT_BYTES:
            return "Replay: the invocation log kept only the first 64 KiB of this event: not replayed"
        as_letter = DeadLetter(
            id=f"invocation-{entry.seq}",
            function_arn=f"services/{function.service}/functions/{function.name}",
            request_id=entry.request_id,
            payload=event,
            error_type="",
            error_message="",
            attempts=0,
            timestamp=entry.time,
        )
        invoked = self.invoke(function.service, function.name, with_provenance(as_letter))
        if invoked.unreachable:
            return f"Replay: {invoked.unreachable}"
        said = "failed" if invoked.error_type else "ran"
        original, answer = shown(entry.request_id), shown(invoked.answer)
        return f"Replay of {original}: {function.name} {said} (request id {invoked.request_id}): {answer}"


def _handler(console: Console) -> type[BaseHTTPRequestHandler]:
    class Handler(_ConsoleHandler):
        pass

    Handler.console = console
    return Handler


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class _ConsoleHandler(BaseHTTPRequestHandler):
    console: Console
    server_version = "autotag-console"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # quiet: local up prints what matters
        pass

    # ---- plumbing ---------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        url = urlsplit(self.path)
        self.queries = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            self._check_host()
            if method == "GET" and url.path == "/login":
                return self._login()
            if method == "GET" and url.path.startswith("/static/"):
                return self._static(url.path[len("/static/") :])
            session = self.console.access.session(cookie_value(self.headers.get("Cookie")))
            if session is None:
                raise _Refused(401, "sign in with the link `autotag local up` printed")
            if method == "POST":
                return self._post(url.path, session)
            route = _GET_ROUTES.get(url.path)
            if route is None:
                raise _Refused(404, "no such page")
            route(self, session)
        except _Refused as refused:
            self._page(refused.status, "refused.html", None, message=refused.message)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as error:  # one line on the page, never a traceback (it could name anything)
            self._page(500, "refused.html", None, message=f"the console failed: {type(error).__name__}")

    def _check_host(self) -> None:
        port = self.console.httpd.server_address[1]
        if self.headers.get("Host") not in {f"127.0.0.1:{port}", f"localhost:{port}"}:
            raise _Refused(421, "this console answers only at its own address")

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in self._safety().items():
            self.send_header(name, value)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    @staticmethod
    def _safety() -> dict[str, str]:
        return {
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        }

    def _page(self, status: int, template: str, session: Session | None, **values: Any) -> None:
        self._send(status, self.console.render(template, session, **values), "text/html; charset=utf-8")

    def _redirect(self, location: str, headers: dict[str, str] | None = None) -> None:
        self._send(303, b"", "text/plain", {"Location": location, **(headers or {})})

    def _static(self, name: str) -> None:
        if name not in STATIC:
            raise _Refused(404, "no such file")
        self._send(200, (HERE / "static" / name).read_bytes(), STATIC[name])

    def _login(self) -> None:
        session_id = self.console.access.log_in(self.queries.get("token", ""))
        if session_id is None:
            raise _Refused(
                403, "this login link is not valid, or was used already: restart `autotag local up`"
            )
        self._redirect("/buckets", {"Set-Cookie": cookie_header(session_id)})

    def _form(self) -> dict[str, str]:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise _Refused(400, "Content-Length is not a number") from None
        if length > MAX_FORM_BYTES:
            raise _Refused(413, f"a form is at most {MAX_FORM_BYTES} bytes")
        body = self.rfile.read(length).decode("utf-8", errors="replace")
        self.form_lists = parse_qs(body, keep_blank_values=True)
        return {k: v[0] for k, v in self.form_lists.items()}

    def _post(self, path: str, session: Session) -> None:
        form = self._form()
        if not self.console.access.csrf_holds(session, form.get("csrf")):
            raise _Refused(403, "this change lacks the page's CSRF token: reload the page and try again")
        if path == "/object/tag-again":
            bucket, key = form.get("bucket", ""), decoded(form.get("key", ""))
            if key is None:
                raise _Refused(400, "the form's key is not one this console wrote")
            session.flash.append(self.console.tag_again(bucket, key))
            return self._redirect("/object?" + urlencode({"bucket": bucket, "key": key}))
        if path == "/dead-letters/replay":
            ids = None if "all" in form else set(self.form_lists.get("id", []))
            if ids is not None and not ids:
                session.flash.append("Replay: no letter picked")
            else:
                session.flash.extend(self.console.replay_letters(ids))
            return self._redirect("/dead-letters")
        if path == "/invocation/replay":
            entry = self.console.invocations.entry(_number(form.get("seq", "")) or 0)
            if entry is None:
                raise _Refused(404, "no such invocation")
            record = self.console.invocations.record(entry) or {}
            session.flash.append(self.console.replay_invocation(entry, record))
            return self._redirect("/invocations?" + urlencode({"function": entry.function}))
        if path == "/function/invoke":
            function = self._function(form.get("name", ""))
            event = form.get("event", "")
            invoked, requests = self.console.invoke_test(function, event)
            return self._function_page(session, function, event, invoked=invoked, requests=requests)
        if path == "/function/fire":
            function = self._function(form.get("name", ""))
            timer = next((t for t in function.timers if t.name == form.get("trigger")), None)
            if timer is None:
                raise _Refused(400, f"{function.name} has no timer trigger of that name")
            # as FC writes a timer's triggerTime: whole seconds, UTC, Z
            now = self._local_now()
            at = form.get("at", "").strip() or now.strftime("%Y-%m-%dT%H:%M:%SZ")
            event = json.dumps({"triggerTime": at, "triggerName": timer.name, "payload": timer.payload})
            invoked, requests = self.console.invoke_test(function, event)
            fired = f"{function.name}'s timer {timer.name} fired at {at}, payload {timer.payload}"
            return self._function_page(
                session, function, pretty(event), invoked=invoked, requests=requests, fired=fired
            )
        if path == "/function/save":
            function = self._function(form.get("name", ""))
            name = form.get("event_name", "").strip()
            problem = self.console.saved_events.save(function.name, name, form.get("event", ""))
            session.flash.append(f"not saved: {problem}" if problem else f"saved as {name}")
            if problem:
                return self._function_page(session, function, form.get("event", ""))
            return self._redirect("/function?" + urlencode({"name": function.name, "event": name}))
        if path == "/bulk/cancel":
            flow, name = form.get("flow", ""), form.get("execution", "")
            if flow not in self.console.config.flows:
                raise _Refused(400, "no such flow in the template")
            try:
                stop_run(self.console.cloudflow_client(), flow, name)
                session.flash.append(f"cancelled {shown(flow)}/{shown(name)}")
            except Exception as error:  # CloudFlow's refusal, in one line
                said = getattr(error, "message", "") or type(error).__name__
                session.flash.append(f"not cancelled: CloudFlow answered {shown(str(said))[:300]}")
            return self._redirect("/bulk")
        if path == "/rules/try":
            return self._rules_page(session, form)
        if path == "/clock":
            session.flash.append(self.console.set_clock(form.get("offset", "").strip()))
            back = form.get("back", "")
            if back and back in self.console.function_infos:
                return self._redirect("/function?" + urlencode({"name": back}))
            return self._redirect("/functions")
        raise _Refused(404, "no such action")

    # ---- pages ------------------------------------------------------------------------------------

    def buckets(self, session: Session) -> None:
        service = oss2.Service(self.console.auth, self.console.config.oss_endpoint)
        names = [b.name for b in oss2.BucketIterator(service)]
        self._page(200, "buckets.html", session, buckets=names)

    def _listing(self) -> dict[str, Any]:
        name = self.queries.get("name", "")
        prefix = self.queries.get("prefix", "")
        after = self.queries.get("after", "")
        try:
            answer = self.console.bucket(name).list_objects_v2(
                prefix=prefix, delimiter="/", continuation_token=after, max_keys=PAGE_SIZE
            )
        except oss2.exceptions.OssError as error:
            raise _Refused(error.status or 502, f"OSS answered {error.code or error.status}") from None
        return {
            "name": name,
            "prefix": prefix,
            "after": after,
            "folders": answer.prefix_list,
            "objects": answer.object_list,
            "next": answer.next_continuation_token if answer.is_truncated else "",
            "parent": _parent(prefix),
        }

    def bucket(self, session: Session) -> None:
        self._page(200, "bucket.html", session, **self._listing())

    def listing_fragment(self, session: Session) -> None:
        self._page(200, "listing.html", session, **self._listing())

    def _object(self) -> dict[str, Any]:
        bucket, key = self.queries.get("bucket", ""), self.queries.get("key", "")
        config = self.console.config
        try:
            rules = self.console.rules()
        except Exception as error:  # the rules' own message, as the loader words it
            raise _Refused(500, f"the rules cannot be read: {error}") from None
        view = read_object(self.console.bucket(bucket), key, rules, config.state_prefix)
        return {"view": view, "fragment": "/fragment/object?" + urlencode({"bucket": bucket, "key": key})}

    def object(self, session: Session) -> None:
        self._page(200, "object.html", session, **self._object())

    def object_fragment(self, session: Session) -> None:
        self._page(200, "object_body.html", session, **self._object())

    def invocation_list(self, session: Session) -> None:
        function = self.queries.get("function", "")
        outcome = self.queries.get("outcome", "")
        before = _number(self.queries.get("before", ""))
        entries, older = self.console.invocations.page(function, outcome, before)
        stream = "/events/invocations?" + urlencode({"function": function, "outcome": outcome})
        self._page(
            200,
            "invocations.html",
            session,
            entries=entries,
            older=older,
            function=function,
            outcome=outcome,
            live=before is None,
            stream=stream,
            outcomes=("ok", "failed", "retry", "dead-letter", "undelivered"),
        )

    def invocation(self, session: Session) -> None:
        entry = self.console.invocations.entry(_number(self.queries.get("seq", "")) or 0)
        if entry is None:
            raise _Refused(404, "no such invocation")
        record = self.console.invocations.record(entry) or {}
        self._page(
            200,
            "invocation.html",
            session,
            entry=entry,
            kept=bool(record),
            event=_pretty(record.get("event")),
            result=_pretty(record.get("result")),
            error=str(record.get("error") or ""),
            log=[str(line) for line in record.get("log") or []],
        )

    def _local_now(self) -> datetime:
        """The local cloud's time (its clock may be shifted), or this machine's when OSS does not say."""
        try:
            return _parse_time(self.console.clock()["now"]).astimezone(timezone.utc)
        except (OSError, ValueError):
            return datetime.now(timezone.utc)

    def _function(self, name: str) -> FunctionInfo:
        function = self.console.function_infos.get(name)
        if function is None:
            raise _Refused(404, "no such function in the template")
        return function

    def functions(self, session: Session) -> None:
        self._page(200, "functions.html", session, infos=self.console.config.function_infos)

    def function(self, session: Session) -> None:
        function = self._function(self.queries.get("name", ""))
        saved = self.queries.get("event", "")
        kind = self.queries.get("template", "")
        event = ""
        if saved:
            event = self.console.saved_events.get(function.name, saved) or ""
        elif kind in TEMPLATES:
            timer = function.timers[0] if function.timers else None
            now = self._local_now()
            buckets = [t.bucket for t in function.triggers if t.bucket]
            event = template_event(
                kind,
                buckets[0] if buckets else "autotag-demo",
                self.console.config.region,
                timer.payload if timer else "{}",
                timer.name if timer else "test-timer",
                now,
            )
        self._function_page(session, function, event, saved=saved)

    def _function_page(
        self,
        session: Session,
        function: FunctionInfo,
        event: str,
        *,
        invoked: Invoked | None = None,
        requests: dict[str, int] | None = None,
        fired: str = "",
        saved: str = "",
    ) -> None:
        try:
            clock = self.console.clock()
        except OSError:
            clock = {"offset": "?", "now": "?"}
        self._page(
            200,
            "function.html",
            session,
            function=function,
            event=event,
            templates=TEMPLATES,
            saved_names=self.console.saved_events.names(function.name),
            saved=saved,
            invoked=invoked,
            answer=_pretty(invoked.answer) if invoked else "",
            requests=requests or {},
            fired=fired,
            clock=clock,
        )

    def rules(self, session: Session) -> None:
        self._rules_page(session, None)

    def _rules_page(self, session: Session, form: dict[str, str] | None) -> None:
        console = self.console
        try:
            in_force, in_force_error = console.rules(), ""
        except Exception as failure:  # the loader's words
            in_force, in_force_error = None, str(failure)
        try:
            text_in_force = console.rules.text()
        except (OSError, oss2.exceptions.OssError) as failure:
            text_in_force = ""
            in_force_error = in_force_error or f"the rules cannot be read: {type(failure).__name__}"
        form = form or {}
        text = form.get("rules", text_in_force)
        key = form.get("key", "uploads/photo.jpg")
        content_type = form.get("content_type", "image/jpeg")
        size_text = form.get("size", "1024").strip()
        metadata = form.get("metadata", "")
        bucket = form.get("bucket", "autotag-demo")
        prefix = form.get("prefix", "")
        edited, error = check_rules(text, console.config.record_secrets)
        tags: list[Derived] = []
        verdicts: list[RuleVerdict] = []
        changes: list[Change] | None = None
        sampled = 0
        if edited is not None:
            size = int(size_text) if size_text.isdigit() else None
            facts = ObjectFacts(key, size, content_type or None, parse_metadata(metadata))
            tags, verdicts = explain(text, edited, facts)
            if form.get("compare") and in_force is not None:
                sample = self._sample(bucket, prefix)
                sampled = len(sample)
                changes = what_would_change(in_force, edited, sample)
        self._page(
            200,
            "rules.html",
            session,
            where=console.rules.where(),
            in_force=in_force,
            in_force_error=in_force_error,
            text=text,
            key=key,
            content_type=content_type,
            size=size_text,
            metadata=metadata,
            bucket=bucket,
            prefix=prefix,
            error=error,
            tags=tags,
            verdicts=verdicts,
            changes=changes,
            sampled=sampled,
            sample_size=SAMPLE_SIZE,
        )

    def _sample(self, bucket_name: str, prefix: str) -> list[ObjectFacts]:
        """The first SAMPLE_SIZE objects under `prefix`, with the facts a HEAD gives (what the rules read)."""
        bucket = self.console.bucket(bucket_name)
        try:
            listed = bucket.list_objects_v2(prefix=prefix, max_keys=SAMPLE_SIZE).object_list
        except oss2.exceptions.OssError as error:
            raise _Refused(error.status or 502, f"OSS answered {error.code or error.status}") from None
        gateway = OssGateway(bucket)
        sample = []
        for item in listed:
            try:
                head = gateway.head(item.key)
            except (ObjectGone, OssFailure):
                continue
            facts = ObjectFacts(item.key, head.size, head.content_type, head.user_meta, head.last_modified)
            sample.append(facts)
        return sample

    def bulk(self, session: Session) -> None:
        console = self.console
        runs, problem = [], ""
        if console.config.flows and console.config.cloudflow_endpoint:
            try:
                runs = backfill_runs(console.cloudflow_client(), console.config.flows)
            except Exception as error:  # CloudFlow unreachable or refusing: one line
                problem = f"CloudFlow did not answer: {type(error).__name__}"
        sweepers = [f.name for f in console.config.function_infos if f.handler == "tag_expiry.handler"]
        passes = []
        for name in sweepers:
            for entry in console.invocations.page(name, "", None)[0][:20]:
                record = console.invocations.record(entry) or {}
                passes.append((entry, sweep_counts(str(record.get("result") or ""))))
        passes.sort(key=lambda item: item[0].seq, reverse=True)
        self._page(200, "bulk.html", session, runs=runs, problem=problem, passes=passes)

    def dead_letters(self, session: Session) -> None:
        try:
            letters, problem = self.console.letters(), ""
        except DeadLetterError as error:
            letters, problem = [], f"the dead-letter store cannot be read: {error}"
        start = _number(self.queries.get("from", "")) or 0
        self._page(
            200,
            "dead_letters.html",
            session,
            letters=letters[start : start + PAGE_SIZE],
            total=len(letters),
            start=start,
            more=start + PAGE_SIZE < len(letters),
            page_size=PAGE_SIZE,
            problem=problem,
            store=str(self.console.config.dead_letters or ""),
        )

    # ---- live streams -----------------------------------------------------------------------------

    def _stream(self, each: Callable[[list[Entry]], list[tuple[str, str]]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        for name, value in self._safety().items():
            self.send_header(name, value)
        self.end_headers()
        index = self.console.invocations
        seen = len(index.entries)
        self.wfile.write(b": stream open\n\n")
        self.wfile.flush()
        while not self.console.stopping.is_set():
            now = index.wait_for_more(seen, KEEPALIVE_SECONDS)
            if self.console.stopping.is_set():
                return
            new = [e for e in (index.entry(seq) for seq in range(seen + 1, now + 1)) if e is not None]
            seen = now
            events = each(new) if new else [("", "")]
            for name, data in events:
                if not name:
                    self.wfile.write(b": keep-alive\n\n")
                    continue
                lines = "".join(f"data: {line}\n" for line in data.split("\n"))
                self.wfile.write(f"event: {name}\n{lines}\n".encode())
            self.wfile.flush()

    def changes(self, session: Session) -> None:
        self._stream(lambda new: [("changed", str(new[-1].seq))])

    def invocation_stream(self, session: Session) -> None:
        function = self.queries.get("function", "")
        outcome = self.queries.get("outcome", "")
        template = self.console.templates.get_template("invocation_row.html")

        def rows(new: list[Entry]) -> list[tuple[str, str]]:
            picked = [e for e in new if matches(e, function, outcome)]
            return [("invocation", template.render(entry=e)) for e in picked] or [("", "")]

        self._stream(rows)


_GET_ROUTES: dict[str, Callable[[_ConsoleHandler, Session], None]] = {
    "/": lambda handler, _session: handler._redirect("/buckets"),
    "/buckets": _ConsoleHandler.buckets,
    "/bucket": _ConsoleHandler.bucket,
    "/fragment/listing": _ConsoleHandler.listing_fragment,
    "/object": _ConsoleHandler.object,
    "/fragment/object": _ConsoleHandler.object_fragment,
    "/invocations": _ConsoleHandler.invocation_list,
    "/invocation": _ConsoleHandler.invocation,
    "/dead-letters": _ConsoleHandler.dead_letters,
    "/functions": _ConsoleHandler.functions,
    "/rules": _ConsoleHandler.rules,
    "/bulk": _ConsoleHandler.bulk,
    "/function": _ConsoleHandler.function,
    "/events/changes": _ConsoleHandler.changes,
    "/events/invocations": _ConsoleHandler.invocation_stream,
}


def when(epoch_seconds: int) -> str:
    """A listing's Last-Modified (oss2 gives seconds since the epoch) as ISO 8601 UTC."""
    moment = datetime.fromtimestamp(epoch_seconds, timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


def encoded(key: str) -> str:
    """A key in a form field: base64url of its UTF-8, so the browser sends it back byte for byte (an
    attribute's CR or NUL would not survive HTML parsing)."""
    return base64.urlsafe_b64encode(key.encode("utf-8", "surrogatepass")).decode()


def decoded(field: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(field.encode("ascii")).decode("utf-8", "surrogatepass")
    except (binascii.Error, ValueError):
        return None


def _parent(prefix: str) -> str | None:
    if not prefix:
        return None
    trimmed = prefix[:-1] if prefix.endswith("/") else prefix
    return trimmed[: trimmed.rfind("/") + 1] if "/" in trimmed else ""


def _parse_time(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(timezone.utc)


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) < 12 else None


def _pretty(value: Any) -> str:
    """An event or result as the page shows it: indented when it is JSON, cut to MAX_SHOWN_CHARS."""
    if value is None:
        return ""
    text = str(value)
    with contextlib.suppress(ValueError):
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    # one visible line per line: control characters and bidi overrides escaped (JSON escapes the former)
    return "\n".join(shown(line) for line in text[:MAX_SHOWN_CHARS].split("\n"))


__all__ = ["Console", "ConsoleConfig"]
