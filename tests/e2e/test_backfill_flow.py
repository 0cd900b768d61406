"""Backfill as CloudFlow's distributed Map, end to end: `autotag local up` in its own process (template.yml
without its upload trigger: the objects were there first, which is what a backfill is for), 200 objects,
an execution of the template's prefix flow started through CloudFlow's official SDK. It ends; every object
is tagged as the rules say, uploader tags kept; the result files are in the report location; and the
local OSS counts one HEAD and one PutObjectTagging per untagged object, nothing else per object."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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
OBJECTS = 200
FLOW = "oss-autotag-backfill-prefix"


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[LocalCloudProcess]:
    template = flow_template(tmp_path)
    with local_cloud_process(tmp_path, template, "--concurrency", "8") as running:
        yield running


def expected(number: int) -> tuple[str, dict[str, str], dict[str, str]]:
    """(key, headers to upload with, the tags the rules give it): a quarter each of plain images, text
    with an owner in its metadata, images carrying an uploader's tag, and videos further down."""
    kind = number % 4
    if kind == 0:
        return f"bulk/{number:03}.jpg", {}, {"kind": "image", "size": "small", "autotag": "kind size"}
    if kind == 1:
        tags = {"kind": "text", "owner": "alice", "size": "small", "autotag": "kind owner size"}
        return f"bulk/{number:03}.txt", {"x-oss-meta-owner": "alice"}, tags
    if kind == 2:
        tags = {"team": "red", "kind": "image", "size": "small", "autotag": "kind size"}
        return f"bulk/{number:03}.jpg", {"x-oss-tagging": "team=red"}, tags
    return f"bulk/deep/er/{number:03}.mp4", {}, {"kind": "video", "size": "small", "autotag": "kind size"}


def test_the_prefix_flow_tags_every_object_with_two_requests_each(cloud: LocalCloudProcess) -> None:
    auth = oss2.StsAuth(STS.access_key_id, STS.access_key_secret, STS.security_token)
    bucket = oss2.Bucket(auth, cloud.oss_endpoint, BUCKET, region="cn-hangzhou")
    bucket.create_bucket()  # no trigger watches it in this template, so local up made none
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda n: bucket.put_object(expected(n)[0], b"x", headers=expected(n)[1]), range(OBJECTS)
            )
        )
    token = re.search(r"admin token: ([\w-]+)", cloud.banner[0])
    assert token, cloud.banner
    admin = {"Authorization": f"Bearer {token[1]}"}
    requests.post(f"{cloud.oss_endpoint}/_admin/stats/reset", headers=admin, timeout=10).raise_for_status()

    client = cloudflow_client(
        cloud.cloudflow_endpoint, "cn-hangzhou", STS.access_key_id, STS.access_key_secret, STS.security_token
    )
    given = {
        "bucket": BUCKET,
        "source": {"prefix": "bulk/"},
        "report": {"bucket": STATE, "prefix": "backfill/reports/"},
        "concurrency": 4,
        "toleratedFailurePercentage": 0,
    }
    started = client.start_execution(
        models.StartExecutionRequest(flow_name=FLOW, execution_name="bulk-1", input=json.dumps(given))
    ).body
    assert started.status in ("Starting", "Running"), started
    deadline = time.monotonic() + 300
    while True:
        described = client.describe_execution(
            models.DescribeExecutionRequest(flow_name=FLOW, execution_name="bulk-1")
        ).body
        if described.status not in ("Starting", "Running") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert described.status == "Succeeded", (described.status, described.output)
    stats = requests.get(f"{cloud.oss_endpoint}/_admin/stats", headers=admin, timeout=10).json()["requests"]

    output = json.loads(described.output)
    assert output["ItemCounts"]["Total"] == OBJECTS and output["ItemCounts"]["Failed"] == 0, output
    for number in range(OBJECTS):
        key, _, tags = expected(number)
        assert readable(tags_of(bucket, key)) == tags, key

    # The engine's result files: every batch's outcomes, one per object, and the manifest written last.
    state = oss2.Bucket(auth, cloud.oss_endpoint, STATE, region="cn-hangzhou")
    details = output["ResultWriterDetails"]
    assert details["Bucket"] == STATE and details["ManifestKey"].startswith("backfill/reports/bulk-1/")
    manifest = json.loads(state.get_object(details["ManifestKey"]).read())
    assert manifest["ItemCounts"] == {"SUCCEEDED": OBJECTS, "FAILED": 0}
    outcomes = [
        result
        for key in manifest["ResultFiles"]["SUCCEEDED"]
        for batch in json.loads(state.get_object(key).read())
        for result in batch["Output"]["Results"]
    ]
    assert sorted(r["Key"] for r in outcomes) == sorted(expected(n)[0] for n in range(OBJECTS))
    assert {r["Outcome"] for r in outcomes} == {"tagged"}

    # Per object: one HEAD, one PutObjectTagging, and GetObjectTagging only where an uploader's tags were.
    untagged = sum(1 for n in range(OBJECTS) if "x-oss-tagging" not in expected(n)[1])
    assert stats.get("HeadObject") == OBJECTS and stats.get("PutObjectTagging") == OBJECTS, stats
    assert stats.get("GetObjectTagging", 0) == OBJECTS - untagged, stats
    per_object = {"HeadObject", "PutObjectTagging", "GetObjectTagging"}
    assert set(stats) - per_object <= {"ListObjects", "ListObjectsV2", "PutObject", "GetObject"}, stats
    # so an untagged object cost (HEAD + PutObjectTagging) / objects requests, GetObjectTagging going only
    # to the objects an uploader had tagged
    assert (stats["HeadObject"] + stats["PutObjectTagging"]) / OBJECTS <= 2.01
    bookkeeping = sum(n for api, n in stats.items() if api not in per_object)
    # a listing and the result files with their manifest; the Report step reads those back and writes a
    # part, failed.csv and report.json
    files = len(manifest["ResultFiles"]["SUCCEEDED"]) + 1
    assert bookkeeping <= 1 + files + files + 3, stats
    report = json.loads(state.get_object("backfill/reports/bulk-1/report/report.json").read())
    assert report["counts"] == {"tagged": OBJECTS} and len(report["parts"]) == 1

    # local up shows the execution's progress, and its end
    ended = cloud.line_containing(f"CloudFlow {FLOW}/bulk-1: Succeeded")
    assert f"{OBJECTS} of {OBJECTS} items read so far done, 0 failed" in ended, ended


def cli_json(cloud: LocalCloudProcess, *args: str) -> list[dict[str, Any]]:
    """`autotag <args> --json` against the local cloud's OSS and CloudFlow; one document per line."""
    env = cloud.cli_environment()
    result = CliRunner().invoke(cli, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


def test_backfill_cloud_starts_status_follows_and_cancel_stops(cloud: LocalCloudProcess) -> None:
    auth = oss2.StsAuth(STS.access_key_id, STS.access_key_secret, STS.security_token)
    bucket = oss2.Bucket(auth, cloud.oss_endpoint, BUCKET, region="cn-hangzhou")
    bucket.create_bucket()
    for number in range(60):
        bucket.put_object(f"cli/{number:02}.jpg", b"x")
    template = ["--template", str(ROOT / "template.yml")]
    (started,) = cli_json(cloud, "backfill", "--bucket", BUCKET, "--prefix", "cli/", "--cloud", *template)
    assert started["flow"] == FLOW and started["execution"].startswith(f"{FLOW}/bf-")
    assert started["input"]["report"] == {"bucket": STATE, "prefix": "backfill/reports/"}
    *_, last = cli_json(cloud, "backfill", "status", started["execution"], "--cloud", "--watch", "1")
    assert last["status"] == "Succeeded", last
    assert last["items"] == {"done": 60, "succeeded": 60, "failed": 0, "read": 60}
    name = started["execution"].split("/")[1]
    assert last["results"] == f"oss://{STATE}/backfill/reports/{name}/Backfill/"
    assert last["report"] == f"oss://{STATE}/backfill/reports/{name}/report/report.json"
    assert last["objects"] == {"tagged": 60}
    assert all(readable(tags_of(bucket, f"cli/{n:02}.jpg"))["kind"] == "image" for n in range(60))

    # A slow OSS keeps the next execution running long enough to be stopped mid-way.
    token = re.search(r"admin token: ([\w-]+)", cloud.banner[0])
    assert token
    slow = {"latency_ms": 300}
    admin = {"Authorization": f"Bearer {token[1]}"}
    requests.put(f"{cloud.oss_endpoint}/_admin/conditions", json=slow, headers=admin, timeout=10)
    for number in range(60):
        bucket.delete_object_tagging(f"cli/{number:02}.jpg")
    (again,) = cli_json(
        cloud, "backfill", "--bucket", BUCKET, "--prefix", "cli/", "--cloud", "--concurrency", "1", *template
    )
    (stopped,) = cli_json(cloud, "backfill", "cancel", again["execution"], "--cloud")
    assert stopped == {"execution": again["execution"], "status": "Stopped"}
    (status,) = cli_json(cloud, "backfill", "status", again["execution"], "--cloud")
    assert status["status"] == "Stopped" and status["items"]["done"] < 60, status
    requests.put(f"{cloud.oss_endpoint}/_admin/conditions", json={"latency_ms": 0}, headers=admin, timeout=10)
