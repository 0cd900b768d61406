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
silently. No error text carries more of an OSS error than its operation, status, code, request id and
message."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..events import ObjectEvent, parse_delivery
from ..gateway import OssGateway, TransientOssError
from ..output import to_json
from ..settings import Settings, credentials_from
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
    if failed:  # FC redelivers the whole event; what was done already comes out unchanged
        raise RetryableFailure(
            f"{len(failed)} of {len(results)} object{'' if len(results) == 1 else 's'} failed "
            f"({'; '.join(sorted(set(whys)))}): " + "; ".join(f"{r.event.key!r}: {r.reason}" for r in failed)
        )
    return to_json(
        {
            "rulesFingerprint": rules.fingerprint,
            "delivery": delivery.shape,
            "results": [r.summary() for r in results],
            "refused": [
                {"element": r.element, "outcome": "rejected", "reason": r.reason} for r in delivery.refused
            ],
        }
    )
