"""`autotag rules`: check a rules file offline, and push it to the OSS object the functions read
(`AUTOTAG_RULES=oss://bucket/key`) only once it checks. The functions pick a pushed version up within
`AUTOTAG_RULES_MAX_AGE` seconds; a version that does not check never reaches them through this command."""

from __future__ import annotations

import json
from pathlib import Path

import click

from autotag.rules import RulesError, RuleSet
from autotag.rules.loader import is_yaml_name, read_rules_file
from autotag.rules.remote import Location, parse_location

from .errors import doing
from .options import rules_from, yaml_document
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
@target_options(oss=True)
@json_option
def push(path: Path, location: str, target: Target, as_json: bool) -> None:
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
    doing(f"pushing {path} to {location} at {target.oss_endpoint}")
    answer = target.bucket(where.bucket).put_object(where.key, body, headers=JSON_HEADERS)
    if as_json:
        pushed = {"path": str(path), "to": location, "etag": answer.etag, "versionId": answer.versionid}
        click.echo(json.dumps({**pushed, **_as_json(checked)}))
        return
    version = f", version {answer.versionid}" if answer.versionid else ""
    click.echo(f"pushed {path} to {location} (ETag {answer.etag}{version}): {_describe(checked)}")
