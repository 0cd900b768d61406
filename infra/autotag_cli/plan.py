"""`autotag plan`: what tag-on-upload would do to existing objects, without writing anything.

Each object is shown one fact a line, its key first, never in a table's cell: a key is what an operator
copies into the next command, and a cell cuts or folds it at 80 columns."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import click
import oss2

from autotag.events import ObjectEvent
from autotag.gateway import OssGateway
from autotag.output import to_json
from autotag.tagger import ObjectResult, tag_object

from .console import shown
from .errors import NotFound, doing
from .names import BUCKET
from .options import rules_from, rules_option, state_prefix_option
from .target import Target, require_reachable, target_options


def _events(
    bucket: oss2.Bucket, key: str | None, prefix: str | None, limit: int, state_prefix: str
) -> Iterator[ObjectEvent]:
    if key is not None:
        yield ObjectEvent("ObjectCreated:PutObject", bucket.bucket_name, key, region="")
        return
    listing = oss2.ObjectIterator(bucket, prefix=prefix or "")
    objects = (info for info in listing if not info.key.startswith(state_prefix))  # the sweep's own state
    for info in itertools.islice(objects, limit):
        yield ObjectEvent("ObjectCreated:PutObject", bucket.bucket_name, info.key, region="", size=info.size)


def _describe(result: ObjectResult) -> list[str]:
    """An object's plan as lines: its key, its current and desired tags, then each change."""
    plan = result.plan
    lines = [result.event.key]
    if plan is None:
        return [*lines, f"  {result.outcome}: {result.reason}"]
    lines.append("  current: " + (", ".join(f"{k}={v}" for k, v in plan.current.items()) or "—"))
    lines.append("  desired: " + (", ".join(f"{k}={v}" for k, v in plan.desired.items()) or "—"))
    changes = [f"+ {k}={v}" for k, v in plan.added.items()]
    changes += [f"~ {k}: {old} -> {new}" for k, (old, new) in plan.changed.items()]
    changes += [f"- {r.key}={r.value}: {r.reason}" for r in plan.removed]
    changes += [f"! {d.key}={d.value}: {d.reason}" for d in plan.dropped]
    return lines + [f"  {change}" for change in changes or ["no change"]]


@click.command()
@click.option("--bucket", "bucket_name", required=True, type=BUCKET, help="The bucket of the objects.")
@click.option("--key", help="One object.")
@click.option("--prefix", help='Every object under this prefix (up to --limit); "" for the whole bucket.')
@click.option(
    "--limit", default=100, show_default=True, type=click.IntRange(1, 100_000), help="Objects at most."
)
@state_prefix_option("keys left out of a prefix's plan.")
@rules_option
@target_options(oss=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON summary per object instead of a table.")
def plan(
    bucket_name: str,
    key: str | None,
    prefix: str | None,
    limit: int,
    state_prefix: str,
    rules_path: str,
    target: Target,
    as_json: bool,
) -> None:
    """Show current tags, desired tags and the difference for one object or a prefix. Writes nothing.

    \b
    Examples:
      autotag plan --bucket autotag-demo --key a.jpg
      autotag plan --bucket autotag-demo --prefix projects/ --json
    """
    if (key is None) == (prefix is None):
        raise click.UsageError("give exactly one of --key and --prefix")
    rules = rules_from(rules_path, target)
    doing(f"planning oss://{bucket_name}/{key if key is not None else prefix} at {target.oss_endpoint}")
    require_reachable(target.oss_endpoint, "OSS")
    bucket = target.bucket(bucket_name)
    # the bucket and the key work; the key, when it exists, is the first listed under itself
    first = bucket.list_objects(prefix=key if key is not None else prefix or "", max_keys=1).object_list
    if key is not None and not any(listed.key == key for listed in first):
        raise NotFound(f"oss://{bucket_name}/{key} does not exist at {target.oss_endpoint}")
    gateway = OssGateway(bucket)
    title = f"tag plan for oss://{bucket_name}/{key or prefix or ''} (rules {rules.fingerprint}; dry run)"
    lines: list[str] = []
    planned = 0
    for event in _events(bucket, key, prefix, limit, state_prefix):
        result = tag_object(event, rules, gateway, write=False, ignored_prefix=state_prefix)
        planned += 1
        if as_json:
            click.echo(
                to_json(
                    {
                        **result.summary(),
                        "current": result.plan.current if result.plan else {},
                        "desired": result.plan.desired if result.plan else {},
                    }
                )
            )
            continue
        lines += _describe(result)
    if not planned:
        where = f"oss://{bucket_name}/{prefix}"
        why = (
            f": keys under {state_prefix!r} hold the sweep's own state"
            if state_prefix and ((prefix or "").startswith(state_prefix))
            else ""
        )
        click.echo(shown(f"no objects to plan under {where}{why}"), err=as_json)
        return
    if not as_json:
        for line in [title, *lines]:
            click.echo(shown(line))
        click.echo(f"{gateway.requests} OSS requests, nothing written")
