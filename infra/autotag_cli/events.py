"""`autotag event ...`: print the events FC delivers, as the console's test-event templates shape them."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import click
import oss2

from autotag.timestamps import parse_timestamp
from localcloud.oss.events import ObjectEvent, event_record

from .options import bucket_for, credential_options

OWNER_ID = "1234567890123456"


def oss_event_document(
    bucket: str,
    key: str,
    *,
    event_name: str = "ObjectCreated:PutObject",
    region: str = "cn-hangzhou",
    size: int = 0,
    etag: str = "",
    version_id: str | None = None,
    event_time: datetime | None = None,
) -> dict[str, object]:
    """An OSS trigger event for one object, field for field as OSS sends it."""
    event = ObjectEvent(
        event_name=event_name.removeprefix("oss:"),
        bucket=bucket,
        key=key,
        size=size,
        delta_size=size,
        etag=etag,
        request_id=uuid.uuid4().hex[:24].upper(),
        source_ip="127.0.0.1",
        version_id=version_id,
        event_time=(event_time or datetime.now(timezone.utc)).timestamp(),
    )
    return {"events": [event_record(event, region=region, owner_id=OWNER_ID, rule_id="autotag-event")]}


@click.group()
def event() -> None:
    """Print a trigger event (for `autotag invoke`, or the FC console's test event)."""


@event.command("oss")
@click.option("--bucket", required=True)
@click.option("--key", required=True)
@click.option("--event-name", default="ObjectCreated:PutObject", show_default=True)
@click.option("--region", default="cn-hangzhou", show_default=True)
@click.option("--size", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--etag", default="")
@click.option("--version-id")
@click.option(
    "--from-oss",
    "endpoint",
    envvar="AUTOTAG_OSS_ENDPOINT",
    help="Read size, ETag and version from the object at this endpoint [env AUTOTAG_OSS_ENDPOINT].",
)
@credential_options(required=False)
def oss_event(
    bucket: str,
    key: str,
    event_name: str,
    region: str,
    size: int,
    etag: str,
    version_id: str | None,
    endpoint: str | None,
    access_key_id: str,
    access_key_secret: str,
    security_token: str,
) -> None:
    """An OSS trigger event for one object."""
    if not event_name.removeprefix("oss:").startswith(
        ("ObjectCreated:", "ObjectRemoved:", "ObjectModified:")
    ):
        raise click.BadParameter(f"{event_name!r} is not an OSS event name such as ObjectCreated:PutObject")
    if endpoint and access_key_id:
        try:
            head = bucket_for(endpoint, bucket, access_key_id, access_key_secret, security_token).head_object(
                key
            )
        except oss2.exceptions.OssError as error:
            raise click.ClickException(
                f"cannot read oss://{bucket}/{key}: {error.code or error.status}"
            ) from error
        size, etag, version_id = head.content_length or 0, head.etag or "", head.versionid or version_id
    document = oss_event_document(
        bucket, key, event_name=event_name, region=region, size=size, etag=etag, version_id=version_id
    )
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


@event.command("timer")
@click.option("--trigger-time", help="ISO-8601 UTC time; default now.")
@click.option("--trigger-name", default="nightly-expiry", show_default=True)
@click.option("--payload", default='{"buckets": ["autotag-demo"]}', show_default=True)
def timer_event_command(trigger_time: str | None, trigger_name: str, payload: str) -> None:
    """A timer trigger event."""
    moment = parse_timestamp(trigger_time) if trigger_time else datetime.now(timezone.utc)
    if moment is None:
        raise click.BadParameter(f"{trigger_time!r} is not an ISO-8601 time", param_hint="--trigger-time")
    document = {
        "triggerTime": moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "triggerName": trigger_name,
        "payload": payload,
    }
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))
