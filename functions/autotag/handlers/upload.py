"""Tag on upload: the handler an OSS trigger invokes for created objects.

`handler(event: bytes, context)` takes an OSS trigger's event or an EventBridge delivery (one CloudEvent,
or a batch of them; events.py), tags each object (a batch's objects at once, `AUTOTAG_BATCH_WORKERS` of
them, sharing one connection pool), returns a JSON summary per record (what the console shows after a
test invoke) and logs one JSON line per object. A batch element that is no usable OSS event is reported
as `rejected` on its own. Each record ends in an outcome of its own: a record for a bucket outside
`AUTOTAG_BUCKETS` (sent no request), or a permanent refusal (a missing bucket, a key OSS cannot name), is
reported as `rejected` and not retried. Transient OSS failures
are retried in the gateway; what still fails (or a refused credential) makes the handler raise once every
record was tried, so FC's asynchronous retries and the on-failure destination take over: nothing is dropped
silently. In a batch of several elements the failing ones are instead re-driven, each alone, as
asynchronous invocations of this function (redrive.py), and the batch is done. No error text carries more
of an OSS error than its operation, status, code, request id and message."""

from __future__ import annotations

import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..events import Delivery, ObjectEvent, parse_delivery
from ..gateway import OssGateway, TransientOssError
from ..output import to_json
from ..redrive import RedriveError, Redriver, alone
from ..settings import ConfigurationError, Settings, credentials_from
from ..tagger import FAILED, REJECTED, ObjectResult, tag_object
from .clients import open_bucket, oss_auth
from .rules_source import current_rules

log = logging.getLogger("autotag.upload")


class RetryableFailure(RuntimeError):
    """Some objects could not be tagged because OSS kept failing, or refused the function's role or
    credentials; FC retries the event, then dead-letters it for a replay once the cause is fixed."""


def initialize(context: Any) -> None:
    """FC initializer: compile the rules before the first event, so a bad rules file (or no configured
    bucket) fails fast."""
    settings = Settings.from_environment()
    settings.require_buckets()
    current_rules(settings, context)


def handler(event: bytes, context: Any) -> str:
    settings = Settings.from_environment()
    settings.require_buckets()
    delivery = parse_delivery(event)
    rules = current_rules(settings, context)
    auth = oss_auth(credentials_from(context))
    records = delivery.events
    workers = min(settings.batch_workers, len(records)) or 1
    buckets: dict[str, Any] = {}
    buckets_lock = threading.Lock()

    def gateway_for(record: ObjectEvent) -> OssGateway:
        """A gateway of its own per object (so its request count is the object's), over one client per
        bucket whose connection pool, sized for the workers, they share."""
        with buckets_lock:
            if record.bucket not in buckets:
                region = getattr(context, "region", None) or record.region
                endpoint = settings.endpoint_for(region)
                buckets[record.bucket] = open_bucket(auth, endpoint, record.bucket, workers)
            return OssGateway(buckets[record.bucket])

    whys: list[str] = []  # what went wrong with each failed object, in a few words

    def attempt(record: ObjectEvent) -> ObjectResult:
        gateway = gateway_for(record)
        try:
            # TTLs are judged by OSS's clock (the Date of the HEAD it reads), as the sweep judges them
            return tag_object(record, rules, gateway, ignored_prefix=settings.state_prefix)
        except TransientOssError as error:
            whys.append(error.why())
            return ObjectResult(record, FAILED, str(error), requests=gateway.requests)

    def one(record: ObjectEvent) -> ObjectResult:
        refused = settings.bucket_refusal(record.bucket)  # such a bucket is sent no request at all
        result = ObjectResult(record, REJECTED, refused) if refused else attempt(record)
        log.info(to_json({"requestId": getattr(context, "request_id", ""), **result.summary()}))
        return result

    if workers > 1:  # a batch: its objects at once, within the instance
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tag") as pool:
            results = list(pool.map(one, records))
    else:
        results = [one(record) for record in records]
    for refused in delivery.refused:
        log.info(
            to_json(
                {
                    "requestId": getattr(context, "request_id", ""),
                    "element": refused.element,
                    "outcome": "rejected",
                    "reason": refused.reason,
                }
            )
        )
    failed = [r for r in results if r.outcome == FAILED]
    redriven: list[dict[str, Any]] = []
    if failed:
        try:
            redriven = _redrive(event, delivery, failed, context)
        except (RedriveError, ConfigurationError) as error:
            whys.append(f"its elements could not be re-driven alone: {error}")
    if failed and not redriven:  # FC redelivers the whole event; what was done already comes out unchanged
        raise RetryableFailure(
            f"{len(failed)} of {len(results)} object{'' if len(results) == 1 else 's'} failed "
            f"({'; '.join(sorted(set(whys)))}): " + "; ".join(f"{r.event.key!r}: {r.reason}" for r in failed)
        )
    summary: dict[str, Any] = {
        "rulesFingerprint": rules.fingerprint,
        "delivery": delivery.shape,
        "results": [r.summary() for r in results],
        "refused": [
            {"element": r.element, "outcome": "rejected", "reason": r.reason} for r in delivery.refused
        ],
    }
    if redriven:
        summary["redriven"] = redriven
    return to_json(summary)


def _redrive(
    event: bytes, delivery: Delivery, failed: list[ObjectResult], context: Any
) -> list[dict[str, Any]]:
    """The failing elements of a batch of several, each sent to an asynchronous invocation of its own
    (redrive.py); nothing for any other delivery, whose failure is the invocation's."""
    elements = sorted({r.event.element for r in failed if r.event.element is not None})
    if delivery.shape != "eventbridge-batch" or not elements:
        return []
    document = json.loads(event)
    if len(document) < 2:  # a batch of one is already alone: FC's retries, then its destination
        return []
    redriver = Redriver(context, credentials_from(context))
    return [{"element": n, "requestId": redriver.send(alone(document, n))} for n in elements]
