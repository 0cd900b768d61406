"""The event an OSS trigger delivers to Function Compute, exactly as OSS writes it: one record per
operation, under `{"events": [...]}`. The local OSS sends these; `autotag event oss` makes them for objects
that already exist."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ObjectEvent:
    """An operation on an object, as OSS reports it: `event_record` makes the record of its event."""

    event_name: str  # e.g. ObjectCreated:PutObject
    bucket: str
    key: str
    size: int
    delta_size: int
    etag: str
    request_id: str
    source_ip: str
    version_id: str | None = None
    position: int | None = None  # AppendObject: where this append started
    mime_type: str | None = None
    user_meta: dict[str, str] | None = None
    event_time: float = field(default_factory=time.time)


def event_record(event: ObjectEvent, *, region: str, owner_id: str, rule_id: str) -> dict[str, Any]:
    """The record OSS puts in the `events` of an OSS trigger's event; `rule_id` names the notification
    rule (the trigger) that matched."""
    millis = int(event.event_time * 1000) % 1000
    obj: dict[str, Any] = {
        "deltaSize": event.delta_size,
        "eTag": event.etag,
        "key": event.key,
        "size": event.size,
    }
    if event.version_id is not None:
        obj["versionId"] = event.version_id
    if event.position is not None:
        obj["position"] = event.position
    if event.mime_type is not None:
        obj["objectMeta"] = {"mimeType": event.mime_type, "userMeta": event.user_meta or {}}
    return {
        "eventName": event.event_name,
        "eventSource": "acs:oss",
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(event.event_time)) + f".{millis:03d}Z",
        "eventVersion": "1.0",
        "oss": {
            "bucket": {
                "arn": f"acs:oss:{region}:{owner_id}:{event.bucket}",
                "name": event.bucket,
                "ownerIdentity": owner_id,
                "virtualBucket": "",
            },
            "object": obj,
            "ossSchemaVersion": "1.0",
            "ruleId": rule_id,
        },
        "region": region,
        "requestParameters": {"sourceIPAddress": event.source_ip},
        "responseElements": {"requestId": event.request_id},
        "userIdentity": {"principalId": owner_id},
    }
