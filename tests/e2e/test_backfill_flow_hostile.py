"""Backfill through the CloudFlow flows against the hostile cases of bulk work: overlong lines, a gzip data
file that inflates past its bound and a data file whose MD5 is not its manifest's; an inventory gone stale
(objects overwritten or deleted since its scan); cancelling an execution; and forged job state written into
the tagged bucket. One `autotag local up` per module (template.yml without its upload trigger), its inflate
bound lowered through AUTOTAG_LOCAL_CLOUDFLOW_MAX_INFLATED_BYTES so no test inflates hundreds of MB.

Each case runs an execution to its end through CloudFlow's official SDK or `autotag backfill --cloud`, then
asserts on the objects' tags in OSS, on the engine's counts and on the result files it wrote."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import oss2
import pytest
import requests
from alibabacloud_fnf20190315 import models
from alibabacloud_fnf20190315.client import Client
from click.testing import CliRunner
from conftest import STS, LocalCloudProcess, flow_template, local_cloud_process, readable, tags_of

from autotag_cli.main import cli
from cloudformats.items import MAX_ITEM_BYTES
from deployer.flows import cloudflow_client

ROOT = Path(__file__).parents[2]
BUCKET, STATE, INVENTORY = "autotag-demo", "autotag-demo-state", "autotag-demo-inventory"
PREFIX_FLOW = "oss-autotag-backfill-prefix"
INVENTORY_FLOW = "oss-autotag-backfill-inventory"
MANIFEST_FLOW = "oss-autotag-backfill-manifest"
INFLATE_BOUND = 256 * 1024  # the local cloud's bound on what an inventory data file may inflate to, here
IMAGE = {"kind": "image", "size": "small", "autotag": "kind size"}
SECRET = "local-secret-key"
# Executions run to their end on 2 cores shared with other workers, some on a deliberately slow local OSS.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloudProcess]:
    folder = tmp_path_factory.mktemp("hostile")
    template = flow_template(folder)
    bound = {"AUTOTAG_LOCAL_CLOUDFLOW_MAX_INFLATED_BYTES": str(INFLATE_BOUND)}
    with local_cloud_process(folder, template, "--concurrency", "8", env=bound) as running:
        bucket(running, BUCKET).create_bucket()  # no trigger watches it in this template
        for name in (STATE, INVENTORY):  # creating one's own bucket again is no error in OSS
            bucket(running, name).create_bucket()
        yield running


def bucket(cloud: LocalCloudProcess, name: str) -> oss2.Bucket:
    auth = oss2.StsAuth(STS.access_key_id, STS.access_key_secret, STS.security_token)
    return oss2.Bucket(auth, cloud.oss_endpoint, name, region="cn-hangzhou")


def flows(cloud: LocalCloudProcess) -> Client:
    return cloudflow_client(
        cloud.cloudflow_endpoint, "cn-hangzhou", STS.access_key_id, STS.access_key_secret, STS.security_token
    )


def admin(cloud: LocalCloudProcess) -> dict[str, str]:
    token = re.search(r"admin token: ([\w-]+)", cloud.banner[0])
    assert token, cloud.banner
    return {"Authorization": f"Bearer {token[1]}"}


def set_latency(cloud: LocalCloudProcess, milliseconds: int) -> None:
    requests.put(
        f"{cloud.oss_endpoint}/_admin/conditions",
        json={"latency_ms": milliseconds},
        headers=admin(cloud),
        timeout=10,
    ).raise_for_status()


def oss_stats(cloud: LocalCloudProcess) -> dict[str, int]:
    answer = requests.get(f"{cloud.oss_endpoint}/_admin/stats", headers=admin(cloud), timeout=10)
    answer.raise_for_status()
    return dict(answer.json()["requests"])


def given(source: dict[str, Any], tolerated: float = 0, concurrency: int = 4) -> dict[str, Any]:
    return {
        "bucket": BUCKET,
        "source": source,
        "report": {"bucket": STATE, "prefix": "backfill/reports/"},
        "concurrency": concurrency,
        "toleratedFailurePercentage": tolerated,
    }


def start(client: Client, flow: str, name: str, document: dict[str, Any]) -> None:
    client.start_execution(
        models.StartExecutionRequest(flow_name=flow, execution_name=name, input=json.dumps(document))
    )


def describe(client: Client, flow: str, name: str) -> Any:
    return client.describe_execution(
        models.DescribeExecutionRequest(flow_name=flow, execution_name=name)
    ).body


def wait_end(client: Client, flow: str, name: str, seconds: float = 300) -> Any:
    """The execution once it has ended; fails when it is still running after `seconds` (generous: the
    point is that it ends at all)."""
    deadline = time.monotonic() + seconds
    while True:
        described = describe(client, flow, name)
        if described.status not in ("Starting", "Running"):
            return described
        assert time.monotonic() < deadline, f"{flow}/{name} still {described.status} after {seconds} s"
        time.sleep(0.3)


def map_run(client: Client, flow: str, name: str) -> Any:
    return client.describe_map_run(
        models.DescribeMapRunRequest(flow_name=flow, execution_name=name, map_run_name="Backfill")
    ).body


def results(cloud: LocalCloudProcess, name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(every object's outcome from the succeeded batches, the failed entries) of the execution's
    result files in the report location."""
    state = bucket(cloud, STATE)
    manifest = json.loads(state.get_object(f"backfill/reports/{name}/Backfill/manifest.json").read())
    outcomes = [
        outcome
        for key in manifest["ResultFiles"]["SUCCEEDED"]
        for entry in json.loads(state.get_object(key).read())
        for outcome in entry["Output"]["Results"]
    ]
    failed = [
        entry
        for key in manifest["ResultFiles"]["FAILED"]
        for entry in json.loads(state.get_object(key).read())
    ]
    return outcomes, failed


def put_objects(cloud: LocalCloudProcess, keys: list[str]) -> None:
    target = bucket(cloud, BUCKET)
    for key in keys:
        target.put_object(key, b"x")


def untagged(cloud: LocalCloudProcess, keys: list[str]) -> list[str]:
    target = bucket(cloud, BUCKET)
    return [key for key in keys if readable(tags_of(target, key)) != IMAGE]


def gz(rows: list[str]) -> bytes:
    return gzip.compress("".join(f"{row}\n" for row in rows).encode(), mtime=0)


def inventory_row(key: str, size: int = 1) -> str:
    etag = "5B3C1A2E053D763E1B002CC607C5A0FE"
    return f'"{BUCKET}","{quote(key, safe="")}","{size}","2026-12-01T00:00:00.000Z","{etag}"'


def write_inventory(cloud: LocalCloudProcess, name: str, files: list[tuple[bytes, str | None]]) -> str:
    """An OSS inventory under <name>/ of the inventory bucket: each data file with the MD5 its manifest
    lists (its own unless another is given); the manifest.json's key."""
    inventory = bucket(cloud, INVENTORY)
    listed = []
    for number, (data, md5) in enumerate(files):
        key = f"{name}/data/{number}.csv.gz"
        inventory.put_object(key, data)
        listed.append({"key": key, "size": len(data), "MD5checksum": md5 or hashlib.md5(data).hexdigest()})
    manifest = {
        "sourceBucket": BUCKET,
        "destinationBucket": INVENTORY,
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag",
        "files": listed,
    }
    inventory.put_object(f"{name}/manifest.json", json.dumps(manifest).encode())
    return f"{name}/manifest.json"


def cli_run(cloud: LocalCloudProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """`autotag <args>` in a process of its own against the local cloud, as an operator runs it."""
    env = {
        **os.environ,
        **cloud.cli_environment(),
    }
    autotag = Path(sys.executable).with_name("autotag")
    return subprocess.run([str(autotag), *args], capture_output=True, text=True, env=env, timeout=120)


def cli_json(cloud: LocalCloudProcess, *args: str) -> dict[str, Any]:
    env = cloud.cli_environment()
    result = CliRunner().invoke(cli, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    (document,) = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    return dict(document)


def one_clean_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a refused command printed; no traceback, no secret."""
    printed = (result.stdout + result.stderr).strip()
    assert result.returncode != 0, printed
    assert "Traceback" not in printed and SECRET not in printed, printed
    assert len(printed.splitlines()) == 1, printed
    return printed


# ---- overlong lines, inflate bombs, MD5 mismatches ---------------------------------------------------------


def test_an_overlong_manifest_line_fails_alone_named_and_the_execution_ends(cloud: LocalCloudProcess) -> None:
    keys = [f"long/{n:02}.jpg" for n in range(20)]
    put_objects(cloud, keys)
    rows = [f"{BUCKET},{quote(k, safe='')}" for k in keys[:10]]
    rows += [f"{BUCKET}," + "x" * (MAX_ITEM_BYTES + 10)]  # line 11
    rows += [f"{BUCKET},{quote(k, safe='')}" for k in keys[10:]]
    bucket(cloud, STATE).put_object("backfill/manifests/long.csv", "\n".join(rows).encode() + b"\n")
    client = flows(cloud)
    source = {"bucket": STATE, "object": "backfill/manifests/long.csv"}

    # Tolerated: the execution succeeds, and the one failed item is the line, named with its file.
    start(client, MANIFEST_FLOW, "long-tolerated", given(source, tolerated=10))
    ended = wait_end(client, MANIFEST_FLOW, "long-tolerated")
    assert ended.status == "Succeeded", (ended.status, ended.output)
    counts = map_run(client, MANIFEST_FLOW, "long-tolerated").item_counts
    assert (counts.total, counts.succeed, counts.failed) == (21, 20, 1), counts
    assert untagged(cloud, keys) == []
    outcomes, failed = results(cloud, "long-tolerated")
    assert sorted(o["Key"] for o in outcomes) == keys and {o["Outcome"] for o in outcomes} == {"tagged"}
    (line,) = failed
    assert f"oss://{STATE}/backfill/manifests/long.csv line 11" in line["Cause"], line
    assert str(MAX_ITEM_BYTES) in line["Cause"], line

    # Not tolerated: the execution still ends (Failed), every other object is tagged, and the report that
    # names the line is written all the same.
    for key in keys:
        bucket(cloud, BUCKET).delete_object_tagging(key)
    start(client, MANIFEST_FLOW, "long-strict", given(source, tolerated=0))
    ended = wait_end(client, MANIFEST_FLOW, "long-strict")
    assert ended.status == "Failed", (ended.status, ended.output)
    assert "completion report" in ended.output, ended.output
    assert untagged(cloud, keys) == []
    # The completion report, written on the failed path too, names the line.
    part = (
        bucket(cloud, STATE).get_object("backfill/reports/long-strict/report/part-00000.csv").read().decode()
    )
    (rejected,) = [row for row in part.splitlines() if "long.csv line 11" in row]
    assert ",rejected," in rejected and str(MAX_ITEM_BYTES) in rejected, rejected
    _, failed = results(cloud, "long-strict")
    assert [f"oss://{STATE}/backfill/manifests/long.csv line 11" in f["Cause"] for f in failed] == [True]
    run = map_run(client, MANIFEST_FLOW, "long-strict")
    assert (run.status, run.item_counts.failed) == ("Failed", 1)


def test_inventory_data_files_with_a_long_line_a_bomb_and_a_bad_md5_fail_alone(
    cloud: LocalCloudProcess,
) -> None:
    keys = [f"inv/{n:02}.jpg" for n in range(40)]
    put_objects(cloud, keys)
    bad_md5 = [f"inv/bad/{n:02}.jpg" for n in range(5)]
    put_objects(cloud, bad_md5)
    long_line = f'"{BUCKET}","' + "y" * (MAX_ITEM_BYTES + 1) + '","1","t","e"'
    # a gzip file whose rows read well, then a run of padding rows that inflates past the bound
    bomb = gzip.compress(
        "".join(f"{inventory_row(k)}\n" for k in keys[20:30]).encode() + b"\n" * (INFLATE_BOUND * 4), mtime=0
    )
    assert len(bomb) < INFLATE_BOUND // 10
    manifest = write_inventory(
        cloud,
        "hostile",
        [
            (
                gz(
                    [inventory_row(k) for k in keys[:5]]
                    + [long_line]
                    + [inventory_row(k) for k in keys[5:10]]
                ),
                None,
            ),
            (gz([inventory_row(k) for k in bad_md5]), "0" * 32),  # the manifest lists another MD5
            (gz([inventory_row(k) for k in keys[10:20]]), None),
            (bomb, None),
            (gz([inventory_row(k) for k in keys[30:]]), None),
        ],
    )
    client = flows(cloud)
    start(
        client, INVENTORY_FLOW, "inv-hostile", given({"bucket": INVENTORY, "object": manifest}, tolerated=20)
    )
    ended = wait_end(client, INVENTORY_FLOW, "inv-hostile")
    assert ended.status == "Succeeded", (ended.status, ended.output)
    assert untagged(cloud, keys) == [], "the rows before and after each bad part are tagged"
    assert untagged(cloud, bad_md5) == bad_md5, "a data file that is not the manifest's is not trusted"
    counts = map_run(client, INVENTORY_FLOW, "inv-hostile").item_counts
    assert (counts.total, counts.succeed, counts.failed) == (43, 40, 3), counts
    outcomes, failed = results(cloud, "inv-hostile")
    assert sorted(o["Key"] for o in outcomes) == keys
    causes = sorted(f["Cause"] for f in failed)
    folder = f"oss://{INVENTORY}/hostile/data"
    assert causes[0].startswith(f"{folder}/0.csv.gz line 6: "), causes
    assert causes[1].startswith(f"{folder}/1.csv.gz") and "MD5" in causes[1], causes
    assert causes[2].startswith(f"{folder}/3.csv.gz line ") and str(INFLATE_BOUND) in causes[2], causes


# ---- a stale inventory -------------------------------------------------------------------------------------


def test_a_stale_inventory_tags_objects_as_they_are_now_and_reports_deleted_ones(
    cloud: LocalCloudProcess,
) -> None:
    target = bucket(cloud, BUCKET)
    keys = [f"stale/{n:02}.txt" for n in range(12)]
    for key in keys:
        target.put_object(key, b"x", headers={"x-oss-meta-owner": "alice"})
    manifest = write_inventory(cloud, "stale", [(gz([inventory_row(k) for k in keys]), None)])
    # after the scan: four overwritten (another owner, another type, a size class up), two deleted
    overwritten, deleted = keys[:4], keys[4:6]
    for key in overwritten:
        target.put_object(
            key, b"z" * (1024 * 1024 + 1), headers={"x-oss-meta-owner": "bob", "Content-Type": "image/png"}
        )
    # one more overwritten by an uploader who tags it, its owner tag their own: the uploader's tags stay
    uploader_key = keys[11]
    target.put_object(uploader_key, b"x", headers={"x-oss-tagging": "owner=carol&team=red"})
    for key in deleted:
        target.delete_object(key)
    client = flows(cloud)
    start(client, INVENTORY_FLOW, "stale-1", given({"bucket": INVENTORY, "object": manifest}))
    ended = wait_end(client, INVENTORY_FLOW, "stale-1")
    assert ended.status == "Succeeded", (ended.status, ended.output)

    now = {"kind": "text", "owner": "bob", "size": "medium", "autotag": "kind owner size"}
    before = {"kind": "text", "owner": "alice", "size": "small", "autotag": "kind owner size"}
    for key in overwritten:
        assert readable(tags_of(target, key)) == now, key
    for key in keys[6:11]:
        assert readable(tags_of(target, key)) == before, key
    assert readable(tags_of(target, uploader_key)) == {
        "owner": "carol",
        "team": "red",
        "kind": "text",
        "size": "small",
        "autotag": "kind size",
    }
    outcomes, failed = results(cloud, "stale-1")
    assert failed == []
    by_key = {o["Key"]: o for o in outcomes}
    assert sorted(by_key) == keys
    for key in deleted:  # reported, with the reason, and never counted as tagged
        assert by_key[key]["Outcome"] in ("skipped", "failed") and "gone" in by_key[key]["Reason"], by_key[
            key
        ]
    assert sum(o["Outcome"] == "tagged" for o in outcomes) == 10
    assert by_key[uploader_key]["Outcome"] == "tagged"


# ---- cancel ------------------------------------------------------------------------------------------------


def test_cancel_stops_before_the_next_batch_and_a_new_execution_tags_the_rest(
    cloud: LocalCloudProcess,
) -> None:
    keys = [f"cancel/{n:03}.jpg" for n in range(200)]
    put_objects(cloud, keys)
    client = flows(cloud)
    template = ["--template", str(ROOT / "template.yml")]
    set_latency(cloud, 150)  # a slow OSS: batches take seconds, so the execution is stopped mid-way
    try:
        references = []
        for how in ("cli", "sdk"):
            started = cli_json(
                cloud,
                "backfill",
                "--bucket",
                BUCKET,
                "--prefix",
                "cancel/",
                "--cloud",
                "--concurrency",
                "1",
                *template,
            )
            reference = started["execution"]
            flow, name = reference.split("/")
            references.append(reference)
            deadline = time.monotonic() + 300
            while _counts(client, flow, name)["Succeed"] < 50:
                assert time.monotonic() < deadline and describe(client, flow, name).status == "Running"
                time.sleep(0.2)
            if how == "cli":
                assert cli_json(cloud, "backfill", "cancel", reference, "--cloud") == {
                    "execution": reference,
                    "status": "Stopped",
                }
            else:
                client.stop_execution(
                    models.StopExecutionRequest(
                        flow_name=flow, execution_name=name, error="Cancelled", cause="test"
                    )
                )
            heads_at_stop = oss_stats(cloud).get("HeadObject", 0)
            # in flight at concurrency 1: one batch of at most 50 objects may finish; none starts after
            heads = _settled(lambda: oss_stats(cloud).get("HeadObject", 0))
            assert heads - heads_at_stop <= 50, (heads_at_stop, heads)
            status = cli_json(cloud, "backfill", "status", reference, "--cloud")
            assert status["status"] == "Stopped", status
            assert 50 <= status["items"]["done"] < 200 and status["items"]["failed"] == 0, status
            # every item read and not finished is counted aborted (once the batch in flight has ended)
            deadline = time.monotonic() + 120
            while True:
                stopped_run = map_run(client, flow, name)
                counts = stopped_run.item_counts
                if counts.total == counts.succeed + counts.failed + counts.aborted:
                    break
                assert time.monotonic() < deadline, counts.to_map()
                time.sleep(0.5)
            assert stopped_run.status == "Aborted" and counts.aborted > 0, (
                stopped_run.status,
                counts.to_map(),
            )
            status = cli_json(cloud, "backfill", "status", reference, "--cloud")
            assert (status["items"]["read"], status["items"]["done"]) == (counts.total, counts.succeed), (
                status
            )
    finally:
        set_latency(cloud, 0)
    assert untagged(cloud, keys), "the executions were stopped before the end"

    started = cli_json(cloud, "backfill", "--bucket", BUCKET, "--prefix", "cancel/", "--cloud", *template)
    assert started["execution"] not in references  # a new execution, not a resumed one
    flow, name = started["execution"].split("/")
    ended = wait_end(client, flow, name)
    assert ended.status == "Succeeded", (ended.status, ended.output)
    assert untagged(cloud, keys) == []
    outcomes, _ = results(cloud, name)
    assert {o["Outcome"] for o in outcomes} == {"tagged", "unchanged"}
    assert 0 < sum(o["Outcome"] == "tagged" for o in outcomes) < 200

    # the error paths: one line, no traceback, no secret
    stopped = one_clean_line(cli_run(cloud, "backfill", "cancel", references[0], "--cloud"))
    assert "Stopped" in stopped or "not Running" in stopped, stopped
    as_json = one_clean_line(cli_run(cloud, "backfill", "cancel", references[1], "--cloud", "--json"))
    assert "Stopped" in as_json or "not Running" in as_json, as_json
    ended_line = one_clean_line(cli_run(cloud, "backfill", "cancel", started["execution"], "--cloud"))
    assert "Succeeded" in ended_line, ended_line
    missing = one_clean_line(cli_run(cloud, "backfill", "status", f"{PREFIX_FLOW}/no-such", "--cloud"))
    assert "no-such" in missing, missing
    assert "not <flow>/<execution>" in one_clean_line(
        cli_run(cloud, "backfill", "cancel", "nonsense", "--cloud")
    )


def _counts(client: Client, flow: str, name: str) -> dict[str, int]:
    try:
        counts = map_run(client, flow, name).item_counts
    except Exception:  # the map run has not started yet
        return {"Succeed": 0}
    return {"Succeed": counts.succeed or 0}


def _settled(read: Any, seconds: float = 120) -> int:
    """`read()` once it gives the same value twice, 3 s apart."""
    deadline = time.monotonic() + seconds
    value = read()
    while time.monotonic() < deadline:
        time.sleep(3)
        again = read()
        if again == value:
            return int(value)
        value = again
    raise AssertionError(f"still changing after {seconds} s: {value}")


# ---- forged state ------------------------------------------------------------------------------------------

FORGED = {
    ".autotag/backfill/jobs/bf-forged/job.json": b'{"status": "complete", "bucket": "autotag-demo"}',
    ".autotag/backfill/jobs/bf-forged/done": b"",
    ".autotag/backfill/jobs/bf-forged/checkpoint.json": b'{"after": "forge/zzz", "done": true}',
    "forge/.autotag/job.json": b'{"status": "complete"}',
}


def test_forged_state_in_the_tagged_bucket_changes_nothing(cloud: LocalCloudProcess) -> None:
    """Runs last in its module: its execution lists the whole bucket."""
    target = bucket(cloud, BUCKET)
    keys = [f"forge/{n:03}.jpg" for n in range(150)]
    put_objects(cloud, keys)
    for key, body in FORGED.items():  # before
        target.put_object(key, body)
    before = {o.key: o.etag for o in oss2.ObjectIteratorV2(target)}
    client = flows(cloud)
    set_latency(cloud, 150)  # batches take seconds: the forging below lands while it runs
    try:
        start(client, PREFIX_FLOW, "forged", given({"prefix": ""}, concurrency=1))
        deadline = time.monotonic() + 300
        while _counts(client, PREFIX_FLOW, "forged")["Succeed"] < 1:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        during = {  # the state an old job would have read for this one, and a "finished" marker
            ".autotag/backfill/jobs/forged/job.json": b'{"status": "complete"}',
            ".autotag/backfill/jobs/forged/done": b"",
            ".autotag/backfill/forged/checkpoint.json": b'{"after": "forge/999.jpg"}',
            "forge/.autotag/forged/done": b"",
        }
        for key, body in during.items():
            target.put_object(key, body)
        assert describe(client, PREFIX_FLOW, "forged").status == "Running", "forged while it ran"
    finally:
        set_latency(cloud, 0)
    ended = wait_end(client, PREFIX_FLOW, "forged")
    assert ended.status == "Succeeded", (ended.status, ended.output)
    assert untagged(cloud, keys) == []

    # the flow wrote nothing into the tagged bucket: its objects, the forged ones, and the same contents
    after = {o.key: o.etag for o in oss2.ObjectIteratorV2(target)}
    during_etags = {k: v for k, v in after.items() if k in during}
    assert after == {**before, **during_etags}
    assert set(during_etags) == set(during)
    for key, body in {**FORGED, **during}.items():
        assert target.get_object(key).read() == body
    outcomes, _ = results(cloud, "forged")
    assert {o["Key"] for o in outcomes if o["Outcome"] == "tagged"} >= set(keys)
    assert bucket(cloud, STATE).object_exists("backfill/reports/forged/Backfill/manifest.json")


# ---- sources that cannot be read, and a bad bound --------------------------------------------------------


def test_a_source_that_cannot_be_read_ends_the_execution_naming_it(cloud: LocalCloudProcess) -> None:
    template = ["--template", str(ROOT / "template.yml")]
    client = flows(cloud)
    inventory = bucket(cloud, INVENTORY)
    inventory.put_object("garbage/manifest.json", b"\x1f\x8b not JSON")
    inventory.put_object(
        "orc/manifest.json", json.dumps({"fileFormat": "ORC", "fileSchema": "Key", "files": []})
    )
    for option, manifest, why in (
        ("--manifest", f"oss://{STATE}/backfill/manifests/no-such.csv", "NoSuchKey"),
        ("--manifest", f"oss://{BUCKET}/somewhere/list.csv", "AccessDenied"),  # not the flow role's to read
        ("--inventory", f"oss://{INVENTORY}/garbage/manifest.json", "not an inventory manifest"),
        ("--inventory", f"oss://{INVENTORY}/orc/manifest.json", "fileFormat 'ORC'"),
    ):
        started = cli_json(cloud, "backfill", "--bucket", BUCKET, option, manifest, "--cloud", *template)
        flow, name = started["execution"].split("/")
        ended = wait_end(client, flow, name)
        assert ended.status == "Failed" and why in ended.output, ended.output
        assert manifest.removeprefix("oss://") in ended.output, ended.output
        assert SECRET not in ended.output
        # status says it failed and why (the engine's Error and Cause), and exits 1: the work failed
        shown = cli_run(cloud, "backfill", "status", started["execution"], "--cloud")
        assert shown.returncode == 1 and "Failed" in shown.stdout, shown
        assert why in shown.stdout and manifest.removeprefix("oss://") in shown.stdout, shown
        assert "Traceback" not in shown.stdout + shown.stderr and SECRET not in shown.stdout + shown.stderr
        as_json = cli_run(cloud, "backfill", "status", started["execution"], "--cloud", "--json")
        assert (
            as_json.returncode == 1
            and why
            in json.loads(as_json.stdout)["error"]["cause"] + json.loads(as_json.stdout)["error"]["code"]
        ), as_json


def test_local_up_refuses_an_inflate_bound_that_is_no_number_in_one_line(tmp_path: Path) -> None:
    autotag = Path(sys.executable).with_name("autotag")
    ports = ["--oss-port", "0", "--fc-port", "0", "--cloudflow-port", "0"]
    result = subprocess.run(
        [str(autotag), "local", "up", *ports, "--template", str(ROOT / "template.yml")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "AUTOTAG_LOCAL_CLOUDFLOW_MAX_INFLATED_BYTES": "1GiB"},
        timeout=120,
    )
    line = one_clean_line(result)
    assert result.returncode == 2, result  # bad input (docs/cli.md)
    assert "AUTOTAG_LOCAL_CLOUDFLOW_MAX_INFLATED_BYTES" in line and "'1GiB'" in line, line
