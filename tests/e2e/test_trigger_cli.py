"""Time and triggers from the CLI: `autotag trigger` fires a template's timer as the trigger itself would
(its payload, the local cloud's clock, the function's role, through the FC API), and `autotag event timer
--trigger NAME --from-oss` writes that same event; "8 days later" on the local cloud expires what a week's
TTL covers."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import oss2
import pytest
import requests
from click.testing import CliRunner, Result
from conftest import LONG_TERM, LocalCloudProcess, local_cloud_process, readable, tags_of, wait_for_tag

from autotag_cli.main import cli
from localcloud.oss import LocalOSS

ROOT = Path(__file__).parents[2]
TEMPLATE = str(ROOT / "template.yml")


def run(*args: str, **env: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "200", **env}, terminal_width=200)


def admin_token(cloud: LocalCloudProcess) -> str:
    found = re.search(r"admin token: (\S+?)[;)]", cloud.banner[0])
    assert found, cloud.banner
    return found[1]


def move_clock(cloud: LocalCloudProcess, offset: str) -> None:
    """The local cloud's clock `offset` from the real one, through the local OSS's admin API."""
    answer = requests.put(
        f"{cloud.oss_endpoint}/_admin/clock",
        json={"offset": offset},
        headers={"Authorization": f"Bearer {admin_token(cloud)}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


@pytest.fixture
def cloud(tmp_path: Path) -> LocalCloudProcess:
    with local_cloud_process(tmp_path, ROOT / "template.yml") as running:
        yield running  # type: ignore[misc]


def test_trigger_fires_the_templates_timer_at_the_local_clouds_time(cloud: LocalCloudProcess) -> None:
    """A week's TTL, the local cloud 8 days later: the timer, fired now, expires the tag."""
    bucket = oss2.Bucket(
        oss2.Auth(LONG_TERM.access_key_id, LONG_TERM.access_key_secret), cloud.oss_endpoint, "autotag-demo"
    )
    bucket.put_object("tmp/a.log", b"x")
    assert readable(wait_for_tag(bucket, "tmp/a.log", "lifecycle")).get("lifecycle") == "temporary"
    move_clock(cloud, "8d")
    endpoints = {"AUTOTAG_OSS_ENDPOINT": cloud.oss_endpoint, "AUTOTAG_FC_ENDPOINT": cloud.fc_api_endpoint}
    fired = run("trigger", "tag-expiry", "--template", TEMPLATE, **endpoints)
    assert fired.exit_code == 0, fired.output
    assert "nightly-expiry" in fired.output and "OSS's clock" in fired.output, fired.output
    (sweep,) = json.loads(fired.stdout)["sweeps"]
    assert sweep["tagsRemoved"] == 1, sweep
    assert "lifecycle" not in readable(tags_of(bucket, "tmp/a.log"))
    queued = run("trigger", "tag-expiry", "nightly-expiry", "--async", "--template", TEMPLATE, **endpoints)
    assert queued.exit_code == 0 and "queued" in queued.output, queued.output
    assert cloud.line_containing("tag-expiry timer nightly-expiry at "), "the queued timer event never ran"


def test_trigger_names_what_it_cannot_fire(cloud: LocalCloudProcess) -> None:
    endpoints = {"AUTOTAG_OSS_ENDPOINT": cloud.oss_endpoint, "AUTOTAG_FC_ENDPOINT": cloud.fc_api_endpoint}
    upload = run("trigger", "tag-on-upload", "--template", TEMPLATE, **endpoints)
    assert upload.exit_code == 2 and "no timer trigger" in upload.output, upload.output
    assert "autotag event oss" in upload.output  # how to give it an upload's event instead
    unknown = run("trigger", "tag-expiry", "weekly", "--template", TEMPLATE, **endpoints)
    assert unknown.exit_code == 2 and "nightly-expiry" in unknown.output, unknown.output


def test_event_timer_writes_the_templates_trigger_at_osss_clock(oss: LocalOSS) -> None:
    oss.clock.offset = timedelta(days=8)
    written = run(
        "event", "timer", "--trigger", "nightly-expiry", "--from-oss", "--template", TEMPLATE,
        AUTOTAG_OSS_ENDPOINT=oss.endpoint,
    )  # fmt: skip
    assert written.exit_code == 0, written.output
    event = json.loads(written.stdout)
    assert event["triggerName"] == "nightly-expiry"
    assert json.loads(event["payload"]) == {"buckets": ["autotag-demo"], "workers": 16, "qps": 400}
    when = datetime.fromisoformat(event["triggerTime"].replace("Z", "+00:00"))
    assert abs(when - (datetime.now(timezone.utc) + timedelta(days=8))) < timedelta(minutes=1), when


def test_trigger_fails_when_the_functions_answer_says_the_sweep_was_refused(cloud: LocalCloudProcess) -> None:
    """A trigger time ahead of OSS's clock: the function refuses the sweep (`complete: false`), and the
    command says so in one Error line and exits 1, as `autotag sweep` does for the same refusal."""
    endpoints = {"AUTOTAG_OSS_ENDPOINT": cloud.oss_endpoint, "AUTOTAG_FC_ENDPOINT": cloud.fc_api_endpoint}
    fired = run("trigger", "tag-expiry", "--at", "2030-01-01T00:00:00Z", "--template", TEMPLATE, **endpoints)
    (sweep,) = json.loads(fired.stdout)["sweeps"]
    assert sweep["complete"] is False, sweep
    assert fired.exit_code == 1, fired.output
    errors = [line for line in fired.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "ahead" in errors[0] and "autotag-demo" in errors[0], fired.stderr
