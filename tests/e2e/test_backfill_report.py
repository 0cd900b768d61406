"""A backfill flow's completion report, end to end: `autotag local up` in its own process (template.yml
without its upload trigger), executions of the template's manifest flow started through the `autotag` CLI
and CloudFlow's official SDK.

- An execution with its own rules (`--rules oss://...`, pinned to the version read) over a manifest that
  names objects to tag, one gone, one in a bucket the function does not tag and a line that is no record:
  the report lists every one with its outcome, in parts of the size asked for, and `backfill status`
  shows the report and the counts per object.
- An execution whose rules changed after it started: every batch is refused, naming the versions, so each
  of its objects is `failed` with the engine's error; the failed manifests, split, are read back by
  `autotag backfill --manifest` (the laptop path), which tags them. Writing the report costs one PutObject
  per file, nothing per object.
- A manifest mixing `bucket,key` and `bucket,key,versionId` rows tags the version named, or the current
  object."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import oss2
import pytest
import requests
from alibabacloud_fnf20190315 import models
from click.testing import CliRunner
from conftest import STS, LocalCloudProcess, flow_template, local_cloud_process, readable, tags_of

from autotag_cli.main import cli
from deployer.flows import cloudflow_client

ROOT = Path(__file__).parents[2]
BUCKET, STATE = "autotag-demo", "autotag-demo-state"
FLOW = "oss-autotag-backfill-manifest"
REPORTS = "backfill/reports/"
# The execution's own rules: a kind of its own, so what tagged an object shows in its tags.
RULES = {
    "version": 1,
    "rules": [
        {
            "name": "flow-kind",
            "tags": {"kind": {"from": "extension", "map": {"jpg": "picture"}, "default": "other"}},
        }
    ],
}


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[LocalCloudProcess]:
    template = flow_template(tmp_path)
    with local_cloud_process(tmp_path, template, "--concurrency", "8") as running:
        yield running


def environment(cloud: LocalCloudProcess) -> dict[str, str]:
    return cloud.cli_environment()


def cli_json(cloud: LocalCloudProcess, *args: str, exit_code: int = 0) -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli, [*args, "--json"], env=environment(cloud))
    assert result.exit_code == exit_code, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


def buckets(cloud: LocalCloudProcess) -> tuple[oss2.Bucket, oss2.Bucket]:
    auth = oss2.StsAuth(STS.access_key_id, STS.access_key_secret, STS.security_token)
    data = oss2.Bucket(auth, cloud.oss_endpoint, BUCKET, region="cn-hangzhou")
    data.create_bucket()  # no trigger watches it in this template, so local up made none
    return data, oss2.Bucket(auth, cloud.oss_endpoint, STATE, region="cn-hangzhou")


def wait(client: Any, name: str) -> Any:
    deadline = time.monotonic() + 300
    while True:
        described = client.describe_execution(
            models.DescribeExecutionRequest(flow_name=FLOW, execution_name=name)
        ).body
        if described.status not in ("Starting", "Running") or time.monotonic() > deadline:
            return described
        time.sleep(0.5)


def start(cloud: LocalCloudProcess, name: str, given: dict[str, Any]) -> Any:
    client = cloudflow_client(
        cloud.cloudflow_endpoint, "cn-hangzhou", STS.access_key_id, STS.access_key_secret, STS.security_token
    )
    client.start_execution(
        models.StartExecutionRequest(flow_name=FLOW, execution_name=name, input=json.dumps(given))
    )
    return wait(client, name)


def report_of(state: oss2.Bucket, execution: str) -> tuple[dict[str, Any], list[list[str]]]:
    """report.json and every row of every part, in order (each part's header line checked)."""
    summary = json.loads(state.get_object(f"{REPORTS}{execution}/report/report.json").read())
    rows: list[list[str]] = []
    for key in summary["parts"]:
        lines = list(csv.reader(io.StringIO(state.get_object(key).read().decode(), newline="")))
        assert lines[0] == ["bucket", "key", "versionId", "outcome", "reason"], key
        rows += lines[1:]
    return summary, rows


def admin(cloud: LocalCloudProcess) -> dict[str, str]:
    token = re.search(r"admin token: ([\w-]+)", cloud.banner[0])
    assert token, cloud.banner
    return {"Authorization": f"Bearer {token[1]}"}


def test_the_report_lists_every_object_and_its_failed_manifests_tag_them_again(
    cloud: LocalCloudProcess, tmp_path: Path
) -> None:
    data, state = buckets(cloud)
    for number in range(12):
        data.put_object(f"rep/{number:02}.jpg", b"x")
    for number in range(10):
        data.put_object(f"-f/{number:02}.jpg", b"x")  # a key starting a formula, URL-encoded in CSV
    state.put_object("backfill/rules/r.json", json.dumps(RULES).encode())
    lines = [f"{BUCKET},rep/{n:02}.jpg" for n in range(12)]
    lines += ["autotag-elsewhere,x.jpg", f"{BUCKET},rep/missing.jpg", "a,b,c,d"]
    state.put_object("backfill/manifests/m.csv", ("\n".join(lines) + "\n").encode())
    state.put_object(
        "backfill/manifests/f.csv", "".join(f"{BUCKET},%2Df/{n:02}.jpg\n" for n in range(10)).encode()
    )

    # -- the execution's own rules, a report in parts of 4 rows --------------------------------------
    (started,) = cli_json(
        cloud, "backfill", "--bucket", BUCKET, "--cloud", "--manifest", f"oss://{STATE}/backfill/manifests/m.csv",
        "--rules", f"oss://{STATE}/backfill/rules/r.json", "--report-part-rows", "4",
        "--max-failure-rate", "1", "--template", str(ROOT / "template.yml"),
    )  # fmt: skip
    etag = state.head_object("backfill/rules/r.json").etag
    assert started["input"]["rules"] == f"oss://{STATE}/backfill/rules/r.json"
    assert started["input"]["rulesETag"] == etag and started["input"]["reportPartRows"] == 4
    *_, status = cli_json(cloud, "backfill", "status", started["execution"], "--cloud", "--watch", "1")
    execution = started["execution"].split("/")[1]
    assert status["status"] == "Succeeded", status
    summary, rows = report_of(state, execution)
    assert summary["parts"] == [f"{REPORTS}{execution}/report/part-0000{n}.csv" for n in range(4)]
    assert [len(r) for r in rows] == [5] * 15
    outcomes = {(row[0], row[1]): row[3] for row in rows}
    assert outcomes == {
        **{(BUCKET, f"rep/{n:02}.jpg"): "tagged" for n in range(12)},
        ("autotag-elsewhere", "x.jpg"): "rejected",
        (BUCKET, "rep/missing.jpg"): "skipped",
        ("", ""): "rejected",
    }
    unreadable = next(row for row in rows if row[0] == "")
    assert "line 15" in unreadable[4] and "4 fields" in unreadable[4], unreadable
    assert summary["counts"] == {"rejected": 2, "skipped": 1, "tagged": 12}
    assert summary["failed"] == [f"{REPORTS}{execution}/report/failed.csv"] and summary["failedObjects"] == 0
    assert state.get_object(summary["failed"][0]).read() == b""
    assert all(readable(tags_of(data, f"rep/{n:02}.jpg"))["kind"] == "picture" for n in range(12))
    assert status["report"] == f"oss://{STATE}/{REPORTS}{execution}/report/report.json"
    assert status["objects"] == {"rejected": 2, "skipped": 1, "tagged": 12}
    assert status["items"]["failed"] == 2 and status["items"]["succeeded"] == 13, status
    # the text says as much: the counts per outcome, and each path on a line of its own at 80 columns
    text = CliRunner().invoke(
        cli,
        ["backfill", "status", started["execution"], "--cloud"],
        env=environment(cloud),
        terminal_width=80,
    )
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert "objects: rejected 2, skipped 1, tagged 12" in lines, text.output
    assert lines[0] == f"execution: {started['execution']}", text.output
    assert all(len(line) <= 80 for line in lines if ": oss://" not in line and ": oss-" not in line), lines
    assert f"report: {status['report']}" in lines, text.output
    assert f"failed manifest (no failed object in it): oss://{STATE}/{summary['failed'][0]}" in lines

    # -- rules that changed after the execution started: every batch refused --------------------------
    requests.post(f"{cloud.oss_endpoint}/_admin/stats/reset", headers=admin(cloud), timeout=10)
    given = {
        "bucket": BUCKET,
        "source": {"bucket": STATE, "object": "backfill/manifests/f.csv"},
        "report": {"bucket": STATE, "prefix": REPORTS},
        "concurrency": 2,
        "toleratedFailurePercentage": 100,
        "rules": f"oss://{STATE}/backfill/rules/r.json",
        "rulesETag": "0" * 32,
        "reportPartRows": 4,
    }
    described = start(cloud, "changed-rules", given)
    assert described.status == "Succeeded", (described.status, described.output)
    stats = requests.get(f"{cloud.oss_endpoint}/_admin/stats", headers=admin(cloud), timeout=10).json()
    summary, rows = report_of(state, "changed-rules")
    assert {(row[1], row[3]) for row in rows} == {(f"%2Df/{n:02}.jpg", "failed") for n in range(10)}
    assert all("changed after it started" in row[4] and "0" * 32 in row[4] for row in rows), rows[0]
    assert summary["failed"] == [f"{REPORTS}changed-rules/report/failed-0000{n}.csv" for n in range(3)]
    assert summary["failedObjects"] == 10
    # Writing: the engine's result file and manifest, then one PutObject per report file; none per object.
    files = len(summary["parts"]) + len(summary["failed"]) + 1
    assert stats["requests"].get("PutObject") == 2 + files, stats["requests"]
    assert "PutObjectTagging" not in stats["requests"], stats["requests"]
    output = json.loads(described.output)
    assert output["Report"]["Report"] == f"oss://{STATE}/{REPORTS}changed-rules/report/report.json"
    assert output["Report"]["FailedObjects"] == 10, output

    # status shows where the failed objects are listed; the laptop path reads them back and tags them
    (status,) = cli_json(cloud, "backfill", "status", f"{FLOW}/changed-rules", "--cloud")
    assert status["failedManifests"] == [f"oss://{STATE}/{key}" for key in summary["failed"]]
    assert status["objects"] == {"failed": 10} and status["items"]["failed"] == 10
    text = CliRunner().invoke(
        cli, ["backfill", "status", f"{FLOW}/changed-rules", "--cloud"], env=environment(cloud)
    )
    assert "objects: failed 10" in text.output.splitlines(), text.output
    for manifest in status["failedManifests"]:
        assert f"failed objects (a --manifest): {manifest}" in text.output.splitlines(), text.output
    retry = tmp_path / "failed.csv"
    retry.write_bytes(b"".join(state.get_object(key).read() for key in summary["failed"]))
    result = CliRunner().invoke(
        cli,
        ["backfill", "--bucket", BUCKET, "--manifest", str(retry), "--template", str(ROOT / "template.yml")],
        env=environment(cloud),
    )
    assert result.exit_code == 0, result.output
    assert all(readable(tags_of(data, f"-f/{n:02}.jpg"))["kind"] == "image" for n in range(10))


def test_a_manifest_with_and_without_version_ids_tags_the_version_named(cloud: LocalCloudProcess) -> None:
    data, state = buckets(cloud)
    data.put_bucket_versioning(oss2.models.BucketVersioningConfig("Enabled"))
    first = data.put_object("v/a.jpg", b"first").versionid
    current = data.put_object("v/a.jpg", b"second").versionid
    data.put_object("v/b.jpg", b"x")
    manifest = f"{BUCKET},v/a.jpg,{first}\n{BUCKET},v/b.jpg\n"
    state.put_object("backfill/manifests/v.csv", manifest.encode())
    given = {
        "bucket": BUCKET,
        "source": {"bucket": STATE, "object": "backfill/manifests/v.csv"},
        "report": {"bucket": STATE, "prefix": REPORTS},
        "concurrency": 2,
        "toleratedFailurePercentage": 0,
    }
    described = start(cloud, "versions", given)
    assert described.status == "Succeeded", (described.status, described.output)
    assert readable(tags_of(data, "v/a.jpg", versionId=first))["kind"] == "image"
    assert tags_of(data, "v/a.jpg", versionId=current) == {}
    assert readable(tags_of(data, "v/b.jpg"))["kind"] == "image"
    _, rows = report_of(state, "versions")
    assert [(row[1], row[2], row[3]) for row in rows] == [
        ("v/a.jpg", first, "tagged"),
        ("v/b.jpg", "", "tagged"),
    ]


def test_past_its_tolerance_the_execution_fails_and_still_reports(cloud: LocalCloudProcess) -> None:
    data, state = buckets(cloud)
    for number in range(3):
        data.put_object(f"t/{number}.jpg", b"x")
    state.put_object("backfill/rules/r.json", json.dumps(RULES).encode())
    state.put_object("backfill/manifests/t.csv", "".join(f"{BUCKET},t/{n}.jpg\n" for n in range(3)).encode())
    given = {
        "bucket": BUCKET,
        "source": {"bucket": STATE, "object": "backfill/manifests/t.csv"},
        "report": {"bucket": STATE, "prefix": REPORTS},
        "concurrency": 1,
        "toleratedFailurePercentage": 0,
        "rules": f"oss://{STATE}/backfill/rules/r.json",
        "rulesETag": "0" * 32,
    }
    described = start(cloud, "intolerable", given)
    assert described.status == "Failed", described
    summary, rows = report_of(state, "intolerable")
    assert [(row[1], row[3]) for row in rows] == [(f"t/{n}.jpg", "failed") for n in range(3)]
    assert summary["failed"] == [f"{REPORTS}intolerable/report/failed.csv"]
    # a failed execution: status exits 1 (the work failed) and gives the engine's error
    (status,) = cli_json(cloud, "backfill", "status", f"{FLOW}/intolerable", "--cloud", exit_code=1)
    assert status["status"] == "Failed" and status["objects"] == {"failed": 3}, status
    assert status["error"]["code"] == "FnF.MapRunFailed", status
