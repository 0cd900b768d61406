"""Backfill as CloudFlow's distributed Map runs it: the processor of one batch of items.

`process_batch(document, context)` takes the batch the Map's processor Task passes the backfill function
(map_batch.py), and tags each object it names with the upload path's own `tag_object`: one HEAD for the
object's facts (never the item's: an object overwritten since a listing or inventory was written is tagged
as it is now), then one PutObjectTagging when its tags change, and nothing else per object. It returns
`{"Results": [one outcome per item, in order], "Counts": {...}}`: `tagged`, `unchanged`, `skipped`,
`failed` (OSS kept failing, after the job-length retries) or `rejected` (a bucket outside
`AUTOTAG_BUCKETS`, sent no request; a key OSS refuses for good), each with its reason. A failed item does
not fail the batch: the engine's state holds the outcome, and the report lists it for a second pass.

The batch runs with the function's configured rules, or with the execution's own (`BatchInput.Rules`, an
oss:// location, and `RulesETag`, the version the execution pinned): a batch that finds another version
there raises, naming both, so the whole batch fails and the report lists its objects as failed."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..events import ObjectEvent
from ..gateway import OssGateway, RetryPolicy, TransientOssError
from ..map_batch import BatchItem, batch_rules, parse_map_batch
from ..output import to_json
from ..settings import Settings, credentials_from
from ..tagger import FAILED, IGNORED, REJECTED, SKIPPED, ObjectResult, tag_object
from .clients import open_bucket, oss_auth
from .rules_source import current_rules, pinned_rules

log = logging.getLogger("autotag.backfill")
# Bulk work has time: it rides out throttling longer (up to about 20 s per request) than the upload path.
BULK_RETRIES = RetryPolicy(attempts=6, base_delay=0.5, max_delay=8.0)
# A Task's output is at most 64 KiB (docs/cloudflow.md): each reason is cut so that a batch's outcomes fit.
MAX_REASON_CHARS = 240


def _outcome(item: BatchItem, outcome: str, reason: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"Bucket": item.bucket, "Key": item.key, "Outcome": outcome}
    if item.version_id:
        entry["VersionId"] = item.version_id
    if reason:
        entry["Reason"] = reason if len(reason) <= MAX_REASON_CHARS else reason[: MAX_REASON_CHARS - 1] + "…"
    return entry


def _event(item: BatchItem, region: str) -> ObjectEvent:
    """An event naming only the object: no ETag, size or time from the item, so nothing stale is judged."""
    return ObjectEvent(
        event_name="ObjectCreated:PutObject",
        bucket=item.bucket,
        key=item.key,
        region=region,
        version_id=item.version_id,
        request_id="backfill",
    )


def process_batch(document: Any, context: Any) -> dict[str, Any]:
    settings = Settings.from_environment()
    settings.require_buckets()
    items = parse_map_batch(document)
    given = batch_rules(document)
    rules = (
        current_rules(settings, context)
        if given is None
        else pinned_rules(settings, context, given.location, given.etag)
    )
    auth = oss_auth(credentials_from(context))
    region = getattr(context, "region", "") or "cn-hangzhou"
    endpoint = settings.endpoint_for(region)
    workers = max(1, min(settings.batch_workers, len(items)))
    clients: dict[str, Any] = {}
    clients_lock = threading.Lock()

    def gateway_for(bucket: str) -> OssGateway:
        with clients_lock:  # one client per bucket; a gateway per object, so its request count is its own
            if bucket not in clients:
                clients[bucket] = open_bucket(auth, endpoint, bucket, workers)
            return OssGateway(clients[bucket], retry=BULK_RETRIES)

    def one(item: BatchItem) -> dict[str, Any]:
        if item.error:
            return _outcome(item, FAILED, item.error)
        refused = settings.bucket_refusal(item.bucket)
        if refused:  # such a bucket is sent no request at all
            return _outcome(item, REJECTED, refused)
        gateway = gateway_for(item.bucket)
        try:
            result = tag_object(_event(item, region), rules, gateway, ignored_prefix=settings.state_prefix)
        except TransientOssError as error:
            result = ObjectResult(_event(item, region), FAILED, str(error), requests=gateway.requests)
        outcome = SKIPPED if result.outcome == IGNORED else result.outcome
        return _outcome(item, outcome, result.reason)

    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backfill") as pool:
            results = list(pool.map(one, items))
    else:
        results = [one(item) for item in items]
    counts: dict[str, int] = {}
    for entry in results:
        counts[entry["Outcome"]] = counts.get(entry["Outcome"], 0) + 1
    log.info(to_json({"requestId": getattr(context, "request_id", ""), "items": len(results), **counts}))
    return {"Results": results, "Counts": counts}
