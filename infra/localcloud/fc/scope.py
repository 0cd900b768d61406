"""Which buckets a template's triggers deliver events of, checked against each function's AUTOTAG_BUCKETS
(pure): a function acts only on the buckets listed there and rejects events for any other, so a trigger,
event pattern or timer payload naming a bucket its function leaves out would deliver nothing but
rejections. The check refuses such a template when it loads (`autotag local up`, the tests, `autotag
deploy`), naming the place, and refuses an OSS event pattern that would pass every bucket's events, or
events that create no object."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from .eventbridge import DEFAULT, QueueRoute, pattern_buckets
from .specs import FunctionSpec, TriggerSpec
from .template_errors import TemplateError

BUCKETS_VARIABLE = "AUTOTAG_BUCKETS"
# OSS event types after which an object exists to tag (as the function's events.creates_object says)
_NOT_YET_AN_OBJECT = ("InitiateMultipartUpload", "UploadPart", "UploadPartCopy")
_REPLICATED = ("oss:ObjectReplication:ObjectCreated", "oss:ObjectReplication:ObjectModified")


def configured_buckets(spec: FunctionSpec) -> set[str]:
    """The buckets a function's AUTOTAG_BUCKETS lists (comma- or space-separated)."""
    return {name for name in re.split(r"[\s,]+", spec.environment.get(BUCKETS_VARIABLE, "")) if name}


def creates_an_object(event_type: str) -> bool:
    family, _, operation = event_type.removeprefix("oss:").partition(":")
    return event_type in _REPLICATED or (family == "ObjectCreated" and operation not in _NOT_YET_AN_OBJECT)


def check_scope(functions: Mapping[str, FunctionSpec], routes: tuple[QueueRoute, ...]) -> None:
    """Raise TemplateError at the first bucket a function's triggers name that its AUTOTAG_BUCKETS leaves
    out, or at an OSS event pattern that names no bucket or an event that creates no object."""
    for spec in functions.values():
        configured = configured_buckets(spec)
        listed = ", ".join(repr(name) for name in sorted(configured)) or "unset"
        for where, bucket, reader in _named_buckets(spec, routes):
            if bucket in configured:
                continue
            whose = (
                f"the AUTOTAG_BUCKETS of {spec.name}, whose trigger {reader} reads the queue"
                if reader
                else "the function's AUTOTAG_BUCKETS"
            )
            raise TemplateError(
                f"{where}: {bucket!r} is not in {whose} ({listed}): its events would be rejected; "
                f"list it in {BUCKETS_VARIABLE}"
            )


def _named_buckets(spec: FunctionSpec, routes: tuple[QueueRoute, ...]) -> Iterator[tuple[str, str, str]]:
    """(where, bucket, the reading trigger when the place is a queue rule) for every bucket the function's
    triggers take events of, disabled ones included (enabling them later must work)."""
    events = f"Resources.{spec.service}.{spec.name}.Events"
    for trigger in spec.triggers:
        at = f"{events}.{trigger.name}.Properties"
        if trigger.type == "OSS":
            yield f"{at}.BucketName", trigger.bucket, ""
        elif trigger.type == "Timer":
            for bucket in _payload_buckets(trigger):
                yield f"{at}.Payload", bucket, ""
        elif trigger.type == "EventBridge":
            config = trigger.eventbridge
            if config.source_type == DEFAULT:
                for bucket in _oss_pattern_buckets(config.pattern, f"{at}.EventRuleFilterPattern"):
                    yield f"{at}.EventRuleFilterPattern", bucket, ""
                continue
            _check_queue_subject(config.pattern, config.queue, f"{at}.EventRuleFilterPattern")
            for route in (r for r in routes if r.queue == config.queue):
                place = f"Resources.{route.name}.Properties.FilterPattern"
                for bucket in _oss_pattern_buckets(route.pattern, place):
                    yield place, bucket, trigger.name


def _payload_buckets(trigger: TriggerSpec) -> list[str]:
    try:
        payload = json.loads(trigger.payload) if trigger.payload else {}
    except ValueError:
        return []  # the sweep itself says what is wrong with its payload
    buckets = payload.get("buckets") if isinstance(payload, dict) else None
    return [b for b in buckets if isinstance(b, str)] if isinstance(buckets, list) else []


def _oss_pattern_buckets(pattern: Mapping[str, Any], where: str) -> set[str]:
    """The buckets an OSS event pattern names; refuses one that would pass other buckets' events or events
    that create no object."""
    types = pattern.get("type")
    for event_type in types if isinstance(types, list) else []:
        if isinstance(event_type, str) and not creates_an_object(event_type):
            raise TemplateError(
                f"{where}.type: {event_type!r} creates no object: the function would only ignore its events"
            )
    named = pattern_buckets(pattern)
    if not named:
        raise TemplateError(
            f"{where}: names no bucket (a subject prefix acs:oss:<region>:<account-id>:<bucket>/): it would "
            "pass every bucket's events, which the function rejects"
        )
    return named


def _check_queue_subject(pattern: Mapping[str, Any], queue: str, where: str) -> None:
    """A queue trigger's `subject` conditions (the queue's ARN on EventBridge's MNS events) name its own
    queue: another's would match none of the messages it reads."""
    conditions = pattern.get("subject")
    for condition in conditions if isinstance(conditions, list) else []:
        if isinstance(condition, str) and not condition.endswith(f":queues/{queue}"):
            raise TemplateError(
                f"{where}.subject: {condition!r} names another queue than its own, {queue}: no message of "
                "it would match"
            )
