"""`autotag event ...`: print the events FC delivers, as the console's test-event templates shape them."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path

import click

from autotag.output import to_json
from autotag.sweep.clock import absurd
from autotag.sweep.request import SweepRequestError, parse_sweep_payload
from autotag.timestamps import parse_timestamp
from localcloud.oss.events import ObjectEvent, event_record

from .errors import doing
from .target import Target, require_reachable, target_options

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
    """Print a trigger event (for `autotag invoke -e`, or the FC console's test event)."""


def _output_option(command: object) -> object:
    return click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Write the event to this file (only when it could be made) instead of standard output.",
    )(command)


def _emit(document: dict[str, object], output: Path | None) -> None:
    text = to_json(document, indent=2)
    if output is None:
        click.echo(text)
        return
    output.write_text(text + "\n", encoding="utf-8")
    click.echo(f"wrote {output}", err=True)


@event.command("oss")
@click.option("--bucket", required=True, help="The bucket of the object.")
@click.option("--key", required=True, help="The object key, raw (as OSS stores it).")
@click.option(
    "--event-name",
    default="ObjectCreated:PutObject",
    show_default=True,
    help="OSS event name, with or without the oss: prefix.",
)
@click.option(
    "--size", type=click.IntRange(min=0), default=0, show_default=True, help="Object size in bytes."
)
@click.option("--etag", default="", help="Object ETag. Default: none.")
@click.option("--version-id", help="Version ID, for a versioned bucket. Default: none.")
@click.option(
    "--from-oss",
    is_flag=True,
    help="Read size, ETag and version from the object at --oss-endpoint (it must exist). Default: the flags.",
)
@_output_option
@target_options(oss=True)
def oss_event(
    bucket: str,
    key: str,
    event_name: str,
    size: int,
    etag: str,
    version_id: str | None,
    from_oss: bool,
    output: Path | None,
    target: Target,
) -> None:
    """An OSS trigger event for one object, as the FC console's OSS test event shapes it.

    \b
    Examples:
      autotag event oss --bucket autotag-demo --key a.jpg -o event.json
      autotag event oss --bucket autotag-demo --key a.jpg --from-oss     # size and ETag from OSS
    """
    if not event_name.removeprefix("oss:").startswith(
        ("ObjectCreated:", "ObjectRemoved:", "ObjectModified:")
    ):
        raise click.BadParameter(
            f"{event_name!r} is not an OSS event name such as ObjectCreated:PutObject",
            param_hint="--event-name",
        )
    if from_oss:
        doing(f"reading oss://{bucket}/{key} at {target.oss_endpoint}")
        require_reachable(target.oss_endpoint, "OSS")
        head = target.bucket(bucket).head_object(key)
        size, etag, version_id = head.content_length or 0, head.etag or "", head.versionid or version_id
    document = oss_event_document(
        bucket, key, event_name=event_name, region=target.region, size=size, etag=etag, version_id=version_id
    )
    _emit(document, output)


@event.command("timer")
@click.option("--trigger-time", help="When the timer fired (ISO-8601, UTC): the sweep's clock. Default: now.")
@click.option("--trigger-name", default="nightly-expiry", show_default=True, help="The trigger's name.")
@click.option(
    "--payload",
    default='{"buckets": ["autotag-demo"]}',
    show_default=True,
    help="The trigger's payload: the sweep's JSON request.",
)
@_output_option
def timer_event_command(
    trigger_time: str | None, trigger_name: str, payload: str, output: Path | None
) -> None:
    """A timer trigger event, as FC delivers it.

    \b
    Example:
      autotag event timer --payload '{"buckets": ["autotag-demo"], "dryRun": true}' -o timer.json
    """
    moment = parse_timestamp(trigger_time) if trigger_time else datetime.now(timezone.utc)
    if moment is None:
        raise click.BadParameter(
            f"{trigger_time!r} is not an ISO-8601 time such as 2026-12-01T03:00:00Z",
            param_hint="--trigger-time",
        )
    # isoformat, not strftime("%Y"), which writes the year 999 as `999`, a time no ISO-8601 reader takes
    written = moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    if absurd(moment):
        raise click.BadParameter(
            f"{written} {absurd(moment)}: no timer fires then", param_hint="--trigger-time"
        )
    try:
        parse_sweep_payload(payload)
    except SweepRequestError as error:
        raise click.BadParameter(str(error), param_hint="--payload") from None
    _emit({"triggerTime": written, "triggerName": trigger_name, "payload": payload}, output)
