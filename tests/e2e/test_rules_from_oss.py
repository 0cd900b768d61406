"""Rules kept in OSS (`AUTOTAG_RULES=oss://...`), through the local FC running template.yml's functions
under their roles: pushed with `autotag rules push`, picked up within AUTOTAG_RULES_MAX_AGE seconds with no
extra request per event, and a bad version ignored with the error reported."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import oss2
import pytest
from click.testing import CliRunner
from conftest import LONG_TERM, readable, tags_of

from autotag_cli.main import cli
from localcloud.fc import DeadLetterStore, LocalFC, load_template
from localcloud.oss import LocalOSS

ROOT = Path(__file__).parents[2]
# Where docs/rules.md keeps them: the state bucket, which no uploader may write (and no trigger watches).
STATE_BUCKET = "autotag-demo-state"
LOCATION = f"oss://{STATE_BUCKET}/rules.json"


def team_rules(value: str) -> str:
    return json.dumps({"version": 1, "rules": [{"name": "team", "tags": {"team": value}}]})


def push(oss: LocalOSS, path: Path, text: str) -> tuple[int, str]:
    path.write_text(text)
    env = {
        "AUTOTAG_OSS_ENDPOINT": oss.endpoint,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": LONG_TERM.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": LONG_TERM.access_key_secret,
    }
    result = CliRunner().invoke(cli, ["rules", "push", str(path), "--to", LOCATION], env=env)
    return result.exit_code, result.output


@pytest.fixture
def fc(oss: LocalOSS, template_bucket: oss2.Bucket) -> Iterator[LocalFC]:
    local = LocalFC(
        load_template(ROOT / "template.yml"),
        environment={
            "AUTOTAG_OSS_ENDPOINT": oss.endpoint,
            "AUTOTAG_RULES": LOCATION,
            "AUTOTAG_RULES_MAX_AGE": "1",
        },
        dead_letters=DeadLetterStore(),
        retry_base_seconds=0.01,
    )
    with local:
        local.wire_oss(oss)
        yield local


def state_bucket(oss: LocalOSS, template_bucket: oss2.Bucket) -> oss2.Bucket:
    """The bucket holding the rules, as the deployer writes it (past `autotag rules push`'s check)."""
    return oss2.Bucket(template_bucket.auth, oss.endpoint, STATE_BUCKET)


def settle(oss: LocalOSS, fc: LocalFC) -> list[dict[str, object]]:
    assert oss.notifier.drain(600) and fc.drain(600)
    summaries = [json.loads(r.payload or "{}") for r in fc.results if r.function == "tag-on-upload" and r.ok]
    assert all(r.ok for r in fc.results), [r.error_message for r in fc.results if not r.ok]
    fc.results.clear()
    return summaries


def test_rules_from_oss_change_without_a_redeploy(
    oss: LocalOSS, fc: LocalFC, template_bucket: oss2.Bucket, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = template_bucket
    code, output = push(oss, tmp_path / "rules.json", team_rules("blue"))
    assert code == 0 and "pushed" in output and "1 rules" in output, output
    settle(oss, fc)

    # Many events within max_age: the rules are read once, every object costs what it always does.
    oss.conditions.reset_counters()
    started = time.monotonic()
    for number in range(10):
        bucket.put_object(f"first/{number}.jpg", b"x")
    summaries = settle(oss, fc)
    elapsed = time.monotonic() - started
    rule_reads = oss.conditions.requests["GetObject"]
    per_object = sum(
        oss.conditions.requests[api] for api in ("HeadObject", "GetObjectTagging", "PutObjectTagging")
    )
    assert rule_reads <= 1 + elapsed / 1.0 + 1, (rule_reads, elapsed)  # at most one per max_age (1 s)
    assert per_object == 20 and [r["ossRequests"] for s in summaries for r in s["results"]] == [2] * 10  # type: ignore[index]
    assert all(readable(tags_of(bucket, f"first/{n}.jpg"))["team"] == "blue" for n in range(10))

    # A new version is picked up within max_age.
    code, _ = push(oss, tmp_path / "rules.json", team_rules("green"))
    assert code == 0
    time.sleep(1.2)
    bucket.put_object("second.jpg", b"x")
    (summary,) = settle(oss, fc)
    assert readable(tags_of(bucket, "second.jpg"))["team"] == "green"
    green = summary["rulesFingerprint"]

    # A bad version (written past the CLI's check) never replaces the good one; the error says where.
    bad = b'{"version": 1, "rules": [{"name": "x", "tagz": {"k": "v"}}]}'
    state_bucket(oss, bucket).put_object("rules.json", bad)
    time.sleep(1.2)
    with caplog.at_level(logging.ERROR, logger="autotag.rules"):
        bucket.put_object("third.jpg", b"x")
        (summary,) = settle(oss, fc)
    assert summary["rulesFingerprint"] == green
    assert readable(tags_of(bucket, "third.jpg"))["team"] == "green"
    # the rules' own error; other loggers' records (an upload summary naming the rules key) are not it
    (error,) = [
        r.getMessage()
        for r in caplog.records
        if r.name == "autotag.rules" and r.levelno >= logging.ERROR and "rules.json" in r.getMessage()
    ]
    assert (
        LOCATION in error
        and "(version " in error
        and "needs `tags`" in error
        and "still using version" in error
    )


def test_push_refuses_a_file_that_does_not_check(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    code, output = push(oss, tmp_path / "bad.json", '{"version": 1, "rules": []}')
    assert code == 2 and output.startswith("Error:") and "bad.json" in output
    with pytest.raises(oss2.exceptions.NoSuchKey):
        state_bucket(oss, template_bucket).head_object("rules.json")


NO_YAML = """
import importlib.abc, json, sys

class NoYaml(importlib.abc.MetaPathFinder):  # FC's Python runtimes have no PyYAML
    def find_spec(self, name, path=None, target=None):
        if name == "yaml" or name.startswith("yaml."):
            raise ImportError("no PyYAML on FC's runtimes")
        return None

sys.meta_path.insert(0, NoYaml())
sys.modules.pop("yaml", None)
from types import SimpleNamespace

import tag_on_upload, tag_expiry  # the entry modules template.yml names
from autotag.handlers.rules_source import current_rules
from autotag.rules import RulesError
from autotag.settings import Credentials, Settings

context = SimpleNamespace(region="cn-hangzhou", credentials=SimpleNamespace(
    access_key_id=sys.argv[2], access_key_secret=sys.argv[3], security_token=""))
fingerprints = []
for rules in ("default", sys.argv[1]):
    fingerprints.append(current_rules(Settings(rules=rules, endpoint=sys.argv[4]), context).fingerprint)
refused = []
for rules in (sys.argv[1].replace(".json", ".yaml"), sys.argv[5]):
    try:
        current_rules(Settings(rules=rules, endpoint=sys.argv[4]), context)
    except RulesError as error:
        refused.append(str(error))
print(json.dumps({"fingerprints": fingerprints, "refused": refused, "yaml": "yaml" in sys.modules}))
"""


def test_the_deployed_code_loads_its_rules_without_pyyaml(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    """FC's runtimes have no PyYAML: the rules loading of functions/ (shipped file, a file in the package,
    an OSS object) never needs it, and a YAML name is refused saying why, not as "not valid YAML"."""
    import subprocess
    import sys

    code, output = push(oss, tmp_path / "rules.json", team_rules("blue"))
    assert code == 0, output
    packaged = tmp_path / "packaged.yaml"
    packaged.write_text("version: 1\nrules: []\n")
    completed = subprocess.run(
        [
            *(sys.executable, "-c", NO_YAML, LOCATION),
            *(LONG_TERM.access_key_id, LONG_TERM.access_key_secret, oss.endpoint, str(packaged)),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT / "functions",
    )
    assert completed.returncode == 0, completed.stderr
    found = json.loads(completed.stdout.strip().splitlines()[-1])
    assert len(found["fingerprints"]) == 2 and not found["yaml"]
    assert len(found["refused"]) == 2 and all("read rules as JSON" in e for e in found["refused"]), found
    assert f"AUTOTAG_RULES oss://{STATE_BUCKET}/rules.yaml" in found["refused"][0]


def test_an_oversized_rules_object_is_never_downloaded(
    oss: LocalOSS, fc: LocalFC, template_bucket: oss2.Bucket, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A 64 MiB object where the rules were: refused from its Content-Length, its body left unread (the
    connection is dropped), and not asked for in full again at the next revalidation."""
    code, _ = push(oss, tmp_path / "rules.json", team_rules("blue"))
    assert code == 0
    time.sleep(1.1)  # past max_age: the instance (shared by this module's tests) takes this version
    template_bucket.put_object("warm.jpg", b"x")
    settle(oss, fc)
    huge = 64 * 1024 * 1024
    state_bucket(oss, template_bucket).put_object("rules.json", b" " * huge)
    settle(oss, fc)
    oss.conditions.reset_counters()
    with caplog.at_level(logging.ERROR, logger="autotag.rules"):
        for number in range(3):  # three revalidations, max_age (1 s) apart
            time.sleep(1.1)
            template_bucket.put_object(f"after/{number}.jpg", b"x")
            settle(oss, fc)
    assert [readable(tags_of(template_bucket, f"after/{n}.jpg")).get("team") for n in range(3)] == [
        "blue"
    ] * 3
    reads, sent = oss.conditions.requests["GetObject"], oss.conditions.bytes_sent["GetObject"]
    assert 2 <= reads <= 4, reads  # one conditional GET per revalidation, no retries
    assert sent < huge // 2, sent  # whatever socket buffers took before the client hung up, not the object
    (error,) = [r.getMessage() for r in caplog.records if "at most 1 MiB" in r.getMessage()]
    assert f"this one is {huge} bytes" in error and "still using version" in error


@pytest.mark.parametrize(
    ("location", "says"),
    [
        ("oss://rules-elsewhere/rules.json", "403 AccessDenied"),
        ("oss://no-such-bucket-here/rules.json", "NoSuchBucket"),
        ("oss://autotag-demo-state/rules.json", "NoSuchKey"),  # where the role may read: not pushed
    ],
)
def test_rules_that_cannot_be_read_are_named_with_the_fix(
    oss: LocalOSS, template_bucket: oss2.Bucket, location: str, says: str
) -> None:
    """Under the template's role: the error names AUTOTAG_RULES and the object, OSS's code, and what to
    change (the grant, when the role may not read it)."""
    elsewhere = oss2.Bucket(template_bucket.auth, oss.endpoint, "rules-elsewhere")
    elsewhere.create_bucket()
    elsewhere.put_object("rules.json", team_rules("red"))
    local = LocalFC(
        load_template(ROOT / "template.yml"),
        environment={"AUTOTAG_OSS_ENDPOINT": oss.endpoint, "AUTOTAG_RULES": location},
        dead_letters=DeadLetterStore(),
        retry_base_seconds=0.01,
    )
    try:
        with local:
            local.wire_oss(oss)
            template_bucket.put_object("photo.jpg", b"x")
            assert oss.notifier.drain(600) and local.drain(600)
    finally:
        elsewhere.delete_object("rules.json")
        elsewhere.delete_bucket()
    failures = [r.error_message for r in local.results if not r.ok]
    assert failures and not any(r.ok for r in local.results if r.function == "tag-on-upload")
    for message in failures:
        assert f"AUTOTAG_RULES {location}: cannot read the rules" in message and says in message, message
        if "AccessDenied" in says:
            assert "grant oss:GetObject on acs:oss:*:*:rules-elsewhere/rules.json" in message, message
        if "NoSuchKey" in says:
            assert "autotag rules push" in message, message


def test_a_hung_oss_endpoint_is_named_and_bounded_well_within_the_function_timeout() -> None:
    """A listener that accepts and never answers: the call gives up after the client's read timeout, and
    the error names OSS, the endpoint and the wait, not the function's timeout."""
    import socket

    from autotag.gateway import (
        CONNECT_TIMEOUT_SECONDS,
        READ_TIMEOUT_SECONDS,
        OssGateway,
        RetryPolicy,
        TransientOssError,
    )
    from autotag.handlers.clients import open_bucket

    upload = load_template(ROOT / "template.yml").functions["tag-on-upload"]
    worst = RetryPolicy().attempts * (CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS)
    assert worst + 3 * RetryPolicy().max_delay < upload.timeout, (worst, upload.timeout)

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
        bucket = open_bucket(oss2.Auth("id", "secret"), endpoint, "autotag-demo", timeouts=(1.0, 0.5))
        gateway = OssGateway(bucket, retry=RetryPolicy(attempts=2, sleep=lambda _seconds: None))
        with pytest.raises(TransientOssError) as caught:  # a silent server: each attempt ends at 0.5 s
            gateway.head("photo.jpg")
    assert (
        f"could not reach OSS at {endpoint} (ReadTimeout: no answer within 1 s to connect / 0.5 s to read)"
        in str(caught.value)
    )
    assert open_bucket(oss2.Auth("id", "secret"), endpoint, "rules-b").timeout == (
        CONNECT_TIMEOUT_SECONDS,
        READ_TIMEOUT_SECONDS,
    )
