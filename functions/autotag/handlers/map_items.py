"""Backfill's processor of one batch of items, as CloudFlow's distributed Map and the laptop run it.

`tag_batch(items, rules, gateway_for, ...)` is the core both run: `process_batch(document, context)` with
the batch the Map's processor Task passes the backfill function (map_batch.py), `autotag backfill` on a
laptop in-process with the operator's own OSS client. It tags each object a batch names with the upload
path's own `tag_object`: one HEAD for the object's facts (never the item's: an object overwritten since a
listing or inventory was written is tagged as it is now), then one PutObjectTagging when its tags change,
and nothing else per object. It returns `{"Results": [one outcome per item, in order], "Counts": {...}}`:
`tagged`, `unchanged`, `skipped`, `failed` (OSS kept failing, after the bulk retries) or `rejected` (a
bucket the run may not touch, sent no request; a key OSS refuses for good), each with its reason. A failed
item does not fail the batch: the engine's state (or the laptop's report) holds the outcome, and the
report lists it for a second pass.

A Map batch runs with the function's configured rules, or with the execution's own (`BatchInput.Rules`,
an oss:// location, and `RulesETag`, the version the execution pinned): a batch that finds another version
there raises, naming both, so the whole batch fails and the report lists its objects as failed."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..events import ObjectEvent
from ..facts import ObjectFacts
from ..gateway import OssGateway, RetryPolicy, TransientOssError
from ..map_batch import BatchItem, batch_rules, parse_map_batch
from ..output import to_json
from ..rules import RuleSet
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


def tag_batch(
    items: Sequence[BatchItem],
    rules: RuleSet,
    gateway_for: Callable[[str], OssGateway],
    *,
    region: str,
    refusal: Callable[[str], str],
    workers: int = 1,
    ignored_prefix: str = "",
    reaches: Callable[[ObjectFacts], bool] | None = None,
) -> dict[str, Any]:
    """Tag the objects a batch's items name, on up to `workers` threads: {"Results": [...], "Counts": ...}.
    `gateway_for(bucket)` gives a gateway of its own to each object (its request count is the object's);
    `refusal(bucket)` says why a bucket may not be touched ("" when it may), and such an item is sent no
    request. `reaches` is a reconcile's check on an object's facts (tagger.tag_object). The processor of the
    backfill flow and `autotag backfill` / `autotag reconcile` on a laptop all run this."""

    def one(item: BatchItem) -> dict[str, Any]:
        if item.error:
            return _outcome(item, FAILED, item.error)
        refused = refusal(item.bucket)
        if refused:  # such a bucket is sent no request at all
            return _outcome(item, REJECTED, refused)
        gateway = gateway_for(item.bucket)
        try:
            result = tag_object(
                _event(item, region), rules, gateway, ignored_prefix=ignored_prefix, reaches=reaches
            )
        except TransientOssError as error:
            result = ObjectResult(_event(item, region), FAILED, str(error), requests=gateway.requests)
        outcome = SKIPPED if result.outcome == IGNORED else result.outcome
        return _outcome(item, outcome, result.reason)

    workers = max(1, min(workers, len(items)))
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backfill") as pool:
            results = list(pool.map(one, items))
    else:
        results = [one(item) for item in items]
    counts: dict[str, int] = {}
    for entry in results:
        counts[entry["Outcome"]] = counts.get(entry["Outcome"], 0) + 1
    return {"Results": results, "Counts": counts}


def process_batch(document: Any, context: Any) -> dict[str, Any]:
    """The backfill function's answer to a batch of the flow's distributed Map."""
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
        with clients_lock:  # one client per bucket
            if bucket not in clients:
                clients[bucket] = open_bucket(auth, endpoint, bucket, workers)
            return OssGateway(clients[bucket], retry=BULK_RETRIES)

    answer = tag_batch(
        items,
        rules,
        gateway_for,
        region=region,
        refusal=settings.bucket_refusal,
        workers=workers,
        ignored_prefix=settings.state_prefix,
    )
    log.info(
        to_json({"requestId": getattr(context, "request_id", ""), "items": len(items), **answer["Counts"]})
    )
    return answer
