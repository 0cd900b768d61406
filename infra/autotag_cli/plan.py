"""`autotag plan`: what tag-on-upload would do to existing objects, without writing anything."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import click
import oss2
from rich.console import Console
from rich.table import Table

from autotag.events import ObjectEvent
from autotag.gateway import OssFailure, OssGateway, failure
from autotag.tagger import ObjectResult, tag_object

from .options import bucket_for, oss_options, rules_from


def _events(bucket: oss2.Bucket, key: str | None, prefix: str | None, limit: int) -> Iterator[ObjectEvent]:
    if key is not None:
        yield ObjectEvent("ObjectCreated:PutObject", bucket.bucket_name, key, region="")
        return
    for info in itertools.islice(oss2.ObjectIterator(bucket, prefix=prefix or ""), limit):
        yield ObjectEvent("ObjectCreated:PutObject", bucket.bucket_name, info.key, region="", size=info.size)


def _describe(result: ObjectResult) -> str:
    plan = result.plan
    if plan is None:
        return result.reason
    lines = [f"+ {k}={v}" for k, v in plan.added.items()]
    lines += [f"~ {k}: {old} -> {new}" for k, (old, new) in plan.changed.items()]
    lines += [f"- {r.key}={r.value}: {r.reason}" for r in plan.removed]
    lines += [f"! {d.key}={d.value}: {d.reason}" for d in plan.dropped]
    return "\n".join(lines) or "no change"


@click.command()
@click.option("--bucket", "bucket_name", required=True)
@click.option("--key", help="One object.")
@click.option("--prefix", help="Every object under this prefix (up to --limit).")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100_000))
@oss_options
@click.option("--json", "as_json", is_flag=True, help="One JSON summary per object instead of a table.")
def plan(
    bucket_name: str,
    key: str | None,
    prefix: str | None,
    limit: int,
    endpoint: str,
    access_key_id: str,
    access_key_secret: str,
    security_token: str,
    rules_path: str,
    as_json: bool,
) -> None:
    """Show current tags, desired tags and the difference for one object or a prefix. Writes nothing."""
    if (key is None) == (prefix is None):
        raise click.UsageError("give exactly one of --key and --prefix")
    rules = rules_from(rules_path)
    bucket = bucket_for(endpoint, bucket_name, access_key_id, access_key_secret, security_token)
    gateway = OssGateway(bucket)
    table = Table(
        title=f"tag plan for oss://{bucket_name}/{key or prefix or ''} (rules {rules.fingerprint}; dry run)"
    )
    for column in ("key", "current tags", "desired tags", "changes"):
        table.add_column(column)
    try:
        for event in _events(bucket, key, prefix, limit):
            result = tag_object(event, rules, gateway, write=False)
            if as_json:
                click.echo(
                    json.dumps(
                        {
                            **result.summary(),
                            "current": result.plan.current if result.plan else {},
                            "desired": result.plan.desired if result.plan else {},
                        },
                        ensure_ascii=False,
                    )
                )
                continue
            current = result.plan.current if result.plan else {}
            desired = result.plan.desired if result.plan else {}
            table.add_row(
                event.key,
                "\n".join(f"{k}={v}" for k, v in current.items()) or "—",
                "\n".join(f"{k}={v}" for k, v in desired.items()) or "—",
                _describe(result),
            )
    except OssFailure as error:
        raise click.ClickException(f"OSS request failed: {error}") from None
    except oss2.exceptions.OssError as error:  # the listing; its text would carry the error's details
        listing = failure("ListObjects", error, OssFailure)
        raise click.ClickException(f"OSS request failed: {listing}") from None
    if not as_json:
        Console().print(table)
        click.echo(f"{gateway.requests} OSS requests, nothing written")
