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
from cloudformats.oss_events import ObjectEvent, event_record
from localcloud.fc.eventbridge import MAX_COUNT_WINDOW, cloud_event, queue_event

from .errors import BadInput, doing
from .function_host import read_template, template_option
from .names import BUCKET
from .target import Target, require_reachable, target_options
from .trigger import timer_trigger

OWNER_ID = "1234567890123456"
EVENTS_QUEUE = "oss-autotag-events"  # the queue template.yml's batched trigger reads


def eventbridge_delivery(
    records: list[dict[str, object]], *, schema: str, batch: int | None, region: str
) -> object:
    """OSS event records as an EventBridge trigger hands them over: one CloudEvent (event-driven), or
    with `batch` an array of queue messages carrying them (event-streaming, as template.yml's batched
    trigger pushes); `schema` RawData keeps each element's `data` alone."""
    events = [cloud_event(record, OWNER_ID) for record in records]
    if batch is None:
        (event,) = events
        return event if schema == "cloudevents" else event["data"]
    elements = [queue_event(to_json(event), EVENTS_QUEUE, OWNER_ID, region) for event in events]
    return [element if schema == "cloudevents" else element["data"] for element in elements]


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
        help="Write the event to this file (only when it could be made) instead of standard output "
        "(`-`: standard output).",
    )(command)


def _emit(document: object, output: Path | None) -> None:
    text = to_json(document, indent=2)
    if output is None or str(output) == "-":
        click.echo(text)
        return
    output.write_text(text + "\n", encoding="utf-8")
    click.echo(f"wrote {output}", err=True)


@event.command("oss")
@click.option("--bucket", required=True, type=BUCKET, help="The bucket of the objects.")
@click.option(
    "--key",
    "keys",
    required=True,
    multiple=True,
    help="An object key, raw (as OSS stores it); repeat it for a batch (--batch).",
)
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
    help="Read size, ETag and version from each object at --oss-endpoint (it must exist). "
    "Default: the flags.",
)
@click.option(
    "--format",
    "delivery_format",
    type=click.Choice(["oss", "eventbridge"]),
    default="oss",
    show_default=True,
    help="oss: the OSS trigger's event; eventbridge: as an EventBridge trigger delivers it.",
)
@click.option(
    "--schema",
    type=click.Choice(["cloudevents", "rawdata"]),
    default="cloudevents",
    show_default=True,
    help="With --format eventbridge: the trigger's EventSchema (RawData: each event's `data` alone).",
)
@click.option(
    "--batch",
    type=click.IntRange(1, MAX_COUNT_WINDOW),
    metavar="N",
    help="With --format eventbridge: a batch as a trigger with CountBasedWindow N pushes it, one element "
    "per --key (at most N).",
)
@_output_option
@target_options(oss=True)
def oss_event(
    bucket: str,
    keys: tuple[str, ...],
    event_name: str,
    size: int,
    etag: str,
    version_id: str | None,
    from_oss: bool,
    delivery_format: str,
    schema: str,
    batch: int | None,
    output: Path | None,
    target: Target,
) -> None:
    """OSS events for objects, as the FC console's test events shape them: an OSS trigger's, or an
    EventBridge trigger's (one CloudEvent, or a batch).

    \b
    Examples:
      autotag event oss --bucket autotag-demo --key a.jpg -o event.json
      autotag event oss --bucket autotag-demo --key a.jpg --from-oss     # size and ETag from OSS
      autotag event oss --bucket autotag-demo --key a.jpg --format eventbridge
      autotag event oss --bucket autotag-demo --key a.jpg --key b.jpg --format eventbridge --batch 10
    """
    if not event_name.removeprefix("oss:").startswith(
        ("ObjectCreated:", "ObjectRemoved:", "ObjectModified:", "ObjectReplication:")
    ):
        raise click.BadParameter(
            f"{event_name!r} is not an OSS event name such as ObjectCreated:PutObject",
            param_hint="--event-name",
        )
    if delivery_format == "oss" and (batch is not None or schema != "cloudevents"):
        raise click.BadParameter("--batch and --schema go with --format eventbridge", param_hint="--format")
    if len(keys) > (batch or 1):
        raise click.BadParameter(
            f"{len(keys)} keys do not fit one event; give --format eventbridge --batch N, N >= {len(keys)}"
            if batch is None
            else f"{len(keys)} keys do not fit a batch of {batch}",
            param_hint="--key",
        )
    records: list[dict[str, object]] = []
    for key in keys:
        facts = (size, etag, version_id)
        if from_oss:
            doing(f"reading oss://{bucket}/{key} at {target.oss_endpoint}")
            require_reachable(target.oss_endpoint, "OSS")
            head = target.bucket(bucket).head_object(key)
            facts = (head.content_length or 0, head.etag or "", head.versionid or version_id)
        document = oss_event_document(
            bucket,
            key,
            event_name=event_name,
            region=target.region,
            size=facts[0],
            etag=facts[1],
            version_id=facts[2],
        )
        records += document["events"]  # type: ignore[operator]
    if delivery_format == "oss":
        _emit({"events": records}, output)
        return
    _emit(eventbridge_delivery(records, schema=schema, batch=batch, region=target.region), output)


@event.command("timer")
@click.option(
    "--trigger-time",
    help="When the timer fired (ISO-8601, UTC): the sweep's clock. Default: now (--from-oss: OSS's now).",
)
@click.option(
    "--from-oss",
    is_flag=True,
    help="The trigger time is OSS's clock at --oss-endpoint (the local cloud's, shifted). Default: this "
    "machine's.",
)
@click.option(
    "--trigger",
    "template_trigger",
    metavar="NAME",
    help="A timer trigger of the template: its name and payload. Default: --trigger-name and --payload.",
)
@click.option("--trigger-name", default="nightly-expiry", show_default=True, help="The trigger's name.")
@click.option(
    "--payload",
    default='{"buckets": ["autotag-demo"]}',
    show_default=True,
    help="The trigger's payload: the sweep's JSON request.",
)
@template_option
@_output_option
@target_options(oss=True)
def timer_event_command(
    trigger_time: str | None,
    from_oss: bool,
    template_trigger: str | None,
    trigger_name: str,
    payload: str,
    template_path: Path,
    output: Path | None,
    target: Target,
) -> None:
    """A timer trigger event, as FC delivers it (`autotag trigger` fires one through FC instead).

    \b
    Examples:
      autotag event timer --payload '{"buckets": ["autotag-demo"], "dryRun": true}' -o timer.json
      autotag event timer --trigger nightly-expiry --from-oss -o timer.json
    """
    if trigger_time and from_oss:
        raise click.UsageError("--trigger-time and --from-oss both say when: give one")
    if template_trigger is not None:
        given = [o for o in ("trigger_name", "payload") if _given(o)]
        if given:
            option = "--" + given[0].replace("_", "-")
            raise click.UsageError(f"--trigger takes the template's name and payload: leave out {option}")
        function = _timer_function(template_path, template_trigger)
        timer = timer_trigger(read_template(template_path), function, template_trigger, template_path)
        trigger_name, payload = timer.name, timer.payload
    if from_oss:
        doing(f"reading OSS's clock at {target.oss_endpoint}")
        moment: datetime | None = target.oss_time()
    else:
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


def _given(parameter: str) -> bool:
    source = click.get_current_context().get_parameter_source(parameter)
    return source not in (None, click.core.ParameterSource.DEFAULT)


def _timer_function(template_path: Path, name: str) -> str:
    """The function of the template whose timer trigger is `name`."""
    template = read_template(template_path)
    for function, spec in template.functions.items():
        if any(t.name == name and t.type == "Timer" for t in spec.triggers):
            return function
    timers = [t.name for spec in template.functions.values() for t in spec.triggers if t.type == "Timer"]
    known = ", ".join(timers) or "none"
    raise BadInput(f"no timer trigger {name!r} in {template_path} (its timers: {known})")
