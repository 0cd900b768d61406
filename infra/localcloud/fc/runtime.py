"""The local Function Compute: runs the functions template.yml declares, as FC does.

Each function is loaded from its CodeUri and Handler (its Initializer runs once, before the first
invocation) and called with `event` as bytes and an FC-shaped context carrying the STS credentials of its
service's RAM role: the local OSS and the local FC API authorise them against the service's `Policies`, so
a function can do exactly what its template grants. Asynchronous invocations (OSS and timer triggers,
`invoke_async`) queue up and run on a bounded pool of instances; a failed one is retried
`MaxAsyncRetryAttempts` times with backoff, then its event, error and attempt count go to the on-failure
destination (the dead-letter store) if the role may `mns:SendMessage` to it, as FC requires. An event a
trigger hands over that FC refuses (over its payload limit) never runs; it goes, with error EntityTooLarge and
no attempts, where that trigger sends its failures: the function's on-failure destination (OSS triggers), the
trigger's dead-letter queue (EventBridge); without one it is reported as undelivered.

A function is known by its service and its name, as in FC 2.0 (`services/{service}/functions/{name}`):
functions of the same name in two services (deployed through the FC API) are apart, each with its own code,
role and triggers. A call that names no service means the template's function of that name, else the one
function of that name.

All functions run in this process and share one environment: the union of their EnvironmentVariables
(conflicting values are refused), plus overrides such as the local OSS endpoint."""

from __future__ import annotations

import json
import logging
import os
import queue
import random
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..clock import Clock
from ..oss.auth import Credential
from ..ram import LOCAL_ACCOUNT_ID, Request, Role, evaluate, session_for
from .context import FC3_ONLY_RUNTIMES, Credentials, FCContext, FunctionMeta, ServiceMeta
from .deadletters import DeadLetterStore
from .eventbridge import EventBridgeConfig, LocalEventBridge, TriggerDelivery
from .loader import load_handler
from .schedule import parse_schedule
from .template import FunctionSpec, Template, TemplateError, TriggerSpec

log = logging.getLogger("localcloud.fc")
ACCOUNT_ID = LOCAL_ACCOUNT_ID


@dataclass(frozen=True)
class InvocationResult:
    request_id: str
    function: str
    payload: str | None  # what the handler returned, as text
    error_type: str = ""  # "" when it succeeded; UnhandledInvocationError otherwise
    error_message: str = ""
    attempts: int = 1
    service: str = ""

    @property
    def ok(self) -> bool:
        return not self.error_type


@dataclass
class _Queued:
    function: str
    event: bytes
    request_id: str
    attempt: int = 1
    not_before: float = 0.0
    push: EventBridgePush | None = None  # an EventBridge push (synchronous), not an async invocation
    service: str = ""


@dataclass(frozen=True)
class EventBridgePush:
    """How an EventBridge trigger retries a push that failed, and where what still fails goes."""

    trigger: str
    retries: int
    dead_letter_queue: str  # "" for none: the events are dropped, as EventBridge does


class PayloadTooLarge(ValueError):
    """FC refuses the invocation: its payload is over the limit of its invocation type."""


# FC's payload limits: 128 KB for an asynchronous invocation, 32 MB for a synchronous one
# (https://www.alibabacloud.com/help/doc-detail/2527064.html).
MAX_ASYNC_PAYLOAD = 128 * 1024
MAX_SYNC_PAYLOAD = 32 * 1024 * 1024


FunctionKey = tuple[str, str]  # (service, function name): how FC 2.0 names a function


@dataclass
class _Instance:
    spec: FunctionSpec
    handler: Callable[..., Any]
    initialized: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def function_arn(spec: FunctionSpec, region: str) -> str:
    return f"acs:fc:{region}:{ACCOUNT_ID}:services/{spec.service}/functions/{spec.name}"


def role_credentials(roles: Iterable[Role]) -> list[Credential]:
    """The STS credentials of these roles' sessions, as the local OSS and FC API accept them."""
    credentials = []
    for role in roles:
        session = session_for(role)
        credentials.append(
            Credential(session.access_key_id, session.access_key_secret, session.security_token, role)
        )
    return credentials


def expand_arn(arn: str, region: str, account_id: str) -> str:
    """An ARN with its empty region and account filled in (`acs:mns:::/queues/q/messages`), as FC and
    Funcraft read the short form."""
    parts = arn.split(":", 4)
    if len(parts) == 5 and parts[0] == "acs":
        parts[2] = parts[2] or region
        parts[3] = parts[3] or account_id
    return ":".join(parts)


def timer_event(trigger: TriggerSpec, at: datetime) -> bytes:
    """The event FC delivers for a timer trigger firing at `at`."""
    moment = at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps(
        {"triggerTime": moment, "triggerName": trigger.name, "payload": trigger.payload}
    ).encode()


DONE, RETRY, DEAD_LETTER, UNDELIVERED = "done", "retry", "dead-letter", "undelivered"


@dataclass(frozen=True)
class InvocationRecord:
    """What happened to an invocation, for observers such as `autotag local up`'s log."""

    kind: str  # done (a handler call finished, either way), retry, dead-letter or undelivered
    function: str
    request_id: str
    attempt: int
    event: bytes
    seconds: float
    result: InvocationResult | None
    note: str = ""


class InstanceCrashed(RuntimeError):
    """An injected crash of the function instance (chaos testing)."""


class FunctionTimedOut(RuntimeError):
    """The handler ran past the function's Timeout; FC ends such an invocation with this message."""


def handler_thread_name(invoking: threading.Thread | None = None) -> str:
    """The name of the thread a handler runs on for an invocation made on `invoking` (default: this one)."""
    return f"{(invoking or threading.current_thread()).name} handler"


def _within_timeout(handler: Callable[..., Any], event: bytes, context: Any, timeout: float) -> Any:
    """`handler(event, context)`, or FunctionTimedOut once `timeout` seconds have passed, as FC ends an
    invocation at its Timeout ("Function time out after", FC's error for it). A Python thread cannot be
    killed: the abandoned call runs on in the background, where FC would have stopped the instance."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["returned"] = handler(event, context)
        except BaseException as error:  # handed to the invoking thread below
            outcome["error"] = error

    # named after the invoking thread, so a log capture of that invocation (the FC API's log tail) finds it
    worker = threading.Thread(target=run, name=handler_thread_name(), daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise FunctionTimedOut(f"Function time out after {timeout:g} seconds")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("returned")


class LocalFC:
    def __init__(
        self,
        template: Template,
        *,
        environment: dict[str, str] | None = None,
        region: str = "cn-hangzhou",
        dead_letters: DeadLetterStore | None = None,
        concurrency: int = 4,
        retry_base_seconds: float = 0.1,
        credentials: Credentials | None = None,
        crash_rate: float = 0.0,
        seed: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.template = template
        self.clock = clock or Clock()  # timer trigger times (share the local OSS's to move time together)
        self.crash_rate = crash_rate  # chaos: this share of invocations crash, before or after the handler
        self._random = random.Random(seed)
        self._random_lock = threading.Lock()
        self.crashes: dict[str, int] = {"before": 0, "after": 0}
        self.region = region
        self.dead_letters = dead_letters or DeadLetterStore()
        self.undelivered: list[str] = []  # dead letters the role was not allowed to send, with why
        self.concurrency = concurrency
        self.retry_base_seconds = retry_base_seconds
        # Explicit credentials replace the roles' (a function run against a real OSS endpoint).
        self.credentials = credentials
        self.roles: dict[str, Role] = dict(template.roles)
        self.environment = self._shared_environment(environment or {})
        # Every function the local FC runs: template.yml's, and those deployed through the FC API since.
        self.functions: dict[FunctionKey, FunctionSpec] = {
            (spec.service, spec.name): spec for spec in template.functions.values()
        }
        self._instances: dict[FunctionKey, _Instance] = {}
        self._load_lock = threading.Lock()
        self._queue: queue.Queue[_Queued | None] = queue.Queue()
        self._pending = 0
        self._pending_lock = threading.Condition()
        self._workers: list[threading.Thread] = []
        self._stop = threading.Event()
        self._saved_environment: dict[str, str | None] = {}
        self.oss: Any = None
        self._subscriptions: dict[tuple[str, str, str], str] = {}  # (service, function, trigger) -> id
        self.eventbridge = LocalEventBridge(template.routes, ACCOUNT_ID, self.region)
        self._eventbridge_subscription = ""
        self.results: list[InvocationResult] = []  # finished asynchronous invocations, in order
        self.observers: list[Callable[[InvocationRecord], None]] = []  # told of every invocation
        self.invocations = 0  # handler calls, retries included

    # -- lifecycle -----------------------------------------------------------------------------------------

    def _shared_environment(self, overrides: dict[str, str]) -> dict[str, str]:
        merged: dict[str, str] = {}
        set_by: dict[str, str] = {}  # which function's value `merged` holds
        for spec in self.template.functions.values():
            for name, value in spec.environment.items():
                if name in overrides:
                    continue
                if name in merged and merged[name] != value:
                    raise TemplateError(
                        f"{name} is {merged[name]!r} in {set_by[name]} and {value!r} in {spec.name}: "
                        "the local FC runs every function in one process with one environment"
                    )
                merged[name], set_by[name] = value, spec.name
        return {**merged, **overrides}

    def start(self) -> LocalFC:
        self._saved_environment = {name: os.environ.get(name) for name in self.environment}
        os.environ.update(self.environment)
        for number in range(self.concurrency):
            worker = threading.Thread(target=self._work, name=f"fc-instance-{number}", daemon=True)
            worker.start()
            self._workers.append(worker)
        for spec in list(self.functions.values()):
            for trigger in spec.triggers:
                if trigger.type == "Timer" and trigger.enabled:
                    thread = threading.Thread(
                        target=self._timer_loop,
                        args=(spec, trigger),
                        name=f"timer-{trigger.name}",
                        daemon=True,
                    )
                    thread.start()
                    self._workers.append(thread)
        return self

    def stop(self) -> None:
        self.eventbridge.stop()
        self._stop.set()
        for _ in range(self.concurrency):
            self._queue.put(None)
        for worker in self._workers:
            worker.join(timeout=5)
        self._workers.clear()
        for name, value in self._saved_environment.items():  # leave the process as it was
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def __enter__(self) -> LocalFC:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def role_credentials(self) -> list[Credential]:
        """The STS credentials of every role, as the local OSS and FC API must accept them."""
        return role_credentials(self.roles.values())

    def wire_oss(self, oss: Any) -> int:
        """Make the local OSS accept the roles' credentials, create the buckets the template declares, and
        subscribe every OSS trigger to its notifications; the number wired. Triggers created later
        (through the FC API) are wired as they come."""
        self.oss = oss
        oss.add_credentials(self.role_credentials())
        for declared in self.template.buckets:  # the sweep's state bucket, as a deploy creates it
            oss.store.create_bucket(declared.name)
        wired = 0
        for spec in list(self.functions.values()):
            for trigger in spec.triggers:
                wired += self._wire(spec, trigger)
        return wired

    def _wire(self, spec: FunctionSpec, trigger: TriggerSpec) -> int:
        if trigger.type == "EventBridge" and self.oss is not None:
            return self._wire_eventbridge(spec, trigger)
        if trigger.type != "OSS" or self.oss is None:
            return 0
        prefix, suffix = trigger.key_filter
        subscription = self.oss.subscribe(
            trigger.bucket,
            trigger.events,
            lambda payload: self._deliver_oss_event(spec, payload),
            prefix=prefix,
            suffix=suffix,
        )
        self._subscriptions[(spec.service, spec.name, trigger.name)] = subscription.id
        return 1

    def _wire_eventbridge(self, spec: FunctionSpec, trigger: TriggerSpec) -> int:
        """EventBridge's default bus carries every bucket's OSS events: the patterns pick."""
        config = trigger.eventbridge
        if not config.enabled:
            return 0
        delivery = TriggerDelivery(config, self._eventbridge_pusher(spec, trigger.name, config))
        self.eventbridge.add(_label(spec), trigger.name, delivery)
        if not self._eventbridge_subscription:
            every_event = ["oss:ObjectCreated:*", "oss:ObjectRemoved:*", "oss:ObjectModified:*"]
            subscription = self.oss.subscribe("*", every_event, self.eventbridge.on_oss_notification)
            self._eventbridge_subscription = subscription.id
        return 1

    def _deliver_oss_event(self, spec: FunctionSpec, payload: bytes) -> None:
        """An OSS trigger's event, as an asynchronous invocation; one FC refuses is dead-lettered."""
        try:
            self.invoke_async(spec.name, payload, service=spec.service)
        except PayloadTooLarge as error:
            self._refused(spec, payload, error, None)

    def _eventbridge_pusher(
        self, spec: FunctionSpec, trigger: str, config: EventBridgeConfig
    ) -> Callable[[bytes], object]:
        """How the trigger hands a payload over: an asynchronous invocation, or a synchronous push that
        EventBridge retries. A payload FC refuses (over its size limit) never reaches the function: it is
        a failed push, which EventBridge sends to the trigger's dead-letter queue (retrying cannot help)."""
        push = EventBridgePush(trigger, config.push_retries, config.dead_letter_queue)

        def hand_over(payload: bytes) -> object:
            try:
                if config.asynchronous:
                    return self.invoke_async(spec.name, payload, service=spec.service)
                return self.push_eventbridge(spec.name, payload, push, service=spec.service)
            except PayloadTooLarge as error:
                self._refused(spec, payload, error, push)
                return None

        return hand_over

    def _refused(
        self, spec: FunctionSpec, event: bytes, error: PayloadTooLarge, push: EventBridgePush | None
    ) -> None:
        """FC refused to take `event` (413 EntityTooLarge): dead-letter it where its trigger sends failures,
        with no attempts, so it can be found and replayed rather than lost."""
        item = _Queued(spec.name, event, str(uuid.uuid4()), attempt=0, push=push, service=spec.service)
        result = InvocationResult(
            item.request_id, spec.name, None, "EntityTooLarge", str(error), 0, spec.service
        )
        if push is None:
            self._send_dead_letter(spec, item, result)
        elif not push.dead_letter_queue:
            why = f"FC refused it ({error}) and EventBridge trigger {push.trigger} has no dead-letter queue"
            self._undeliverable(spec, item, why)
        else:
            self._dead_letter(spec, item, result, push.dead_letter_queue)

    def _unwire(self, spec: FunctionSpec, trigger_name: str) -> None:
        subscription = self._subscriptions.pop((spec.service, spec.name, trigger_name), None)
        if subscription is not None and self.oss is not None:
            self.oss.notifier.unsubscribe(subscription)
        self.eventbridge.remove(_label(spec), trigger_name)

    # -- functions and triggers deployed at run time (the FC API) ------------------------------------------

    def function(self, name: str, service: str | None = None) -> FunctionSpec:
        """The function `name` of `service`; without a service, template.yml's function of that name, else
        the one function of that name (TemplateError when there is none, or several)."""
        if service is not None:
            spec = self.functions.get((service, name))
            if spec is None:
                raise TemplateError(f"no function {name!r} in service {service!r}")
            return spec
        declared = self.template.functions.get(name)
        if declared is not None and (declared.service, name) in self.functions:
            return self.functions[(declared.service, name)]
        found = [spec for (_, function), spec in self.functions.items() if function == name]
        if len(found) == 1:
            return found[0]
        if not found:
            names = sorted({function for _, function in self.functions})
            raise TemplateError(f"{self.template.path}: no function {name!r}; it has {', '.join(names)}")
        services = ", ".join(sorted(spec.service for spec in found))
        raise TemplateError(f"function {name!r} is in the services {services}: name the service")

    def register(self, spec: FunctionSpec) -> None:
        """Add or replace a function (a deploy) of its service: its next invocation loads the new code."""
        key = (spec.service, spec.name)
        with self._load_lock:
            old = self.functions.get(key)
            if old is not None:
                for trigger in old.triggers:
                    self._unwire(old, trigger.name)
            self.functions[key] = spec
            self._instances.pop(key, None)
            _forget_modules(spec.code_uri)
        for trigger in spec.triggers:
            self._start_trigger(spec, trigger)

    def unregister(self, name: str, service: str | None = None) -> None:
        spec = self.function(name, service)
        key = (spec.service, spec.name)
        with self._load_lock:
            self.functions.pop(key, None)
            self._instances.pop(key, None)
        for trigger in spec.triggers:
            self._unwire(spec, trigger.name)

    def _start_trigger(self, spec: FunctionSpec, trigger: TriggerSpec) -> None:
        self._wire(spec, trigger)
        if trigger.type == "Timer" and trigger.enabled and self._workers:
            thread = threading.Thread(
                target=self._timer_loop, args=(spec, trigger), name=f"timer-{trigger.name}", daemon=True
            )
            thread.start()
            self._workers.append(thread)

    # -- invocation ----------------------------------------------------------------------------------------

    def _instance(self, key: FunctionKey) -> _Instance:
        with self._load_lock:
            if key not in self._instances:
                spec = self.function(key[1], key[0])
                self._instances[key] = _Instance(spec, load_handler(spec.code_uri, spec.handler))
            return self._instances[key]

    def credentials_for(self, spec: FunctionSpec) -> Credentials | None:
        """What FC hands the function: its role's STS credentials (none without a role)."""
        if self.credentials is not None:
            return self.credentials
        role = self.roles.get(spec.role)
        if role is None:
            return None
        session = session_for(role)
        return Credentials(session.access_key_id, session.access_key_secret, session.security_token)

    def context(self, spec: FunctionSpec, request_id: str) -> FCContext:
        return FCContext(
            request_id=request_id,
            credentials=self.credentials_for(spec),
            function=FunctionMeta(
                spec.name,
                spec.handler,
                memory=spec.memory,
                timeout=spec.timeout,
                initializer=spec.initializer,
                initialization_timeout=spec.initialization_timeout,
            ),
            service=None if spec.runtime in FC3_ONLY_RUNTIMES else ServiceMeta(spec.service),
            region=self.region,
            account_id=ACCOUNT_ID,
        )

    def invoke(
        self,
        name: str,
        event: bytes,
        request_id: str | None = None,
        attempt: int = 1,
        *,
        service: str | None = None,
    ) -> InvocationResult:
        """A synchronous invocation: the handler's return value, or the error it raised."""
        started = time.monotonic()
        spec = self.function(name, service)
        result = self._run((spec.service, spec.name), event, request_id or str(uuid.uuid4()))
        self._notify(
            InvocationRecord(
                DONE, name, result.request_id, attempt, event, time.monotonic() - started, result
            )
        )
        return result

    def _run(self, key: FunctionKey, event: bytes, request_id: str) -> InvocationResult:
        service, name = key
        instance = self._instance(key)
        context = self.context(instance.spec, request_id)
        self.invocations += 1
        crash = self._chaos()
        try:
            with instance.lock:
                if not instance.initialized and instance.spec.initializer:
                    load_handler(instance.spec.code_uri, instance.spec.initializer)(context)
                instance.initialized = True
            if crash == "before":
                raise InstanceCrashed("the instance died before the handler ran (injected)")
            returned = _within_timeout(instance.handler, event, context, instance.spec.timeout)
            if crash == "after":
                raise InstanceCrashed(
                    "the instance died after the handler ran, before it answered (injected)"
                )
        except FunctionTimedOut as error:
            with self._load_lock:  # FC ends the instance: the next invocation gets a new one
                if self._instances.get(key) is instance:
                    del self._instances[key]
            log.info("%s %s failed: %s", name, request_id, error)
            return InvocationResult(
                request_id, name, None, "UnhandledInvocationError", str(error), service=service
            )
        except Exception as error:  # the function's error is the invocation's result, as in FC
            log.info(
                "%s %s failed: %s", name, request_id, "".join(traceback.format_exception_only(error)).strip()
            )
            return InvocationResult(
                request_id,
                name,
                None,
                "UnhandledInvocationError",
                f"{type(error).__name__}: {error}",
                service=service,
            )
        if isinstance(returned, bytes):
            returned = returned.decode("utf-8", errors="replace")
        return InvocationResult(
            request_id, name, None if returned is None else str(returned), service=service
        )

    def _chaos(self) -> str:
        if not self.crash_rate:
            return ""
        with self._random_lock:
            if self._random.random() >= self.crash_rate:
                return ""
            where = self._random.choice(("before", "after"))
            self.crashes[where] += 1
            return where

    def invoke_async(self, name: str, event: bytes, *, service: str | None = None) -> str:
        """Queue an asynchronous invocation; its request id."""
        spec = self.function(name, service)  # unknown functions fail here, not in a worker
        if len(event) > MAX_ASYNC_PAYLOAD:
            raise PayloadTooLarge(
                f"the payload is {len(event)} bytes; an asynchronous invocation takes at most "
                f"{MAX_ASYNC_PAYLOAD}"
            )
        request_id = str(uuid.uuid4())
        with self._pending_lock:
            self._pending += 1
        self._queue.put(_Queued(name, event, request_id, service=spec.service))
        return request_id

    def push_eventbridge(
        self, name: str, event: bytes, push: EventBridgePush, *, service: str | None = None
    ) -> str:
        """Queue an EventBridge push: a synchronous invocation, retried as the trigger's retry strategy
        says and then sent to its dead-letter queue, instead of FC's asynchronous retries."""
        spec = self.function(name, service)
        if len(event) > MAX_SYNC_PAYLOAD:
            raise PayloadTooLarge(
                f"the payload is {len(event)} bytes; an invocation takes at most {MAX_SYNC_PAYLOAD}"
            )
        request_id = str(uuid.uuid4())
        with self._pending_lock:
            self._pending += 1
        self._queue.put(_Queued(name, event, request_id, push=push, service=spec.service))
        return request_id

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every queued invocation (retries included) has finished or been dead-lettered, and
        every event waiting in an EventBridge batch window has been pushed."""
        deadline = time.monotonic() + timeout
        while self.eventbridge.pending():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        with self._pending_lock:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._pending_lock.wait(left)
        return True

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            wait = item.not_before - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            result = self.invoke(
                item.function, item.event, item.request_id, item.attempt, service=item.service
            )
            spec = self.function(item.function, item.service)
            retries = item.push.retries if item.push else spec.max_async_retries
            if not result.ok and item.attempt <= retries and not self._stop.is_set():
                delay = self.retry_base_seconds * 2 ** (item.attempt - 1)
                note = f"retry {item.attempt} of {retries} in {delay:g} s"
                self._notify(
                    InvocationRecord(
                        RETRY, item.function, item.request_id, item.attempt, item.event, 0.0, result, note
                    )
                )
                self._queue.put(
                    _Queued(
                        item.function,
                        item.event,
                        item.request_id,
                        item.attempt + 1,
                        time.monotonic() + delay,
                        item.push,
                        item.service,
                    )
                )
                continue
            final = InvocationResult(
                result.request_id,
                result.function,
                result.payload,
                result.error_type,
                result.error_message,
                item.attempt,
                result.service,
            )
            if not final.ok and item.push is not None:
                self._push_dead_letter(spec, item, final, item.push)
            elif not final.ok:
                self._send_dead_letter(spec, item, final)
            with self._pending_lock:
                self.results.append(final)
                self._pending -= 1
                self._pending_lock.notify_all()

    def _send_dead_letter(self, spec: FunctionSpec, item: _Queued, result: InvocationResult) -> None:
        """Deliver a failed invocation to the on-failure destination, as FC does: only when the function
        has one and its role may send to it."""
        if not spec.on_failure:
            self._undeliverable(spec, item, "the function has no on-failure destination")
            return
        destination = expand_arn(spec.on_failure, self.region, ACCOUNT_ID)
        role = self.roles.get(spec.role)
        if self.credentials is None and (
            role is None or not evaluate(role.policies, Request("mns:SendMessage", destination)).allowed
        ):
            who = f"role {spec.role}" if role else "a function without a role"
            self._undeliverable(spec, item, f"{who} may not mns:SendMessage to {destination}")
            return
        self._dead_letter(spec, item, result, destination)

    def _push_dead_letter(
        self, spec: FunctionSpec, item: _Queued, result: InvocationResult, push: EventBridgePush
    ) -> None:
        """EventBridge, not the function's role, sends a push that failed every retry to the trigger's
        dead-letter queue; without one the events are gone, which is reported loudly."""
        if not push.dead_letter_queue:
            self._undeliverable(spec, item, f"EventBridge trigger {push.trigger} has no dead-letter queue")
            return
        self._dead_letter(spec, item, result, push.dead_letter_queue)

    def _dead_letter(
        self, spec: FunctionSpec, item: _Queued, result: InvocationResult, destination: str
    ) -> None:
        """Keep a failed invocation in the dead-letter store, as sent to `destination`, and say so."""
        self.dead_letters.put(
            function_arn(spec, self.region),
            item.request_id,
            item.event,
            result.error_type,
            result.error_message,
            item.attempt,
        )
        tried = f"after {item.attempt} attempt(s)" if item.attempt else "refused by FC, never run"
        note = f"{tried}, sent to {destination}"
        self._notify(
            InvocationRecord(
                DEAD_LETTER, spec.name, item.request_id, item.attempt, item.event, 0.0, result, note
            )
        )

    def _undeliverable(self, spec: FunctionSpec, item: _Queued, why: str) -> None:
        tried = f"failed after {item.attempt} attempt(s)" if item.attempt else "refused by FC, never run"
        message = f"{spec.name} {item.request_id}: {tried}; dead letter not delivered: {why}"
        log.error(message)
        self.undelivered.append(message)
        self._notify(
            InvocationRecord(
                UNDELIVERED, spec.name, item.request_id, item.attempt, item.event, 0.0, None, why
            )
        )

    def _notify(self, record: InvocationRecord) -> None:
        for observer in list(self.observers):
            try:
                observer(record)
            except Exception:  # an observer's bug never fails an invocation
                log.exception("an invocation observer failed")

    # -- timers --------------------------------------------------------------------------------------------

    def fire_timer(
        self,
        name: str,
        at: datetime | None = None,
        trigger_name: str | None = None,
        *,
        service: str | None = None,
    ) -> str:
        """Fire a function's timer trigger now (or as if at `at`), asynchronously, as the schedule would."""
        spec = self.function(name, service)
        timers = [t for t in spec.triggers if t.type == "Timer" and (trigger_name in (None, t.name))]
        if not timers:
            raise TemplateError(f"{name} has no timer trigger {trigger_name or ''}".rstrip())
        event = timer_event(timers[0], at or self.clock.now())
        return self.invoke_async(name, event, service=spec.service)

    def _timer_loop(self, spec: FunctionSpec, trigger: TriggerSpec) -> None:
        schedule = parse_schedule(trigger.cron)
        moment = self.clock.now()
        key = (spec.service, spec.name)
        while not self._stop.is_set() and trigger in getattr(self.functions.get(key), "triggers", ()):
            # Ticks the clock jumped over are not fired late (FC fires none it missed).
            moment = schedule.next_after(max(moment, self.clock.now() - timedelta(seconds=1)))
            while (left := (moment - self.clock.now()).total_seconds()) > 0:
                if self._stop.wait(min(left, 1.0)):  # short waits: the clock's offset may change
                    return
            self.invoke_async(spec.name, timer_event(trigger, moment), service=spec.service)


def _label(spec: FunctionSpec) -> str:
    """How logs and EventBridge name a function: `service/name`, unique as FC's path is."""
    return f"{spec.service}/{spec.name}"


def _forget_modules(code_uri: Any) -> None:
    """Drop modules imported from other code folders under the names this one provides, so a redeployed
    function runs its new code (FC starts new instances on a deploy)."""
    root = str(code_uri)
    names = (
        {p.stem if p.suffix == ".py" else p.name for p in code_uri.iterdir()} if code_uri.is_dir() else set()
    )
    for module_name, module in list(sys.modules.items()):
        top = module_name.split(".", 1)[0]
        location = getattr(module, "__file__", None) or ""
        if top in names and not location.startswith(root):
            del sys.modules[module_name]
    sys.path[:] = [p for p in sys.path if not any((Path(p) / n).exists() for n in names) or p == root]
