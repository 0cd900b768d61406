"""`autotag rules check/push` and `--rules` / AUTOTAG_RULES naming rules kept in OSS, through the CLI
against the local OSS: what the functions can read is what gets pushed (JSON), every mistake is one line
naming what is wrong with the exit code cli.md gives, and rules in OSS read as the functions read them."""

from __future__ import annotations

import json
from pathlib import Path

import click
import oss2
import pytest
from click.testing import CliRunner
from conftest import LONG_TERM, local_cloud_process, readable, tags_of, wait_for_tag

from autotag_cli.main import cli
from localcloud.oss import LocalOSS

ROOT = Path(__file__).parents[2]
TEMPLATE = str(ROOT / "template.yml")
LOCATION = "oss://autotag-demo-state/rules.json"  # where docs/rules.md keeps them: no uploader may write it
YAML_RULES = "version: 1\nrules:\n  - name: team\n    tags: {team: yellow}\n"


def run(args: list[str], oss: LocalOSS | None = None, **env: str) -> click.testing.Result:
    environment = {"COLUMNS": "200", **env}
    if oss is not None:
        environment.update(
            AUTOTAG_OSS_ENDPOINT=oss.endpoint,
            ALIBABA_CLOUD_ACCESS_KEY_ID=LONG_TERM.access_key_id,
            ALIBABA_CLOUD_ACCESS_KEY_SECRET=LONG_TERM.access_key_secret,
        )
    return CliRunner().invoke(cli, args, env=environment, terminal_width=200)


def one_error_line(result: click.testing.Result) -> str:
    (line,) = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert "Traceback" not in result.output, result.output
    return line


# ---- YAML stays on this side: the functions read JSON -----------------------------------------------------


def test_a_yaml_file_is_pushed_as_json_the_functions_can_read(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    source = tmp_path / "my-rules.yaml"
    source.write_text(YAML_RULES)
    result = run(["rules", "push", str(source), "--to", LOCATION], oss)
    assert result.exit_code == 0 and "pushed" in result.output, result.output
    stored = oss2.Bucket(template_bucket.auth, oss.endpoint, "autotag-demo-state").get_object("rules.json")
    assert stored.headers["Content-Type"] == "application/json"
    assert json.loads(stored.read()) == {
        "version": 1,
        "rules": [{"name": "team", "tags": {"team": "yellow"}}],
    }


def test_a_yaml_key_is_refused_saying_why(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    source = tmp_path / "my-rules.yaml"
    source.write_text(YAML_RULES)
    result = run(["rules", "push", str(source), "--to", "oss://autotag-demo/.autotag/rules.yaml"], oss)
    assert result.exit_code == 2, result.output
    line = one_error_line(result)
    assert "--to" in line and "as JSON" in line and "no PyYAML" in line and ".json key" in line, line
    with pytest.raises(oss2.exceptions.NoSuchKey):
        template_bucket.head_object(".autotag/rules.yaml")


def test_the_functions_refuse_a_yaml_rules_file_by_name(oss: LocalOSS, tmp_path: Path) -> None:
    """`invoke` runs the deployed code: a YAML rules file is refused before anything runs, saying why."""
    source = tmp_path / "my-rules.yaml"
    source.write_text(YAML_RULES)
    event = tmp_path / "e.json"
    event.write_text(run(["event", "oss", "--bucket", "autotag-demo", "--key", "a.jpg"]).output)
    result = run(["invoke", "tag-on-upload", "-e", str(event), "--rules", str(source)], oss)
    assert result.exit_code == 2  # a rules file the functions cannot read: bad input
    line = one_error_line(result)
    assert "my-rules.yaml" in line and "read rules as JSON" in line and "no PyYAML" in line, line


def test_check_reads_yaml_and_refuses_an_alias_bomb_quickly(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 12)]
    lines += ["version: 1", "rules: [{name: r, tags: {a: '1'}, description: *a11}]"]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\n")
    result = run(["rules", "check", str(bomb)])
    assert result.exit_code == 2 and "more than 100000 values" in one_error_line(result)
    good = tmp_path / "good.yml"
    good.write_text(YAML_RULES)
    assert run(["rules", "check", str(good)]).exit_code == 0
    bad = tmp_path / "bad.yml"
    bad.write_text("version: [1\n")
    assert "not valid YAML" in one_error_line(run(["rules", "check", str(bad)]))


# ---- rules kept in OSS, named to the commands that evaluate or run rules ---------------------------------


def test_plan_sweep_and_invoke_read_rules_kept_in_oss(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    source = tmp_path / "my-rules.yaml"
    source.write_text(YAML_RULES)
    assert run(["rules", "push", str(source), "--to", LOCATION], oss).exit_code == 0
    template_bucket.put_object("photos/a.jpg", b"x")
    planned = run(["plan", "--bucket", "autotag-demo", "--key", "photos/a.jpg"], oss, AUTOTAG_RULES=LOCATION)
    assert planned.exit_code == 0 and "yellow" in planned.output, planned.output
    swept = run(["sweep", "--bucket", "autotag-demo", "--dry-run", "--rules", LOCATION], oss)
    assert swept.exit_code == 0, swept.output
    event = tmp_path / "e.json"
    event.write_text(run(["event", "oss", "--bucket", "autotag-demo", "--key", "photos/a.jpg"]).output)
    invoked = run(["invoke", "tag-on-upload", "-e", str(event), "--rules", LOCATION], oss)
    assert invoked.exit_code == 0, invoked.output
    assert readable(tags_of(template_bucket, "photos/a.jpg"))["team"] == "yellow"
    missing = run(
        ["plan", "--bucket", "autotag-demo", "--key", "photos/a.jpg", "--rules", LOCATION + "x"], oss
    )
    assert missing.exit_code == 2
    assert f"AUTOTAG_RULES {LOCATION}x: cannot read the rules" in one_error_line(missing)


# ---- mistakes: one line, the exit code cli.md gives (2: the command itself is wrong) ----------------------


@pytest.mark.parametrize(
    ("to", "says"),
    [
        ("oss://Bad_Bucket/x.json", "'Bad_Bucket' is not a valid bucket name"),
        ("oss://autotag-demo/", "an OSS location is oss://<bucket>/<key>"),
        ("s3://autotag-demo/x.json", "is not oss://<bucket>/<key>"),
    ],
)
def test_push_names_a_wrong_to_as_such(oss: LocalOSS, tmp_path: Path, to: str, says: str) -> None:
    source = tmp_path / "r.json"
    source.write_text(json.dumps({"version": 1, "rules": [{"name": "a", "tags": {"a": "1"}}]}))
    result = run(["rules", "push", str(source), "--to", to], oss)
    line = one_error_line(result)
    assert result.exit_code == 2 and "--to" in line and says in line and "AUTOTAG_RULES" not in line, line


def test_rules_mistakes_exit_as_cli_md_says(oss: LocalOSS, tmp_path: Path) -> None:
    missing = run(["rules", "check", str(tmp_path / "missing.json")])
    directory = run(["rules", "check", str(tmp_path)])
    assert (missing.exit_code, directory.exit_code) == (2, 2), missing.output + directory.output
    nan = tmp_path / "nan.json"
    nan.write_text('{"version": 1, "defaults": {"priority": NaN}, "rules": []}')
    assert "nan.json: not valid JSON: NaN is not a JSON number" in one_error_line(
        run(["rules", "check", str(nan)])
    )
    twice = tmp_path / "twice.json"  # JSON readers keep one of the two silently: which, differs
    twice.write_text('{"version": 1, "rules": [{"name": "a", "tags": {"a": "1"}, "tags": {"b": "2"}}]}')
    assert "twice.json: not valid JSON: 'tags' appears twice in one object" in one_error_line(
        run(["rules", "check", str(twice)])
    )
    source = tmp_path / "r.json"
    source.write_text(json.dumps({"version": 1, "rules": [{"name": "a", "tags": {"a": "1"}}]}))
    schemeless = run(["rules", "push", str(source), "--to", LOCATION, "--oss-endpoint", "not-a-url"])
    assert schemeless.exit_code == 2 and "needs a scheme" in one_error_line(schemeless), schemeless.output


def test_devices_and_pipes_are_read_only_up_to_the_limit(tmp_path: Path) -> None:
    """/dev/zero reports size 0 and never ends: refused after the limit, not read until memory runs out."""
    rules = run(["rules", "check", "/dev/zero"])
    assert rules.exit_code == 2 and "/dev/zero: a rules file is at most 1 MiB" in one_error_line(rules)
    event = run(["invoke", "tag-on-upload", "-e", "/dev/zero"])
    assert event.exit_code == 2 and "/dev/zero is over 32 MiB" in one_error_line(event), event.output


def test_an_event_to_dash_goes_to_standard_output_and_the_empty_stdin_hint_works(tmp_path: Path) -> None:
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path):
        printed = runner.invoke(
            cli, ["event", "oss", "--bucket", "autotag-demo", "--key", "a.jpg", "-o", "-"]
        )
        assert printed.exit_code == 0 and json.loads(printed.stdout)["events"] and not Path("-").exists()
        empty = runner.invoke(cli, ["invoke", "tag-on-upload", "-e", "-", "--template", TEMPLATE], input="")
    assert empty.exit_code == 2
    assert "autotag event oss --bucket B --key K | autotag invoke FUNCTION -e -" in empty.output, empty.output


# ---- local up: the functions read the rules --rules / AUTOTAG_RULES names, in OSS too ---------------------


@pytest.mark.parametrize("how", ["--rules", "AUTOTAG_RULES"])
def test_local_up_runs_the_functions_on_rules_kept_in_oss(how: str, tmp_path: Path) -> None:
    """rules.md's walkthrough: local up with rules in OSS, a push, an upload: the pushed rule tags it."""
    by_variable = how == "AUTOTAG_RULES"
    options, env = ([], {"AUTOTAG_RULES": LOCATION}) if by_variable else (["--rules", LOCATION], {})
    with local_cloud_process(tmp_path, ROOT / "template.yml", *options, env=env) as cloud:
        source = tmp_path / "my-rules.json"
        source.write_text(json.dumps({"version": 1, "rules": [{"name": "team", "tags": {"team": "teal"}}]}))
        pushed = run(["rules", "push", str(source), "--to", LOCATION, "--oss-endpoint", cloud.oss_endpoint])
        assert pushed.exit_code == 0, pushed.output
        auth = oss2.Auth(LONG_TERM.access_key_id, LONG_TERM.access_key_secret)
        bucket = oss2.Bucket(auth, cloud.oss_endpoint, "autotag-demo")
        bucket.put_object("photos/a.jpg", b"x")
        assert cloud.line_containing("photos/a.jpg"), "no invocation for the upload"
        assert readable(wait_for_tag(bucket, "photos/a.jpg", "team")).get("team") == "teal"


def test_a_sweep_refuses_rules_kept_in_a_bucket_it_removes_tags_in(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    """Rules kept in the swept bucket, where uploaders write (an earlier version's docs put them there):
    whoever uploads could make a sweep remove every tag the system set. A sweep that writes refuses them,
    naming --rules (exit 2); a dry run, which writes nothing, reads them."""
    location = "oss://autotag-demo/.autotag/rules.json"
    template_bucket.put_object(
        ".autotag/rules.json", (ROOT / "functions/autotag/rules/default.json").read_bytes()
    )
    refused = run(["sweep", "--bucket", "autotag-demo", "--rules", location], oss)
    line = one_error_line(refused)
    assert refused.exit_code == 2 and "--rules" in line and "uploaders" in line, refused.output
    assert run(["sweep", "--bucket", "autotag-demo", "--dry-run", "--rules", location], oss).exit_code == 0


def test_push_refuses_another_ownership_tag_than_the_rules_it_replaces(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    """Under another ownership tag the system's earlier tags are no longer its own (docs/reconcile.md#the-
    ownership-tag): pushing such rules over rules in force is refused in one line, unless asked for."""
    first, moved = tmp_path / "first.json", tmp_path / "moved.json"
    first.write_text(json.dumps({"version": 1, "rules": [{"name": "team", "tags": {"team": "yellow"}}]}))
    moved.write_text(json.dumps({**json.loads(first.read_text()), "ownership_tag": "at-owner"}))
    assert run(["rules", "push", str(first), "--to", LOCATION], oss).exit_code == 0
    refused = run(["rules", "push", str(moved), "--to", LOCATION], oss)
    assert refused.exit_code == 2, refused.output
    line = one_error_line(refused)
    assert "'autotag'" in line and "'at-owner'" in line and "--new-ownership-tag" in line, line
    stored = oss2.Bucket(template_bucket.auth, oss.endpoint, "autotag-demo-state").get_object("rules.json")
    assert "ownership_tag" not in json.loads(stored.read())
    allowed = run(["rules", "push", str(moved), "--to", LOCATION, "--new-ownership-tag"], oss)
    assert allowed.exit_code == 0, allowed.output
