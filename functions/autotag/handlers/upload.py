"""Tag on upload: the handler an OSS trigger invokes for created objects.

`handler(event: bytes, context)` returns a JSON summary per record (what the console shows after a test
invoke) and logs one JSON line per object. Each record ends in an outcome of its own: a permanent refusal
(a missing bucket, a key OSS cannot name) is reported as `rejected` and not retried. Transient OSS failures
are retried in the gateway; what still fails (or a refused credential) makes the handler raise once every
record was tried, so FC's asynchronous retries and the on-failure destination take over: nothing is dropped
silently. No error text carries more of an OSS error than its operation, status, code, request id and
message."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from ..events import parse_oss_event
from ..gateway import OssGateway, TransientOssError
from ..output import to_json
from ..settings import Settings, credentials_from
from ..tagger import FAILED, ObjectResult, tag_object
from .clients import open_bucket, oss_auth
from .rules_source import current_rules

log = logging.getLogger("autotag.upload")


class RetryableFailure(RuntimeError):
    """Some objects could not be tagged because OSS kept failing; FC should retry the event."""


def initialize(context: Any) -> None:
    """FC initializer: compile the rules before the first event, so a bad rules file fails fast."""
    current_rules(Settings.from_environment(), context)


def handler(event: bytes, context: Any) -> str:
    settings = Settings.from_environment()
    records = parse_oss_event(event)
    rules = current_rules(settings, context)
    auth = oss_auth(credentials_from(context))
    gateways: dict[str, OssGateway] = {}
    results: list[ObjectResult] = []
    for record in records:
        region = getattr(context, "region", None) or record.region
        gateway = gateways.get(record.bucket)
        if gateway is None:
            gateway = gateways[record.bucket] = OssGateway(
                open_bucket(auth, settings.endpoint_for(region), record.bucket)
            )
        try:
            result = tag_object(
                record, rules, gateway, clock=datetime.now(timezone.utc), ignored_prefix=settings.state_prefix
            )
        except TransientOssError as error:
            result = ObjectResult(record, FAILED, str(error))
        results.append(result)
        log.info(to_json({"requestId": getattr(context, "request_id", ""), **result.summary()}))
    failed = [r for r in results if r.outcome == FAILED]
    if failed:
        raise RetryableFailure(
            f"{len(failed)} of {len(results)} objects failed on transient OSS errors: "
            + "; ".join(f"{r.event.key!r}: {r.reason}" for r in failed)
        )
    return to_json({"rulesFingerprint": rules.fingerprint, "results": [r.summary() for r in results]})
