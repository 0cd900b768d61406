"""`autotag rules`: check a rules file offline, and push it to the OSS object the functions read
(`AUTOTAG_RULES=oss://bucket/key`) only once it checks. The functions pick a pushed version up within
`AUTOTAG_RULES_MAX_AGE` seconds; a version that does not check never reaches them through this command."""

from __future__ import annotations

from pathlib import Path

import click

from autotag.rules import RuleSet
from autotag.rules.remote import parse_location

from .errors import doing
from .options import rules_from
from .target import Target, require_reachable, target_options


def _describe(rules: RuleSet) -> str:
    reads = ", ".join(sorted(rules.needs)) or "the key alone"
    return f"{len(rules.rules)} rules, fingerprint {rules.fingerprint}, reading {reads}"


@click.group()
def rules() -> None:
    """Check rules files, and push them to where the functions read them."""


@rules.command("check")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def check(path: Path) -> None:
    """Check the rules file PATH as the functions load it (schema, limits, patterns); writes nothing.

    \b
    Example:
      autotag rules check functions/autotag/rules/default.json
    """
    click.echo(f"{path}: {_describe(rules_from(str(path)))}")


@rules.command("push")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--to",
    "location",
    required=True,
    metavar="oss://BUCKET/KEY",
    help="The object the functions' AUTOTAG_RULES names.",
)
@target_options(oss=True)
def push(path: Path, location: str, target: Target) -> None:
    """Check the rules file PATH, then upload it to --to (nothing is uploaded when it does not check).

    \b
    Example:
      autotag rules push my-rules.yaml --to oss://autotag-demo/.autotag/rules.yaml
    """
    where = parse_location(location)
    if where is None:
        raise click.BadParameter(f"{location!r} is not oss://<bucket>/<key>", param_hint="--to")
    if where.key.lower().endswith((".yaml", ".yml")) != str(path).lower().endswith((".yaml", ".yml")):
        raise click.BadParameter(
            f"{path} and {location} differ in format: the functions read YAML from a .yaml/.yml key, "
            "JSON otherwise",
            param_hint="--to",
        )
    checked = rules_from(str(path))
    require_reachable(target.oss_endpoint, "OSS")
    doing(f"pushing {path} to {location} at {target.oss_endpoint}")
    answer = target.bucket(where.bucket).put_object(where.key, path.read_bytes())
    version = f", version {answer.versionid}" if answer.versionid else ""
    click.echo(f"pushed {path} to {location} (ETag {answer.etag}{version}): {_describe(checked)}")
