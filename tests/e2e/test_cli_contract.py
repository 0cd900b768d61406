"""The operator's CLI contract: every command, under everyday mistakes, ends with one line that names
what is wrong and the exit code says what kind of failure it was — never a traceback; and the behaviours
an operator relies on (local by default, functions running where the command points, backfill never
losing a failure, local up showing what happens, deploy asking first)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import oss2
import pytest
import yaml
from click.testing import CliRunner
from conftest import (
    LONG_TERM,
    REGION,
    LocalCloudProcess,
    local_cloud_process,
    purge,
    tags_of,
    template_variant,
    wait_for_tag,
)

from autotag_cli.events import oss_event_document
from autotag_cli.main import cli
from localcloud.cloudflow import LocalCloudFlow
from localcloud.fc import LocalFC, load_template, role_credentials
from localcloud.fc.api import LocalFcApi
from localcloud.fc.eventbridge import cloud_event
from localcloud.oss import DEFAULT_CREDENTIALS, FaultRule, LocalOSS

ROOT = Path(__file__).parents[2]
TEMPLATE = str(ROOT / "template.yml")
UNREACHABLE = "http://127.0.0.1:1"


@pytest.fixture
def fc_api(oss: LocalOSS) -> Iterator[str]:
    fc = LocalFC(load_template(TEMPLATE), environment={"AUTOTAG_OSS_ENDPOINT": oss.endpoint})
    with fc, LocalFcApi(fc) as api:
        fc.wire_oss(oss)
        yield api.endpoint


def run(args: list[str], env: dict[str, str], stdin: str | None = None) -> click.testing.Result:
    return CliRunner().invoke(cli, args, env={"COLUMNS": "200", **env}, input=stdin, terminal_width=200)


# ---- the matrix: every command against everyday mistakes -------------------------------------------------

CONDITIONS = {
    "wrong-access-key": {"ALIBABA_CLOUD_ACCESS_KEY_ID": "nobody", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "x"},
    "wrong-secret": {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": LONG_TERM.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "not-the-secret",
    },
}
# (command, condition) -> (arguments, exit code, what the error line must say)
CELLS: dict[tuple[str, str], tuple[list[str], int, list[str]]] = {}


def cell(command: str, condition: str, args: list[str], code: int, *says: str) -> None:
    CELLS[(command, condition)] = (args, code, list(says))


# The exit codes docs/cli.md's table gives, one per kind of failure, whatever the command.
FAILED, BAD_INPUT, UNREACHABLE_OR_REFUSED, NOT_FOUND, INTERRUPTED, CLOSED_PIPE = 1, 2, 3, 4, 130, 141


for name, args in {
    "plan": ["plan", "--bucket", "autotag-demo", "--key", "a.jpg"],
    "sweep": ["sweep", "--bucket", "autotag-demo", "--dry-run"],
    "backfill": ["backfill", "--bucket", "autotag-demo", "--template", TEMPLATE],
    "event": ["event", "oss", "--bucket", "autotag-demo", "--key", "a.jpg", "--from-oss"],
    "reconcile": ["reconcile", "OLD_RULES", "NEW_RULES", "--bucket", "autotag-demo", "--template", TEMPLATE],
    "rules diff": ["rules", "diff", "OLD_RULES", "NEW_RULES", "--bucket", "autotag-demo"],
}.items():
    cell(
        name,
        "wrong-access-key",
        args,
        UNREACHABLE_OR_REFUSED,
        "OSS does not know AccessKey ID nobody",
        "InvalidAccessKeyId, HTTP 403",
    )
    cell(
        name,
        "wrong-secret",
        args,
        UNREACHABLE_OR_REFUSED,
        f"the AccessKey secret does not belong to AccessKey ID {LONG_TERM.access_key_id}",
        "SignatureDoesNotMatch, HTTP 403",
    )
    missing = [a if a != "autotag-demo" else "no-such-bucket" for a in args]
    cell(
        name,
        "missing-bucket",
        missing,
        NOT_FOUND,
        "no-such-bucket",
        "the bucket does not exist",
        "NoSuchBucket, HTTP 404",
    )
    cell(
        name,
        "unreachable-endpoint",
        [*args, "--oss-endpoint", UNREACHABLE],
        UNREACHABLE_OR_REFUSED,
        f"cannot reach OSS at {UNREACHABLE}",
    )
    for bad, rule in (
        ("Bad_Bucket", "only lowercase letters, digits and hyphens"),
        ("xy", "3 to 63 characters"),
        ("bucket-", "starts and ends with a lowercase letter or a digit"),
    ):
        cell(
            name,
            f"bucket-name-{bad}",
            [*[a if a != "autotag-demo" else bad for a in args], "--oss-endpoint", UNREACHABLE],
            BAD_INPUT,
            f"bucket name {bad!r}",
            rule,
        )
for name, args in {
    "invoke --remote": ["invoke", "tag-on-upload", "-e", "EVENT", "--remote", "--template", TEMPLATE],
    "deploy": ["deploy", "--dry-run", "--template", TEMPLATE],
    "replay --remote": ["replay", "--remote", "--file", "LETTERS", "--template", TEMPLATE],
}.items():
    cell(name, "wrong-access-key", args, UNREACHABLE_OR_REFUSED, "FC at", "InvalidAccessKeyID, HTTP 403")
    cell(name, "wrong-secret", args, UNREACHABLE_OR_REFUSED, "FC at", "SignatureNotMatch, HTTP 403")
    cell(
        name,
        "unreachable-endpoint",
        [*args, "--fc-endpoint", UNREACHABLE],
        UNREACHABLE_OR_REFUSED,
        f"cannot reach FC at {UNREACHABLE}",
    )
for name, args in {
    "invoke": ["invoke", "tag-on-upload", "-e", "EVENT"],
    "invoke --remote": ["invoke", "tag-on-upload", "-e", "EVENT", "--remote"],
    "replay": ["replay", "--file", "LETTERS"],
    "backfill": ["backfill", "--bucket", "autotag-demo"],
    "reconcile": ["reconcile", "OLD_RULES", "NEW_RULES", "--bucket", "autotag-demo"],
    "deploy": ["deploy", "--dry-run"],
    "local up": ["local", "up", "--oss-port", "0", "--fc-port", "0", "--cloudflow-port", "0"],
}.items():
    cell(
        name,
        "missing-template",
        [*args, "--template", "/nowhere/template.yml"],
        BAD_INPUT,
        "no template at /nowhere/template.yml",
    )
for name, args in {
    "reconcile": ["reconcile", "BAD_RULES", "NEW_RULES", "--bucket", "autotag-demo", "--template", TEMPLATE],
    "rules diff": ["rules", "diff", "OLD_RULES", "BAD_RULES"],
}.items():
    cell(name, "bad-rules-file", args, BAD_INPUT, "BAD_RULES", "rule 'r' (rules[0])")
cell(
    "invoke",
    "bad-event-file",
    ["invoke", "tag-on-upload", "-e", "BAD_EVENT", "--template", TEMPLATE],
    1,
    "tag-on-upload failed",
    "the event is not JSON",
)
cell(
    "invoke",
    "empty-event-file",
    ["invoke", "tag-on-upload", "-e", "EMPTY", "--template", TEMPLATE],
    2,
    "EMPTY",
    "is empty",
)
cell(
    "invoke --remote",
    "bad-event-file",
    ["invoke", "tag-on-upload", "-e", "BAD_EVENT", "--remote", "--template", TEMPLATE],
    1,
    "FC at",
    "the function failed: the event is not JSON",
)
cell(
    "replay",
    "bad-event-file",
    ["replay", "--file", "BAD_EVENT", "--template", TEMPLATE],
    BAD_INPUT,
    "BAD_EVENT",
    ":1: not JSON",
)
for name, args in {
    "invoke": ["invoke", "tag-on-upload", "-e", "HUGE_EVENT", "--template", TEMPLATE],
    "invoke --remote": ["invoke", "tag-on-upload", "-e", "HUGE_EVENT", "--remote", "--template", TEMPLATE],
}.items():  # too many records, each with a long key: said in a short line, not by repeating the event
    cell(name, "oversized-event", args, 1, "events: 101 entries; at most 100")
cell(
    "invoke",
    "oversized-timer-payload",
    ["invoke", "tag-expiry", "-e", "HUGE_TIMER_EVENT", "--template", TEMPLATE],
    1,
    "payload.buckets: 101 entries; at most 100",
)
for name, args in {
    "plan": ["plan", "--bucket", "autotag-demo", "--key", "a.jpg"],
    "sweep": ["sweep", "--bucket", "autotag-demo", "--dry-run"],
    "invoke": ["invoke", "tag-on-upload", "-e", "EVENT", "--template", TEMPLATE],
    "backfill": ["backfill", "--bucket", "autotag-demo", "--template", TEMPLATE],
    "local up": [
        "local",
        "up",
        "--oss-port",
        "0",
        "--fc-port",
        "0",
        "--cloudflow-port",
        "0",
        "--template",
        TEMPLATE,
    ],
}.items():
    cell(
        name,
        "bad-rules-file",
        [*args, "--rules", "BAD_RULES"],
        BAD_INPUT,
        "BAD_RULES",
        "rule 'r' (rules[0])",
    )


for name, args in {
    "invoke": ["invoke", "no-such-function", "-e", "EVENT", "--template", TEMPLATE],
    "invoke --remote": ["invoke", "no-such-function", "-e", "EVENT", "--remote", "--template", TEMPLATE],
    "logs": ["logs", "no-such-function", "--template", TEMPLATE],
    "trigger": ["trigger", "no-such-function", "--template", TEMPLATE],
}.items():  # the function the command names does not exist: not found, as a bucket or an object
    cell(name, "unknown-function", args, NOT_FOUND, "no function 'no-such-function'", "tag-on-upload")
cell(
    "plan",
    "missing-object",
    ["plan", "--bucket", "autotag-demo", "--key", "no-such-object.jpg"],
    NOT_FOUND,
    "oss://autotag-demo/no-such-object.jpg",
    "does not exist",
)


@pytest.mark.parametrize(("command", "condition"), sorted(CELLS), ids=[f"{c}|{k}" for c, k in sorted(CELLS)])
def test_every_command_fails_with_one_clear_line(
    command: str,
    condition: str,
    oss: LocalOSS,
    fc_api: str,
    template_bucket: oss2.Bucket,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # the commands' local state (.localcloud/) lands here
    template_bucket.put_object("a.jpg", b"x")
    files = {
        "EVENT": json.dumps({"events": []}),
        "BAD_EVENT": "this is not an event",
        "EMPTY": "",
        "LETTERS": "",
        "BAD_RULES": json.dumps({"version": 1, "rules": [{"name": "r", "tagz": {"k": "v"}}]}),
        "OLD_RULES": json.dumps({"version": 1, "rules": [{"name": "r", "tags": {"k": "old"}}]}),
        "NEW_RULES": json.dumps({"version": 1, "rules": [{"name": "r", "tags": {"k": "new"}}]}),
        "HUGE_EVENT": json.dumps(
            {"events": [oss_event_document("autotag-demo", "k" * 500)["events"][0]] * 101}  # type: ignore[index]
        ),
        "HUGE_TIMER_EVENT": json.dumps(
            {
                "triggerName": "nightly",
                "triggerTime": "2024-01-01T00:00:00Z",
                "payload": json.dumps({"buckets": [f"bucket-{i:03d}" for i in range(101)]}),
            }
        ),
    }
    paths = {}
    for name, text in files.items():
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(text)
    letter = {
        "requestContext": {
            "requestId": "r-1",
            "functionArn": "acs:fc:cn-hangzhou:1234567890123456:services/oss-autotag/functions/tag-on-upload",
            "approximateInvokeCount": 4,
        },
        "requestPayload": json.dumps({"events": []}),
        "responsePayload": json.dumps({"errorType": "RetryableFailure", "errorMessage": "OSS kept failing"}),
    }
    paths["LETTERS"].write_text(json.dumps(letter) + "\n")
    args, expected_code, says = CELLS[(command, condition)]
    args = [str(paths[a]) if a in paths else a for a in args]
    env = {
        "AUTOTAG_OSS_ENDPOINT": oss.endpoint,
        "AUTOTAG_FC_ENDPOINT": fc_api,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": LONG_TERM.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": LONG_TERM.access_key_secret,
        **CONDITIONS.get(condition, {}),
    }
    result = run(args, env)
    output = result.output
    assert result.exit_code == expected_code, output
    assert ("Traceback" not in output and result.exc_info is None) or result.exc_info[0] is SystemExit, output
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    assert len(errors[0]) < 400, errors[0]  # one line a person reads, never a document repeated
    assert "HTTP 200" not in errors[0]  # a function's error is no HTTP failure
    for expected in says:
        expected = str(paths.get(expected, expected))
        assert expected in errors[0], (expected, output)
    if "HTTP" in " ".join(says):
        assert re.search(r"request id [\w-]+\)", errors[0]), errors[0]
    assert "b'" not in errors[0] and "{'" not in errors[0]  # no raw bytes, no SDK dicts


# ---- what an operator relies on --------------------------------------------------------------------------


def test_with_nothing_given_commands_point_at_the_local_cloud() -> None:
    from autotag_cli.target import resolve

    target = resolve(
        oss_endpoint=None,
        fc_endpoint=None,
        region=None,
        account_id=None,
        access_key_id=None,
        access_key_secret=None,
        security_token=None,
        profile=None,
        environ={"HOME": "/nonexistent"},
    )
    assert (target.oss_endpoint, target.fc_endpoint, target.region) == (
        "http://127.0.0.1:9000",
        "http://127.0.0.1:9001",
        "cn-hangzhou",
    )
    assert (target.credentials.access_key_id, target.credentials.source) == (
        LONG_TERM.access_key_id,
        "local cloud defaults",
    )
    remote = resolve(
        oss_endpoint=None,
        fc_endpoint=None,
        region="cn-shanghai",
        account_id="1888",
        access_key_id="LTAIexample",
        access_key_secret="s",
        security_token=None,
        profile=None,
        environ={},
    )
    assert (remote.oss_endpoint, remote.fc_endpoint) == (
        "https://oss-cn-shanghai.aliyuncs.com",
        "https://1888.cn-shanghai.fc.aliyuncs.com",
    )
    with pytest.raises(click.UsageError, match="no credentials for Alibaba Cloud"):
        resolve(
            oss_endpoint=None,
            fc_endpoint=None,
            region="cn-shanghai",
            account_id=None,
            access_key_id=None,
            access_key_secret=None,
            security_token=None,
            profile=None,
            environ={"HOME": "/nonexistent"},
        )


def test_show_target_names_endpoints_and_the_key_id_but_never_the_secret(oss: LocalOSS) -> None:
    result = run(
        ["plan", "--bucket", "autotag-demo", "--key", "a", "--show-target", "--oss-endpoint", UNREACHABLE],
        {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIshow", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "very-secret"},
    )
    assert (
        f"target: OSS {UNREACHABLE}, region cn-hangzhou, AccessKey ID LTAIshow (environment)" in result.output
    )
    assert "very-secret" not in result.output


def test_backfill_tags_at_the_oss_it_lists(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--oss-endpoint (not the environment) says where: the listing and the tagging both go there."""
    monkeypatch.chdir(tmp_path)
    template_bucket.put_object("old/a.jpg", b"x")
    result = run(
        ["backfill", "--bucket", "autotag-demo", "--template", TEMPLATE, "--oss-endpoint", oss.endpoint], {}
    )
    assert result.exit_code == 0, result.output
    assert tags_of(template_bucket, "old/a.jpg")["kind"] == "image"


def test_backfill_never_loses_a_failure(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for key in ("in/1.txt", "in/2.txt", "in/3.txt"):
        template_bucket.put_object(key, b"x")
    base = ["backfill", "--bucket", "autotag-demo", "--template", TEMPLATE]
    env = {"AUTOTAG_OSS_ENDPOINT": oss.endpoint}
    oss.conditions.set_faults([FaultRule("error", 1.0, frozenset({"PutObjectTagging"}))])
    first = run([*base, "--prefix", "in/", "--max-failure-rate", "1", "--json"], env)
    oss.conditions.set_faults([])
    assert first.exit_code == 1, first.output
    (report,) = (tmp_path / ".localcloud" / "backfill").glob("autotag-demo-*.failed.csv")
    assert json.loads(first.output.splitlines()[-1])["report"] == str(report.relative_to(tmp_path))
    assert sorted(report.read_text().splitlines()) == [f"autotag-demo,in/{n}.txt" for n in (1, 2, 3)]
    (reasons,) = (tmp_path / ".localcloud" / "backfill").glob("autotag-demo-*.failed.reasons.jsonl")
    lines = [json.loads(line) for line in reasons.read_text().splitlines()]
    assert sorted(line["Key"] for line in lines) == ["in/1.txt", "in/2.txt", "in/3.txt"]
    assert len({line["Run"] for line in lines}) == 1

    # that run went through its listing (its failures are in its report): finished, nothing resumes it
    again = run([*base, "--prefix", "in/", "--json"], env)
    assert again.exit_code == 0 and "resuming" not in again.output, again.output
    assert json.loads(again.output.splitlines()[-1])["read"] == 3
    empty = run([*base, "--prefix", "nothing-here/"], env)
    assert (
        empty.exit_code == 0 and "nothing found under oss://autotag-demo/nothing-here/ at all" in empty.output
    )
    assert report.read_text().count("\n") == 3  # later runs never rewrite an earlier run's report

    retried = run([*base, "--manifest", str(report)], env)
    assert retried.exit_code == 0, retried.output
    assert all(tags_of(template_bucket, k)["kind"] == "text" for k in ("in/1.txt", "in/2.txt", "in/3.txt"))
    restarted = run([*base, "--prefix", "in/", "--restart", "--json"], env)
    assert json.loads(restarted.output.splitlines()[-1])["read"] == 3


def test_local_up_prints_a_line_per_invocation(local_up: LocalCloudProcess) -> None:
    bucket = oss2.Bucket(
        oss2.Auth(LONG_TERM.access_key_id, LONG_TERM.access_key_secret), local_up.oss_endpoint, "autotag-demo"
    )
    bucket.put_object("shown/a.jpg", b"x")
    line = local_up.line_containing("shown/a.jpg")
    assert re.search(
        r"^\d\d:\d\d:\d\d tag-on-upload PutObject shown/a\.jpg: tagged \[\d+ ms, 2 OSS requests\]", line
    ), line
    assert wait_for_tag(bucket, "shown/a.jpg", "kind")["kind"] == "image"


@pytest.mark.parametrize(
    ("delivery", "triggers"),
    [("eventbridge", "1 EventBridge trigger (event-driven)"), ("batched", "1 EventBridge trigger (batched)")],
)
def test_local_up_runs_a_template_moved_to_eventbridge(tmp_path: Path, delivery: str, triggers: str) -> None:
    """template.yml edited as docs/tag-on-upload.md moves a deployment to EventBridge (the OSS trigger
    deleted, an EventBridge trigger and for batches the rule enabled): the bucket its pattern watches
    exists, the ready line counts the triggers by kind, and each invocation's line names the delivery and
    its objects."""
    with local_cloud_process(tmp_path, template_variant(tmp_path, delivery)) as cloud:
        assert "buckets: autotag-demo, autotag-demo-state;" in cloud.banner[0], cloud.banner
        assert f"roles: {triggers}, timers" in cloud.banner[1], cloud.banner
        bucket = oss2.Bucket(
            oss2.Auth(LONG_TERM.access_key_id, LONG_TERM.access_key_secret),
            cloud.oss_endpoint,
            "autotag-demo",
        )
        if delivery == "eventbridge":
            bucket.put_object("moved/a.jpg", b"x")
            line = cloud.line_containing("tag-on-upload")
            assert re.search(
                r"^\d\d:\d\d:\d\d tag-on-upload EventBridge PutObject moved/a\.jpg: tagged "
                r"\[\d+ ms, 2 OSS requests\]",
                line,
            ), line
        else:
            for key in ("moved/a.jpg", "moved/b.png"):  # within the template's 5 s window: one batch
                bucket.put_object(key, b"x")
            line = cloud.line_containing("tag-on-upload")
            assert re.search(
                r"^\d\d:\d\d:\d\d tag-on-upload EventBridge batch of 2: 2 tagged, 0 unchanged, 0 refused "
                r"\[\d+ ms, 4 OSS requests\]",
                line,
            ), line
        assert wait_for_tag(bucket, "moved/a.jpg", "kind")["kind"] == "image"


def test_event_never_reads_oss_unless_asked(tmp_path: Path) -> None:
    env = {"AUTOTAG_OSS_ENDPOINT": UNREACHABLE}  # set, and nothing there: not read without --from-oss
    target = tmp_path / "event.json"
    made = run(["event", "oss", "--bucket", "bkt", "--key", "not/uploaded.jpg", "-o", str(target)], env)
    assert (
        made.exit_code == 0
        and json.loads(target.read_text())["events"][0]["oss"]["object"]["key"] == "not/uploaded.jpg"
    )
    failing = tmp_path / "failing.json"
    refused = run(["event", "oss", "--bucket", "bkt", "--key", "k", "--from-oss", "-o", str(failing)], env)
    assert refused.exit_code == UNREACHABLE_OR_REFUSED and not failing.exists()


def test_the_shells_rules_and_env_vars_reach_the_function(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    template_bucket.put_object("r/a.jpg", b"x")
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"version": 1, "rules": [{"name": "team", "tags": {"team": "blue"}}]}))
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps(
            {
                "events": [
                    json.loads(
                        run(["event", "oss", "--bucket", "autotag-demo", "--key", "r/a.jpg"], {}).output
                    )["events"][0]
                ]
            }
        )
    )
    env = {"AUTOTAG_OSS_ENDPOINT": oss.endpoint, "AUTOTAG_RULES": str(rules)}
    result = run(["invoke", "tag-on-upload", "-e", str(event), "--template", TEMPLATE], env)
    assert result.exit_code == 0, result.output
    assert tags_of(template_bucket, "r/a.jpg")["team"] == "blue"
    overrides = tmp_path / "env.json"
    overrides.write_text(json.dumps({"Parameters": {"AUTOTAG_STATE_PREFIX": "r/"}}))
    invoked = [
        "invoke",
        "tag-on-upload",
        "-e",
        str(event),
        "--template",
        TEMPLATE,
        "--env-vars",
        str(overrides),
    ]
    ignored = run(invoked, {"AUTOTAG_OSS_ENDPOINT": oss.endpoint})
    assert ignored.exit_code == 0 and '"outcome": "ignored"' in ignored.output, ignored.output
    # Every local function shares one process, so one function's value cannot differ from another's.
    overrides.write_text(json.dumps({"tag-on-upload": {"AUTOTAG_STATE_PREFIX": "r/"}}))
    conflict = run(invoked, {"AUTOTAG_OSS_ENDPOINT": oss.endpoint})
    assert conflict.exit_code == BAD_INPUT, conflict.output
    (line,) = [line for line in conflict.output.splitlines() if line.startswith("Error:")]
    assert "AUTOTAG_STATE_PREFIX is 'r/' in tag-on-upload and '.autotag/' in tag-expiry" in line, line
    assert f"{overrides}: give AUTOTAG_STATE_PREFIX under Parameters" in line, line


def test_plan_of_a_whole_bucket_leaves_out_the_sweeps_state(
    oss: LocalOSS, template_bucket: oss2.Bucket
) -> None:
    template_bucket.put_object("a.jpg", b"x")
    template_bucket.put_object(".autotag/sweep/x/checkpoint.json", b"{}")
    result = run(
        ["plan", "--bucket", "autotag-demo", "--prefix", "", "--json"], {"AUTOTAG_OSS_ENDPOINT": oss.endpoint}
    )
    assert [json.loads(line)["key"] for line in result.output.splitlines()] == ["a.jpg"]


def test_a_repeated_sweep_says_why_it_did_nothing(oss: LocalOSS, template_bucket: oss2.Bucket) -> None:
    template_bucket.put_object("a.jpg", b"x")
    env = {"AUTOTAG_OSS_ENDPOINT": oss.endpoint}
    at = ["--at", "2026-11-01T00:00:00Z"]
    assert run(["sweep", "--bucket", "autotag-demo", *at], env).exit_code == 0
    second = run(["sweep", "--bucket", "autotag-demo", *at], env)
    assert (
        "none: already swept up to this time with these rules (--full reconciles every object again)"
        in second.output
    )


def test_every_option_has_help_naming_its_env_var_and_default() -> None:
    problems = []

    def visit(command: click.Command, path: str) -> None:
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                visit(sub, f"{path} {name}")
            return
        for param in command.params:
            if isinstance(param, click.Option):
                if not param.help:
                    problems.append(f"{path} {param.opts[0]}: no help")
                if param.envvar and not param.show_envvar:
                    problems.append(f"{path} {param.opts[0]}: its env var is not shown")
                unset = type(param.default).__name__ == "Sentinel"  # click's "no default given"
                has_default = not unset and param.default not in (None, False, ()) and not param.is_flag
                if has_default and not param.show_default and "default" not in param.help.lower():
                    problems.append(f"{path} {param.opts[0]}: its default is not shown")

    visit(cli, "autotag")
    assert problems == []
    version = run(["--version"], {})
    assert version.exit_code == 0 and re.fullmatch(r"autotag, version \S+\n", version.output)


@pytest.mark.parametrize("taken", ["--oss-port", "--fc-port", "--cloudflow-port"])
def test_local_up_on_a_taken_port_says_so_at_once(taken: str, tmp_path: Path) -> None:
    autotag = Path(sys.executable).with_name("autotag")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        ports = {"--oss-port": "0", "--fc-port": "0", "--cloudflow-port": "0", taken: str(port)}
        options = [part for option in ports.items() for part in option]
        done = subprocess.run(
            [str(autotag), "local", "up", *options, "--template", TEMPLATE],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith(f"Error: cannot listen on 127.0.0.1:{port}"), done.stderr
    # what to do about it: another port, and how the other commands then find this cloud
    endpoint = {
        "--oss-port": "AUTOTAG_OSS_ENDPOINT",
        "--fc-port": "AUTOTAG_FC_ENDPOINT",
        "--cloudflow-port": "AUTOTAG_CLOUDFLOW_ENDPOINT",
    }[taken]
    assert taken in done.stderr and endpoint in done.stderr, done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_invoke_prints_a_result_naming_a_key_that_is_not_utf8(oss: LocalOSS, tmp_path: Path) -> None:
    """An event may carry a key as a JSON escape of a lone surrogate (no OSS key is named so): the
    function rejects it, and its answer, holding that key, is printed escaped instead of crashing."""
    autotag = Path(sys.executable).with_name("autotag")
    event = tmp_path / "event.json"
    document = json.dumps(oss_event_document("autotag-demo", "bad-\udc80.jpg"))  # ASCII: \\udc80 escaped
    event.write_text(document)
    done = subprocess.run(
        [str(autotag), "invoke", "tag-on-upload", "-e", str(event), "--template", TEMPLATE],
        env={**os.environ, "AUTOTAG_OSS_ENDPOINT": oss.endpoint, "PYTHONIOENCODING": "utf-8"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (result,) = json.loads(done.stdout)["results"]
    assert (result["key"], result["outcome"]) == ("bad-\udc80.jpg", "rejected")
    assert result["reason"] == "the key is not valid UTF-8 (character 4)"


@contextmanager
def cloud_without(tmp_path: Path, action: str) -> Iterator[tuple[LocalOSS, str]]:
    """A local OSS whose roles are template.yml's with one action taken out of the policies (RAM is the
    cloud's: the OSS enforces what the role has), with `autotag-demo` holding a.jpg; and that template."""
    (tmp_path / "functions").symlink_to(ROOT / "functions")
    text, removed = re.subn(
        rf"^ *- '{action}'\n", "", (ROOT / "template.yml").read_text(), count=1, flags=re.MULTILINE
    )
    assert removed == 1
    (tmp_path / "template.yml").write_text(text)
    roles = role_credentials(load_template(tmp_path / "template.yml").roles.values())
    with LocalOSS(credentials=[*DEFAULT_CREDENTIALS, *roles]) as oss:
        bucket = oss2.Bucket(
            oss2.Auth(LONG_TERM.access_key_id, LONG_TERM.access_key_secret), oss.endpoint, "autotag-demo"
        )
        bucket.create_bucket()
        bucket.put_object("a.jpg", b"x")
        for declared in load_template(tmp_path / "template.yml").buckets:  # the sweep's state bucket
            oss.store.create_bucket(declared.name)
        yield oss, str(tmp_path / "template.yml")


@pytest.mark.parametrize(
    ("action", "operation"), [("oss:GetObject", "HeadObject"), ("oss:PutObjectTagging", "PutObjectTagging")]
)
def test_a_missing_permission_is_named_as_one(tmp_path: Path, action: str, operation: str) -> None:
    """A role without an action it needs: the error names the action and says it is a permission the role
    lacks, not a passing fault of OSS's."""
    event = tmp_path / "event.json"
    event.write_text(json.dumps(oss_event_document("autotag-demo", "a.jpg", size=1)))
    with cloud_without(tmp_path, action) as (oss, template):
        result = run(
            ["invoke", "tag-on-upload", "-e", str(event), "--template", template],
            {"AUTOTAG_OSS_ENDPOINT": oss.endpoint},
        )
    assert result.exit_code == 1, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert f"{operation} 'a.jpg': 403 AccessDenied" in line, line
    assert f"permission denied: the caller's RAM policy does not allow {action}" in line, line
    assert "transient" not in line and "kept failing" not in line, line


def test_a_sweep_without_a_permission_says_which(tmp_path: Path) -> None:
    timer = tmp_path / "timer.json"
    payload = json.dumps({"buckets": ["autotag-demo"]})
    timer.write_text(
        json.dumps({"triggerTime": "2026-01-01T00:00:00Z", "triggerName": "t", "payload": payload})
    )
    with cloud_without(tmp_path, "oss:ListObjects") as (oss, template):
        env = {"AUTOTAG_OSS_ENDPOINT": oss.endpoint, "AUTOTAG_FANOUT": "in-process"}
        result = run(["invoke", "tag-expiry", "-e", str(timer), "--template", template], env)
    (sweep,) = json.loads(result.output)["sweeps"]
    assert "permission denied: the caller's RAM policy does not allow oss:ListObjects" in sweep["stopped"], (
        sweep
    )
    assert "kept failing" not in sweep["stopped"], sweep


@pytest.mark.parametrize("schema", ["cloudevents", "rawdata"])
def test_an_eventbridge_batch_from_event_oss_tags_each_object_through_invoke(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path, schema: str
) -> None:
    """`event oss --format eventbridge --batch N` writes what the batched trigger pushes, and the
    function as template.yml declares it tags every element's object (a key that is not ASCII too)."""
    bucket = template_bucket
    keys = [f"eb-{schema}/a.jpg", f"eb-{schema}/ünï 2.png"]
    for key in keys:
        bucket.put_object(key, b"x")
    env = {"AUTOTAG_OSS_ENDPOINT": oss.endpoint}
    batch = tmp_path / "batch.json"
    key_args = [arg for key in keys for arg in ("--key", key)]
    made = run(
        [
            "event",
            "oss",
            "--bucket",
            "autotag-demo",
            *key_args,
            "--format",
            "eventbridge",
            "--schema",
            schema,
            "--batch",
            "10",
            "-o",
            str(batch),
        ],
        env,
    )
    assert made.exit_code == 0, made.output
    assert len(json.loads(batch.read_text())) == len(keys)
    invoked = run(["invoke", "tag-on-upload", "-e", str(batch), "--template", TEMPLATE], env)
    assert invoked.exit_code == 0, invoked.output
    results = json.loads(invoked.output)["results"]
    assert sorted((r["key"], r["outcome"]) for r in results) == sorted((k, "tagged") for k in keys)
    assert all(tags_of(bucket, key).get("kind") == "image" for key in keys)


def test_event_oss_says_when_keys_do_not_fit_the_event() -> None:
    too_many = run(["event", "oss", "--bucket", "bkt", "--key", "a", "--key", "b"], {})
    over_batch = run(
        [
            "event",
            "oss",
            "--bucket",
            "bkt",
            "--key",
            "a",
            "--key",
            "b",
            "--format",
            "eventbridge",
            "--batch",
            "1",
        ],
        {},
    )
    assert (too_many.exit_code, over_batch.exit_code) == (2, 2)
    assert "2 keys do not fit one event; give --format eventbridge --batch N" in too_many.output
    assert "2 keys do not fit a batch of 1" in over_batch.output
    assert "Traceback" not in too_many.output + over_batch.output


def test_invoke_names_what_is_wrong_with_a_hostile_eventbridge_event(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    """Through the function as template.yml declares it: another service's CloudEvent is refused for its
    source, an empty object is told the shapes an event may have, and a 5,000-character key is never
    echoed whole, alone or in a batch's refused reasons (the batch's other object is still tagged)."""
    template_bucket.put_object("hostile/fine.jpg", b"x")
    (fine,) = oss_event_document("autotag-demo", "hostile/fine.jpg")["events"]  # type: ignore[index]
    (long,) = oss_event_document("autotag-demo", "k" * 5000)["events"]  # type: ignore[index]
    foreign = {**cloud_event(fine, "1234567890123456"), "source": "acs.ecs"}
    env = {"AUTOTAG_OSS_ENDPOINT": oss.endpoint}

    def invoke(document: object) -> click.testing.Result:
        event = tmp_path / "event.json"
        event.write_text(json.dumps(document))
        return run(["invoke", "tag-on-upload", "-e", str(event), "--template", TEMPLATE], env)

    refused = {
        "foreign": invoke(foreign),
        "empty": invoke({}),
        "long key": invoke(cloud_event(long, "1234567890123456")),
    }
    for case, result in refused.items():
        assert result.exit_code == 1, (case, result.output)
        (line,) = result.output.splitlines()
        assert line.startswith("Error: tag-on-upload failed: EventError: "), line
        assert "k" * 100 not in line and len(line) < 400 and "Traceback" not in line, line
    assert ".source: 'acs.ecs' is not acs.oss" in refused["foreign"].output
    assert '{"events": [...]}' in refused["empty"].output and "CloudEvent" in refused["empty"].output
    assert "5000 characters; at most 1023" in refused["long key"].output
    batch = invoke([cloud_event(fine, "1234567890123456"), cloud_event(long, "1234567890123456")])
    assert batch.exit_code == 0, batch.output
    answer = json.loads(batch.output)
    assert [(r["key"], r["outcome"]) for r in answer["results"]] == [("hostile/fine.jpg", "tagged")]
    (reason,) = [r["reason"] for r in answer["refused"]]
    assert reason == "[1].data.oss.object.key: 5000 characters; at most 1023", reason


@pytest.mark.parametrize(
    "args",
    [
        ["backfill", "--bucket", "bkt", "--rate", "nan"],
        ["backfill", "--bucket", "bkt", "--max-failure-rate", "nan"],
        ["sweep", "--bucket", "bkt", "--qps", "nan"],
    ],
)
def test_nan_is_refused_where_a_number_is_asked(args: list[str]) -> None:
    """NaN passes every bound of a range (it compares false), so it once ran a run unthrottled or with no
    breaker, and was written into a job's JSON, which JSON cannot hold."""
    result = run(args, {"AUTOTAG_OSS_ENDPOINT": UNREACHABLE, "AUTOTAG_FC_ENDPOINT": UNREACHABLE})
    assert result.exit_code == 2 and "'nan' is not a number" in result.output, result.output
    assert "Traceback" not in result.output


def test_local_up_logs_a_backfill_flows_batches_by_their_outcomes() -> None:
    from autotag_cli.invocation_log import format_record
    from localcloud.fc.runtime import DONE, InvocationRecord, InvocationResult

    event = json.dumps(
        {"Items": [{"Key": "a.jpg"}, {"Key": "b.jpg"}], "BatchInput": {"Bucket": "autotag-demo"}}
    )
    answer = {
        "Results": [
            {"Bucket": "autotag-demo", "Key": "a.jpg", "Outcome": "tagged"},
            {"Bucket": "autotag-demo", "Key": "b.jpg", "Outcome": "failed", "Reason": "OSS kept failing"},
        ],
        "Counts": {"tagged": 1, "failed": 1},
    }
    result = InvocationResult("r1", "tag-backfill", json.dumps(answer))
    line = format_record(InvocationRecord(DONE, "tag-backfill", "r1", 1, event.encode(), 2.5, result), now=0)
    assert (
        "tag-backfill backfill batch 2 items of oss://autotag-demo: 1 tagged, 1 failed: OSS kept" in line
    ), line
    assert "unknown shape" not in line


def test_local_up_logs_a_backfill_flows_report_step_by_its_execution_and_report() -> None:
    """The Report step's invocation is named as such (it once showed as "event (unknown shape)")."""
    from autotag_cli.invocation_log import format_record
    from localcloud.fc.runtime import DONE, InvocationRecord, InvocationResult

    event = json.dumps(
        {
            "CompletionReport": {
                "ResultWriterDetails": {"Bucket": "autotag-demo-state", "Key": "backfill/x/manifest.json"},
                "Report": {"bucket": "autotag-demo-state", "prefix": "backfill/reports/"},
                "Execution": "backfill-20261207-1",
            }
        }
    )
    answer = {
        "Report": "oss://autotag-demo-state/backfill/reports/backfill-20261207-1/report/report.json",
        "Objects": 3,
        "Counts": {"tagged": 2, "failed": 1},
        "FailedObjects": 1,
    }
    result = InvocationResult("r1", "tag-backfill", json.dumps(answer))
    line = format_record(InvocationRecord(DONE, "tag-backfill", "r1", 1, event.encode(), 0.5, result), now=0)
    assert "unknown shape" not in line, line
    assert "completion report of backfill-20261207-1" in line, line
    assert "3 objects: 2 tagged, 1 failed" in line and "report/report.json" in line, line


def test_local_up_log_lines_show_control_characters_escaped() -> None:
    """`autotag local up` prints a line per invocation naming the object and the error: a key's (or an
    error's) ESC, CR and LF are shown escaped, so one line stays one line and the terminal is left alone."""
    from autotag_cli.invocation_log import format_record
    from localcloud.fc.runtime import DEAD_LETTER, DONE, InvocationRecord, InvocationResult

    key = "in/x\x1b[2J\rforged\nline.jpg"
    event = json.dumps(oss_event_document("autotag-demo", key, size=1)).encode()
    failed = InvocationResult("r1", "tag-on-upload", None, "UnhandledInvocationError", f"{key!s}: refused")
    for record in (
        InvocationRecord(DONE, "tag-on-upload", "r1", 1, event, 0.1, failed),
        InvocationRecord(DEAD_LETTER, "tag-on-upload", "r1", 4, event, 0.0, failed, "after 4 attempt(s)"),
    ):
        line = format_record(record, now=0)
        assert not any(c in line for c in "\x1b\r\n"), repr(line)
        assert "in/x\\x1b[2J\\rforged\\nline.jpg" in line, line


def test_an_fc_endpoint_that_answers_but_is_no_fc_api_is_named_so(tmp_path: Path) -> None:
    """Something answers on --fc-endpoint (a proxy, another service): HTTP 404 with an empty body is not
    'cannot reach', and never a JSONDecodeError."""
    import http.server
    import threading

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        event = tmp_path / "event.json"
        event.write_text(json.dumps(oss_event_document("autotag-demo", "a.jpg")))
        result = run(
            ["invoke", "tag-on-upload", "-e", str(event), "--remote", "--template", TEMPLATE,
             "--fc-endpoint", endpoint],
            {"ALIBABA_CLOUD_ACCESS_KEY_ID": LONG_TERM.access_key_id,
             "ALIBABA_CLOUD_ACCESS_KEY_SECRET": LONG_TERM.access_key_secret},
        )  # fmt: skip
    finally:
        server.shutdown()
    assert result.exit_code == UNREACHABLE_OR_REFUSED, result.output
    (line,) = result.output.splitlines()
    assert f"FC at {endpoint} answered, but not as the API does (not JSON)" in line, line
    assert "JSONDecodeError" not in line and "cannot reach" not in line


def test_local_inventory_without_a_local_cloud_here_says_to_start_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(["local", "inventory", "--bucket", "autotag-demo"], {"AUTOTAG_OSS_ENDPOINT": UNREACHABLE})
    assert result.exit_code == UNREACHABLE_OR_REFUSED, result.output
    (line,) = result.output.splitlines()
    assert f"no local cloud of this folder serves {UNREACHABLE}" in line and "autotag local up" in line, line


def test_local_inventory_runs_one_and_refuses_another_destination_for_its_configuration(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autotag_cli.local_cloud_file import write_local_cloud_file

    monkeypatch.chdir(tmp_path)
    write_local_cloud_file(oss.endpoint, UNREACHABLE, oss.admin_token or "")  # as `autotag local up` does
    template_bucket.put_object("inv/a.txt", b"x")
    env = {"AUTOTAG_OSS_ENDPOINT": oss.endpoint}
    first = run(["local", "inventory", "--bucket", "autotag-demo"], env)
    assert first.exit_code == 0, first.output
    manifest = first.output.strip()
    assert manifest.startswith("oss://autotag-demo-inventory/inventory/autotag-demo/autotag-local/"), manifest
    assert manifest.endswith("/manifest.json")
    inventory = oss2.Bucket(template_bucket.auth, oss.endpoint, "autotag-demo-inventory", region=REGION)
    schema = json.loads(inventory.get_object(manifest.removeprefix("oss://autotag-demo-inventory/")).read())
    assert "TaggingCount" in schema["fileSchema"]  # what a reconcile passes untagged objects over by
    inventories = oss2.Bucket(template_bucket.auth, oss.endpoint, "autotag-demo-inventory", region=REGION)
    written = inventories.get_object(manifest.removeprefix("oss://autotag-demo-inventory/")).read()
    # OSS names a run's folder by its minute: a second run never overwrites the first's manifest.json
    template_bucket.put_object("inv/b.txt", b"x")
    second = run(["local", "inventory", "--bucket", "autotag-demo"], env)
    if second.exit_code == 0:  # the minute had changed: another folder
        assert second.output.strip() != manifest, second.output
    else:
        assert "already ran in this minute" in second.output and "Traceback" not in second.output, (
            second.output
        )
    assert inventories.get_object(manifest.removeprefix("oss://autotag-demo-inventory/")).read() == written
    other = run(["local", "inventory", "--bucket", "autotag-demo", "--destination", "autotag-demo"], env)
    assert other.exit_code == BAD_INPUT, other.output
    assert (
        "writes to autotag-demo-inventory, not autotag-demo: pass --destination autotag-demo-inventory"
        in (" ".join(other.output.split()))
    )
    template_bucket.delete_bucket_inventory_configuration("autotag-local")
    purge(oss2.Bucket(template_bucket.auth, oss.endpoint, "autotag-demo-inventory", region=REGION))


def test_a_templates_errors_name_its_file_and_the_place_in_it(tmp_path: Path) -> None:
    """Through the CLI: a policy the local cloud cannot enforce, deep in the template, is named with the
    file it is in (a user may have several templates)."""
    from click.testing import CliRunner

    from autotag_cli.main import cli

    document = yaml.safe_load((Path(__file__).parents[2] / "template.yml").read_text())
    document["Resources"]["oss-autotag"]["Properties"]["Policies"] = "AliyunOSSFullAccess"
    path = tmp_path / "other.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    result = CliRunner().invoke(
        cli, ["invoke", "tag-on-upload", "--template", str(path), "-e", "-"], input="{}"
    )
    assert result.exit_code == BAD_INPUT, result.output
    assert f"{path}: Resources.oss-autotag.Properties.Policies[0]: " in result.output, result.output


# ---- exit codes, and what a long run says when it is interrupted -------------------------------------------


def test_cli_md_documents_the_exit_codes_the_cli_gives() -> None:
    from autotag_cli import errors

    text = (ROOT / "docs" / "cli.md").read_text()
    documented = {int(code): meaning for code, meaning in re.findall(r"^\| `(\d+)` \| (.+?) \|$", text, re.M)}
    assert documented.keys() == {
        0,
        FAILED,
        BAD_INPUT,
        UNREACHABLE_OR_REFUSED,
        NOT_FOUND,
        INTERRUPTED,
        CLOSED_PIPE,
    }
    assert (
        errors.FAILED,
        errors.BAD_INPUT,
        errors.UNREACHABLE,
        errors.NOT_FOUND,
        errors.INTERRUPTED,
        errors.CLOSED_PIPE,
    ) == (
        FAILED,
        BAD_INPUT,
        UNREACHABLE_OR_REFUSED,
        NOT_FOUND,
        INTERRUPTED,
        CLOSED_PIPE,
    )


def test_a_sweep_of_several_buckets_goes_on_past_a_bad_one_and_names_each(
    oss: LocalOSS, template_bucket: oss2.Bucket
) -> None:
    template_bucket.put_object("a.jpg", b"x")
    env = {"AUTOTAG_OSS_ENDPOINT": oss.endpoint}
    misnamed = run(
        ["sweep", "--bucket", "Bad_Bucket", "--bucket", "autotag-demo", "--bucket", "x", "--dry-run"], env
    )
    assert misnamed.exit_code == BAD_INPUT, misnamed.output  # names OSS refuses: all said before any sweep
    (error,) = [line for line in misnamed.output.splitlines() if line.startswith("Error:")]
    assert "bucket name 'Bad_Bucket'" in error and "bucket name 'x'" in error, error
    assert "tag expiry sweep" not in misnamed.output

    buckets = ["no-such-bucket", "autotag-demo", "also-missing"]
    result = run(["sweep", *[a for b in buckets for a in ("--bucket", b)], "--dry-run"], env)
    assert result.exit_code == NOT_FOUND, result.output  # one kind of failure: its exit code
    assert "tag expiry sweep of oss://autotag-demo/" in result.output, result.output  # swept all the same
    assert (
        "oss://no-such-bucket/ not swept: " in result.output and "the bucket does not exist" in result.output
    )
    (error,) = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert "2 of 3 buckets not swept: no-such-bucket, also-missing" in error, error


def test_an_interrupted_backfill_says_how_to_resume_it(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    """Ctrl-C: exit 130 and the command that resumes it, not a bare `Aborted!`; run again, it resumes.

    Whatever the machine's speed, the interrupt lands mid-run: once the backfill has checkpointed, the
    local OSS holds its tagging requests until the interrupt is sent, and the many objects left at a low
    --rate keep it from finishing before it takes the interrupt."""
    import signal
    import threading

    for number in range(150):  # many batches, three batches of the flow's 50 and more
        template_bucket.put_object(f"slow/{number:03d}.txt", b"x")
    checkpoints = tmp_path / ".localcloud" / "backfill"
    held, interrupted = threading.Event(), threading.Event()

    def hold_after_the_first_checkpoint(request: Any) -> None:
        if request.api == "PutObjectTagging" and any(checkpoints.glob("*.checkpoint.json")):
            held.set()
            interrupted.wait(600)  # a bound only so that a failed test never leaves a server thread behind

    oss.conditions.hooks.append(hold_after_the_first_checkpoint)
    autotag = Path(sys.executable).with_name("autotag")
    command = [
        str(autotag),
        "backfill",
        "--bucket",
        "autotag-demo",
        "--prefix",
        "slow/",
        "--template",
        TEMPLATE,
    ]
    env = {**os.environ, "AUTOTAG_OSS_ENDPOINT": oss.endpoint}
    process = subprocess.Popen(
        [*command, "--workers", "1", "--rate", "5", "--restart"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C's default: a suite started in the background by a non-interactive shell (`... &`) has
        # SIGINT ignored, which every child inherits, and the interrupt would never reach the command.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        # Evidence it is working: it checkpointed and then asked to tag another object. No deadline: a run
        # that ends first fails here, saying so (pytest's timeout is the bound for one that never works).
        while not held.wait(0.5):
            if process.poll() is not None:
                ended = f"exit {process.returncode}: {process.communicate()[1]}"
                pytest.fail(f"the backfill ended before it was interrupted ({ended})")
        process.send_signal(signal.SIGINT)
    finally:
        interrupted.set()
    _, stderr = process.communicate()
    assert process.returncode == INTERRUPTED, stderr
    assert "Aborted!" not in stderr and "Traceback" not in stderr, stderr
    resume = "autotag backfill --bucket autotag-demo --prefix slow/ --template"
    assert "Interrupted" in stderr and resume in stderr and "--restart" not in stderr, stderr
    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "resuming the backfill of oss://autotag-demo/slow/ after" in again.stderr, again.stderr


def test_the_command_to_run_again_shows_no_secret() -> None:
    from autotag_cli.errors import ARGUMENTS, command_line

    given = [
        "backfill",
        "--bucket",
        "b-1",
        "--access-key-secret",
        "s3cret",
        "--security-token=t0ken",
        "--restart",
    ]
    with click.Context(cli) as context:
        context.meta[ARGUMENTS] = given
        shown = command_line(drop=("--restart",))
    assert shown == (
        "autotag backfill --bucket b-1 --access-key-secret '<secret>' '--security-token=<secret>'"
    ), shown


# Commands whose output is JSON already (events, a function's answer), or no result (servers, the demo).
PRINT_JSON_ANYWAY = {"event oss", "event timer", "invoke", "trigger", "local up", "local oss", "demo"}


def test_every_command_that_prints_results_can_print_them_as_json() -> None:
    def leaves(group: click.Group, path: str) -> Iterator[tuple[str, click.Command]]:
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                if command.invoke_without_command:
                    yield f"{path}{name}", command
                yield from leaves(command, f"{path}{name} ")
            else:
                yield f"{path}{name}", command

    missing = [
        name
        for name, command in leaves(cli, "")
        if name not in PRINT_JSON_ANYWAY and not any("--json" in p.opts for p in command.params)
    ]
    assert missing == [], missing


def test_rules_replay_and_deploy_print_json(
    oss: LocalOSS, fc_api: str, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    rules = tmp_path / "r.json"
    rules.write_text(json.dumps({"version": 1, "rules": [{"name": "a", "tags": {"a": "1"}}]}))
    env = {"AUTOTAG_OSS_ENDPOINT": oss.endpoint, "AUTOTAG_FC_ENDPOINT": fc_api}
    checked = json.loads(run(["rules", "check", str(rules), "--json"], env).stdout)
    assert (checked["rules"], len(checked["fingerprint"])) == (1, len(checked["fingerprint"])), checked
    pushed = run(["rules", "push", str(rules), "--to", "oss://autotag-demo/.autotag/r.json", "--json"], env)
    assert json.loads(pushed.stdout)["etag"], pushed.output
    letters = tmp_path / "letters.jsonl"
    letters.write_text("")
    replayed = json.loads(run(["replay", "--file", str(letters), "--dry-run", "--json"], env).stdout)
    assert replayed == {"source": str(letters), "letters": [], "replayed": 0, "failed": 0}, replayed
    flow_roles = load_template(TEMPLATE).flow_roles
    with LocalCloudFlow(oss.endpoint, fc_api, roles=flow_roles) as cloudflow:  # where the flows deploy
        env["AUTOTAG_CLOUDFLOW_ENDPOINT"] = f"http://{cloudflow.endpoint}"
        planned = run(["deploy", "--dry-run", "--json", "--template", TEMPLATE], env)
    assert planned.exit_code == 0, planned.output
    document = json.loads(planned.stdout)
    assert document["dryRun"] is True and {"resource", "action", "why"} <= set(document["plan"][0]), document
