"""The CloudEvents EventBridge hands a function for OSS events (pure): one OSS event record as the default
bus carries it (`cloud_event`), and a queue message's CloudEvent as an event-streaming trigger hands it
over (`queue_event`); the local EventBridge delivers them and `autotag event` and the console write them.
localcloud/fc/eventbridge.py describes both ways, with their sources."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any


def _iso(timestamp: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + f".{int(timestamp * 1000) % 1000:03d}Z"
    )


def cloud_event(record: Mapping[str, Any], account_id: str, now: float | None = None) -> dict[str, Any]:
    """An OSS event record as EventBridge carries it on the default bus."""
    data = dict(record)
    data["oss"] = {k: v for k, v in record["oss"].items() if k != "ruleId"}  # a notification rule's
    bucket, key, region = record["oss"]["bucket"]["name"], record["oss"]["object"]["key"], record["region"]
    moment = now if now is not None else time.time()
    return {
        "id": (record.get("responseElements") or {}).get("requestId") or uuid.uuid4().hex.upper(),
        "source": "acs.oss",
        "specversion": "1.0",
        "type": f"oss:{record['eventName']}",
        "subject": f"acs:oss:{region}:{account_id}:{bucket}/{key}",
        "time": record.get("eventTime") or _iso(moment),
        "datacontenttype": "application/json;charset=utf-8",
        "aliyunaccountid": account_id,
        "aliyunoriginalaccountid": account_id,
        "aliyunpublishtime": _iso(moment),
        "aliyuneventbusname": "default",
        "aliyunregionid": region,
        "data": data,
    }


def queue_event(body: str, queue: str, account_id: str, region: str) -> dict[str, Any]:
    """A CloudEvent of a queue (MNS) source whose message body is `body`, as an event-streaming trigger
    hands it over."""
    message_id = uuid.uuid4().hex.upper()
    return {
        "id": message_id,
        "source": f"MNS-{queue}",
        "specversion": "1.0",
        "type": "mns:Queue:SendMessage",
        "subject": f"acs:mns:{region}:{account_id}:queues/{queue}",
        "time": _iso(time.time()),
        "datacontenttype": "application/json;charset=utf-8",
        "aliyunaccountid": account_id,
        "aliyunregionid": region,
        "aliyuneventbusname": f"MNS-{queue}",
        "data": {
            "requestId": uuid.uuid4().hex.upper(),
            "messageId": message_id,
            "messageBody": body,
        },
    }
