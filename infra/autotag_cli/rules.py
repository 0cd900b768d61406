"""`autotag rules`: check a rules file offline, and push it to the OSS object the functions read
(`AUTOTAG_RULES=oss://bucket/key`) only once it checks. The functions pick a pushed version up within
`AUTOTAG_RULES_MAX_AGE` seconds; a version that does not check never reaches them through this command.
`rules diff` shows what a change of rules reaches before anything runs (rules_change.py), and with a
bucket estimates what `autotag reconcile` would cost from a sample of its listing."""

from __future__ import annotations

import json
from pathlib import Path

import click
import oss2

from autotag.rules import RulesError, RuleSet, rules_from_bytes
from autotag.rules.loader import is_yaml_name, read_rules_file
from autotag.rules.remote import Location, parse_location
from backfill.estimate import MEASURED_OBJECTS_PER_SECOND, RATE_SOURCE, estimate
from backfill.selection import Selection, kept_rows, list_prefixes

from .console import shown
from .errors import BadInput, doing
from .names import BUCKET
from .options import FiniteFloatRange, rules_from, yaml_document
from .rules_change import compare, reach_document, reach_lines, selection_lines
from .target import Target, require_reachable, target_options

JSON_HEADERS = {"Content-Type": "application/json"}


def _describe(rules: RuleSet) -> str:
    reads = ", ".join(sorted(rules.needs)) or "the key alone"
    return f"{len(rules.rules)} rules, fingerprint {rules.fingerprint}, reading {reads}"


def _as_json(rules: RuleSet) -> dict[str, object]:
    return {"rules": len(rules.rules), "fingerprint": rules.fingerprint, "reads": sorted(rules.needs)}


json_option = click.option("--json", "as_json", is_flag=True, help="Print what was checked as JSON.")


@click.group()
def rules() -> None:
    """Check rules files, and push them to where the functions read them."""


@rules.command("check")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
def check(path: Path, as_json: bool) -> None:
    """Check the rules file PATH (JSON, or YAML) as the functions load it (schema, limits, patterns);
    writes nothing.

    \b
    Example:
      autotag rules check functions/autotag/rules/default.json
    """
    checked = rules_from(str(path))
    if as_json:
        click.echo(json.dumps({"path": str(path), **_as_json(checked)}))
    else:
        click.echo(f"{path}: {_describe(checked)}")


def _oss_location(text: str) -> Location:
    """--to's bucket and key, refused (exit code 2, naming --to) when they cannot be the functions'."""
    try:
        where = parse_location(text, "--to")
    except RulesError as error:
        raise click.BadParameter(str(error).removeprefix("--to "), param_hint="--to") from None
    if where is None:
        raise click.BadParameter(f"{text!r} is not oss://<bucket>/<key>", param_hint="--to")
    if is_yaml_name(where.key):
        raise click.BadParameter(
            f"{text!r}: the functions read rules kept in OSS as JSON (FC's Python runtimes have no "
            "PyYAML): name a .json key; a YAML file is uploaded in its JSON form",
            param_hint="--to",
        )
    return where


@rules.command("push")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--to",
    "location",
    required=True,
    metavar="oss://BUCKET/KEY",
    help="The object the functions' AUTOTAG_RULES names (JSON: a .json key).",
)
@click.option(
    "--new-ownership-tag",
    "new_ownership_tag",
    is_flag=True,
    help="Push even though PATH names another ownership_tag than the rules it replaces (the system's tags "
    "already set are then no longer its own: docs/reconcile.md#the-ownership-tag).",
)
@target_options(oss=True)
@json_option
def push(path: Path, location: str, new_ownership_tag: bool, target: Target, as_json: bool) -> None:
    """Check the rules file PATH (JSON, or YAML), then upload it as JSON to --to (nothing is uploaded when
    it does not check). The functions read JSON: a YAML file is uploaded in its JSON form.

    \b
    Example:
      autotag rules push my-rules.yaml --to oss://autotag-demo-state/rules.json
    """
    where = _oss_location(location)
    checked = rules_from(str(path))
    if is_yaml_name(str(path)):
        body = json.dumps(yaml_document(str(path)), indent=2, ensure_ascii=False).encode() + b"\n"
    else:
        body = read_rules_file(path)
    require_reachable(target.oss_endpoint, "OSS")
    replaced = None if new_ownership_tag else _replaced_rules(where, target)
    if replaced is not None and replaced.ownership.tag != checked.ownership.tag:
        raise BadInput(
            f"{path} records the system's tags under {checked.ownership.tag!r}, the rules at {location} "
            f"under {replaced.ownership.tag!r}: the tags the system set would no longer be its own; keep "
            "ownership_tag, or pass --new-ownership-tag (docs/reconcile.md#the-ownership-tag)"
        )
    doing(f"pushing {path} to {location} at {target.oss_endpoint}")
    answer = target.bucket(where.bucket).put_object(where.key, body, headers=JSON_HEADERS)
    if as_json:
        pushed = {"path": str(path), "to": location, "etag": answer.etag, "versionId": answer.versionid}
        click.echo(json.dumps({**pushed, **_as_json(checked)}))
        return
    version = f", version {answer.versionid}" if answer.versionid else ""
    click.echo(f"pushed {path} to {location} (ETag {answer.etag}{version}): {_describe(checked)}")


def _replaced_rules(where: Location, target: Target) -> RuleSet | None:
    """The rules now at `where`, None when there are none there (or none that load: nothing to compare)."""
    doing(f"reading the rules at oss://{where.bucket}/{where.key} at {target.oss_endpoint}")
    try:
        data = target.bucket(where.bucket).get_object(where.key).read()
    except (oss2.exceptions.NoSuchKey, oss2.exceptions.NoSuchBucket):
        return None
    try:
        return rules_from_bytes(data, f"oss://{where.bucket}/{where.key}")
    except RulesError:
        return None


@rules.command("diff")
@click.argument("old", metavar="OLD")
@click.argument("new", metavar="NEW")
@click.option(
    "--bucket",
    "bucket_name",
    type=BUCKET,
    help="Estimate the cost in this bucket: list the affected prefixes (up to --sample objects) and filter "
    "each key as a reconcile does. Default: no estimate, no request.",
)
@click.option(
    "--sample",
    default=10_000,
    show_default=True,
    type=click.IntRange(1),
    help="With --bucket: objects listed at most; past it the figures are lower bounds.",
)
@click.option(
    "--objects-per-second",
    default=MEASURED_OBJECTS_PER_SECOND,
    show_default=True,
    type=FiniteFloatRange(min=0, min_open=True),
    help="With --bucket: the rate the time is estimated at. Default: docs/backfill.md's measured figure.",
)
@target_options(oss=True)
@json_option
def diff(
    old: str,
    new: str,
    bucket_name: str | None,
    sample: int,
    objects_per_second: float,
    target: Target,
    as_json: bool,
) -> None:
    """Show what changes from the rules OLD to the rules NEW (each a file, JSON or YAML, `default`, or
    oss://BUCKET/KEY): which rules changed, which key prefixes and conditions they can reach, whether the
    whole bucket is affected and why; with --bucket, an estimate of the objects, OSS requests and time a
    reconcile takes. Nothing is written.

    \b
    Examples:
      autotag rules diff functions/autotag/rules/default.json my-rules.yaml
      autotag rules diff oss://autotag-demo-state/rules.json my-rules.json --bucket autotag-demo
    """
    change = compare(old, new, target)
    document = reach_document(change)
    lines = reach_lines(document)
    if bucket_name is not None and not change.diff.unchanged:
        selection = Selection(change.affected.prefixes)
        if selection.prefixes:
            require_reachable(target.oss_endpoint, "OSS")
            doing(f"listing oss://{bucket_name}/ under the affected prefixes at {target.oss_endpoint}")
            listed = list_prefixes(target.bucket, bucket_name, selection)
            for _ in kept_rows(listed, change.affected, selection, sample):
                pass
        rate_source = (
            RATE_SOURCE if objects_per_second == MEASURED_OBJECTS_PER_SECOND else "--objects-per-second"
        )
        cost = estimate(selection, change.new_reads_head, objects_per_second, rate_source)
        document.update(bucket=bucket_name, selection=selection.as_json(), estimate=cost)
        lines += [f"estimate in oss://{bucket_name}, from at most {sample:,} listed objects:"]
        lines += selection_lines(selection, cost)
    if as_json:
        click.echo(json.dumps(document, ensure_ascii=False))
        return
    for line in lines:
        click.echo(shown(line))
