"""Backfill inside Function Compute: the handler of the backfill function.

`handler(event: bytes, context)` takes a batch of items from the backfill flow's distributed Map
(map_items.py: one outcome per item), the flow's Report step (completion.py: the completion report), or
one of three events of the job (autotag.backfill.request): **start** a job
(or resume it) — plan its shards and invoke one asynchronous run per shard, returning the job's reference
at once; **shard** — one run of one shard, which invokes the next run of the same shard when it stops
before the function timeout, until the shard is done; **cancel** a job. An event for a bucket outside
`AUTOTAG_BUCKETS` is `rejected` before anything is read. It returns a JSON summary and logs one JSON line.
A run that cannot reach OSS's state raises, so FC retries it (and, after its retries, sends it to the
on-failure destination); nothing else is retried blindly."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from ..backfill.control import BackfillError, Control, cancel, finish_quietly, start
from ..backfill.gateway import BackfillGateway
from ..backfill.request import BackfillRequestError, CancelJob, RunShard, parse_backfill_event
from ..backfill.shard import (
    CONTINUE,
    DONE,
    RETRY,
    STOPPED,
    ShardLimits,
    ShardRunner,
    checkpoint_seconds,
    lease_seconds,
)
from ..bucket_gateway import BucketGateway
from ..events import load_json
from ..gateway import OssFailure, RetryPolicy, TransientOssError
from ..map_batch import is_map_batch
from ..output import to_json
from ..settings import ConfigurationError, Settings, credentials_from
from ..sweep.fanout import FunctionComputeDispatcher
from .budget import function_timeout, work_deadline
from .clients import open_bucket, oss_auth
from .completion import is_report_request, write_report
from .map_items import process_batch
from .rules_source import current_rules

log = logging.getLogger("autotag.backfill")
# A job has time: it rides out throttling longer (up to about 20 s per request) than the upload path does,
# rather than report an object as failed.
JOB_RETRIES = RetryPolicy(attempts=6, base_delay=0.5, max_delay=8.0)


class RetryableFailure(RuntimeError):
    """OSS kept failing on the shard's state: FC should run the shard again."""


def initialize(context: Any) -> None:
    settings = Settings.from_environment()
    settings.require_buckets()
    current_rules(settings, context)


def handler(event: bytes, context: Any) -> str:
    started = time.monotonic()
    document = load_json(event, "the event", BackfillRequestError)
    if is_map_batch(document):  # the backfill flow's processor
        return to_json(process_batch(document, context))
    if is_report_request(document):  # the backfill flow's Report step
        return to_json(write_report(document, context))
    request = parse_backfill_event(event)
    settings = Settings.from_environment()
    refused = settings.bucket_refusal(request.bucket)
    if refused:  # a bucket outside AUTOTAG_BUCKETS: no request is sent to it, nor to its state
        summary = {"bucket": request.bucket, "outcome": "rejected", "reason": refused}
        log.info(to_json({"requestId": getattr(context, "request_id", ""), **summary}))
        return to_json(summary)
    rules = current_rules(settings, context)
    timeout = function_timeout(context)
    deadline = work_deadline(started, timeout)
    credentials = credentials_from(context)
    auth = oss_auth(credentials)
    region = getattr(context, "region", "") or "cn-hangzhou"
    endpoint = settings.endpoint_for(region)
    state_bucket = os.environ.get("AUTOTAG_STATE_BUCKET", "") or request.bucket
    pool = 64 + 8

    def bucket(name: str) -> BucketGateway:
        return BucketGateway(open_bucket(auth, endpoint, name, pool), retry=JOB_RETRIES)

    gateway = bucket(request.bucket)
    state = BackfillGateway(open_bucket(auth, endpoint, state_bucket, pool), retry=JOB_RETRIES)

    def dispatch(events: list[bytes]) -> list[Any]:
        fc_endpoint = os.environ.get("AUTOTAG_FC_ENDPOINT") or (
            f"https://{getattr(context, 'account_id', '')}.{region}-internal.fc.aliyuncs.com"
        )
        dispatcher = FunctionComputeDispatcher(
            fc_endpoint, credentials, _service_name(context), context.function.name
        )
        return dispatcher.dispatch(events)

    control = Control(gateway, state, bucket, rules, settings.state_prefix, dispatch, lease_seconds(timeout))
    request_id = getattr(context, "request_id", "")
    if isinstance(request, RunShard):
        summary = _run_shard(request, control, timeout, deadline, request_id, region)
    elif isinstance(request, CancelJob):
        summary = cancel(request, control)
    else:
        summary = start(request, control)
    log.info(to_json({"requestId": request_id, **summary}))
    return to_json(summary)


def _service_name(context: Any) -> str:
    """The service the shards are invoked in: AUTOTAG_BACKFILL_SERVICE, else the context's (FC 2.0 runtimes
    name it there; the python3.12 runtime's context has no `service`). A name of its own, not the expiry
    sweep's AUTOTAG_FC_SERVICE: the two functions live in different services."""
    service = getattr(context, "service", None)
    name = os.environ.get("AUTOTAG_BACKFILL_SERVICE") or getattr(service, "name", "")
    if not name:
        raise ConfigurationError(
            "AUTOTAG_BACKFILL_SERVICE is not set and the context names no service (the python3.12 runtime's "
            "does not): set it to the service of the backfill function"
        )
    return str(name)


def _run_shard(
    request: RunShard, control: Control, timeout: float, deadline: float | None, owner: str, region: str
) -> dict[str, Any]:
    try:
        job = control.read_job(request.job)
    except TransientOssError as error:
        raise RetryableFailure(f"shard {request.shard} of {request.job}: {error}") from None
    if job is None:
        return {"job": request.job, "shard": request.shard, "outcome": STOPPED, "reason": "no such job"}
    if job.run != request.run:
        return {
            "job": job.reference,
            "shard": request.shard,
            "outcome": STOPPED,
            "reason": f"the job was restarted (run {job.run})",
        }
    plan = control.read_plan(job)
    if request.shard >= len(plan.shards):
        return {"job": job.reference, "shard": request.shard, "outcome": STOPPED, "reason": "no such shard"}
    if job.status != "running":
        report = finish_quietly(job, control)
        return {
            "job": job.reference,
            "shard": request.shard,
            "outcome": STOPPED,
            "reason": f"the job is {job.status}",
            "report": report["reference"] if report else None,
        }
    data = control.open_bucket(plan.data_bucket) if plan.data_bucket else None
    runner = ShardRunner(
        job=job,
        plan=plan,
        shard=request.shard,
        rules=control.rules,
        gateway=control.gateway,
        state=control.state,
        data=data,
        state_prefix=control.state_prefix,
        region=region,
        owner=owner,
        limits=ShardLimits(
            workers=job.workers,
            qps=job.shard_qps(len(plan.shards)),
            checkpoint_seconds=checkpoint_seconds(timeout),
            lease_seconds=control.lease_seconds,
        ),
        deadline=deadline,
    )
    result = runner.run()
    summary: dict[str, Any] = {"reference": job.reference, **result.summary()}
    if result.outcome == RETRY:
        raise RetryableFailure(f"shard {request.shard} of {job.reference}: {result.reason}")
    if result.outcome == CONTINUE:
        control.dispatch([request.as_event()])
        summary["next"] = "invoked"
    if result.outcome in (DONE, STOPPED):
        report = finish_quietly(job, control)
        summary["report"] = report["reference"] if report else None
    return summary


__all__ = ["BackfillError", "OssFailure", "handler", "initialize"]
