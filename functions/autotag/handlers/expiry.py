"""Scheduled tag expiry: the handler a timer trigger invokes.

`handler(event: bytes, context)` sweeps each bucket the payload names that is one of `AUTOTAG_BUCKETS`
(any other is `rejected`, sent no request), or with `shards` dispatches one asynchronous invocation per
shard; stops before the function timeout with a checkpoint the next run resumes from, returns a JSON
summary and logs one JSON line per swept scope."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from ..gateway import OssFailure, OutOfTime, RateLimiter
from ..inventory import InventoryError
from ..output import to_json
from ..settings import ConfigurationError, Settings, credentials_from
from ..sweep.checkpoint import Scope
from ..sweep.fanout import (
    Dispatcher,
    FunctionComputeDispatcher,
    InProcessDispatcher,
    listing_boundaries,
    load_or_plan_shards,
    shard_events,
)
from ..sweep.gateway import SweepGateway
from ..sweep.inventory_plan import READ_WORKERS, inventory_boundaries
from ..sweep.request import SweepRequest, TimerEvent, parse_timer_event
from ..sweep.runner import SweepLimits, SweepReport, run_sweep
from ..sweep.state import StateStore
from .budget import function_timeout, work_deadline
from .clients import open_bucket, oss_auth
from .rules_source import current_rules, rules_in_force

log = logging.getLogger("autotag.expiry")
LEASE_MARGIN_SECONDS = 60.0


def initialize(context: Any) -> None:
    settings = Settings.from_environment()
    settings.require_buckets()
    current_rules(settings, context)


def handler(event: bytes, context: Any) -> str:
    started = time.monotonic()
    timer = parse_timer_event(event)
    settings = Settings.from_environment()
    settings.require_buckets()
    rules = current_rules(settings, context)
    in_force = rules_in_force(settings, context)  # asked before each write, for rules kept in OSS
    request = timer.request
    timeout = function_timeout(context)
    deadline = work_deadline(started, timeout)
    limits = SweepLimits(
        workers=request.workers,
        max_objects=request.max_objects,
        # A lease lives this long from its Last-Modified: FC ends this function by its timeout.
        lease_seconds=(timeout or 900.0) + LEASE_MARGIN_SECONDS,
    )
    credentials = credentials_from(context)
    auth = oss_auth(credentials)
    endpoint = settings.endpoint_for(getattr(context, "region", "") or "cn-hangzhou")
    # shared by every bucket of this run; never waits past the deadline
    limiter = RateLimiter(request.qps, deadline=deadline) if request.qps else None
    reports: list[SweepReport] = []
    dispatched: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []  # buckets outside AUTOTAG_BUCKETS: sent no request
    # Checkpoints, leases and shard plans in a bucket of their own (template.yml's default), where only the
    # functions may write; empty: in each swept bucket, where its uploaders may write too.
    state_bucket = os.environ.get("AUTOTAG_SWEEP_STATE_BUCKET") or os.environ.get("AUTOTAG_STATE_BUCKET", "")
    for bucket_name in request.buckets:
        refused = settings.bucket_refusal(bucket_name)
        if refused:
            rejected.append({"bucket": bucket_name, "outcome": "rejected", "reason": refused})
            log.info(to_json({"requestId": getattr(context, "request_id", ""), **rejected[-1]}))
            continue
        gateway = SweepGateway(open_bucket(auth, endpoint, bucket_name, request.workers), limiter=limiter)
        state = (
            SweepGateway(open_bucket(auth, endpoint, state_bucket), limiter=limiter)
            if state_bucket
            else gateway
        )
        if request.shards > 1 and request.shard is None and not request.dry_run:

            def open_other(name: str) -> SweepGateway:  # an inventory's bucket
                return SweepGateway(open_bucket(auth, endpoint, name, READ_WORKERS), limiter=limiter)

            try:
                dispatched.append(
                    _fan_out(timer, bucket_name, gateway, state, open_other, settings, context, credentials)
                )
            except (OssFailure, OutOfTime, InventoryError) as error:  # this bucket only: others still go
                dispatched.append({"bucket": bucket_name, "error": str(error)})
                log.error(to_json({"requestId": getattr(context, "request_id", ""), **dispatched[-1]}))
            continue
        shard = request.shard
        scope = Scope(
            bucket_name, request.prefix, shard.start_at if shard else "", shard.end_before if shard else None
        )
        report = run_sweep(
            gateway,
            rules,
            StateStore(
                state,
                settings.state_prefix,
                scope,
                secrets=settings.record_secrets,
                legacy=gateway if state is not gateway else None,
            ),
            timer.trigger_time,
            limits=limits,
            deadline=deadline,
            dry_run=request.dry_run,
            full=request.full,
            owner=getattr(context, "request_id", ""),
            rules_in_force=in_force,
            on_rules_change=settings.reconcile_on_rules_change,
        )
        reports.append(report)
        log.info(to_json({"requestId": getattr(context, "request_id", ""), **_log_line(report)}))
    return to_json(
        {
            "triggerName": timer.trigger_name,
            "rulesFingerprint": rules.fingerprint,
            "sweeps": [r.summary() for r in reports],
            "dispatched": dispatched,
            "rejected": rejected,
        }
    )


def _log_line(report: SweepReport) -> dict[str, Any]:
    line = report.summary()
    line.pop("objects")
    return line


def _fan_out(
    timer: TimerEvent,
    bucket: str,
    gateway: SweepGateway,
    state: SweepGateway,
    open_other: Callable[[str], SweepGateway],
    settings: Settings,
    context: Any,
    credentials: Any,
) -> dict[str, Any]:
    request: SweepRequest = timer.request
    plan_key = f"{settings.state_prefix}sweep/{Scope(bucket, request.prefix).id}/shards.json"

    def boundaries() -> list[str]:
        if request.inventory is None:
            return listing_boundaries(gateway, request.prefix, settings.state_prefix)
        return inventory_boundaries(
            request.inventory, bucket, request.prefix, settings.state_prefix, open_other, settings.buckets
        )

    warnings: list[str] = []
    shards = load_or_plan_shards(request, plan_key, state, boundaries, settings.record_secrets, warnings)
    events = shard_events(timer, bucket, shards)
    results = _dispatcher(context, credentials).dispatch(events)
    return {
        "bucket": bucket,
        "shards": [s.as_payload() for s in shards],
        "warnings": warnings,
        "invocations": [json.loads(r) if isinstance(r, str) else r for r in results],
    }


def _dispatcher(context: Any, credentials: Any) -> Dispatcher:
    """AUTOTAG_FANOUT=in-process runs shards on local threads; otherwise asynchronous FC invocations."""
    if os.environ.get("AUTOTAG_FANOUT") == "in-process":
        return InProcessDispatcher(lambda shard_event: handler(shard_event, context))
    region = getattr(context, "region", "")
    endpoint = os.environ.get("AUTOTAG_FC_ENDPOINT") or (
        f"https://{getattr(context, 'account_id', '')}.{region}-internal.fc.aliyuncs.com"
    )
    return FunctionComputeDispatcher(endpoint, credentials, _service_name(context), context.function.name)


def _service_name(context: Any) -> str:
    """The service the shards are invoked in: AUTOTAG_FC_SERVICE, else the context's (FC 2.0 runtimes name
    it there; the python3.12 runtime's context has no `service`)."""
    name = os.environ.get("AUTOTAG_FC_SERVICE") or getattr(getattr(context, "service", None), "name", "")
    if not name:
        raise ConfigurationError(
            "AUTOTAG_FC_SERVICE is not set and the context names no service (the python3.12 runtime's "
            "does not): set it to the service of this function, or AUTOTAG_FANOUT=in-process"
        )
    return str(name)
