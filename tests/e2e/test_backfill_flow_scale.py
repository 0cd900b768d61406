"""Backfill through CloudFlow's distributed Map at scale, killed mid-way. `autotag local up --data-dir D`
runs in its own process (template.yml without its upload trigger); the bucket holds objects under many
folders with four kinds of key, some with an uploader's tag, some with an owner in their metadata; OSS
throttles and fails a share of HEAD, GetObjectTagging and PutObjectTagging requests; an execution of the
template's prefix flow is started through CloudFlow's official SDK. Part-way the local cloud is SIGKILLed
and started again on the same data directory: the execution resumes there (the batches finished before
the kill are kept, those in flight run again) and succeeds. Then every object has the tags `autotag plan`
computes from its final state (plan finds nothing to change), uploader tags kept, and the Map's
ItemCounts and result files account for every object exactly once, and so does the completion report
the flow's Report step writes after the Map (report.json's counts, every key once across its parts,
none failed, and the execution's output naming report.json).

The size defaults to a few thousand objects; AUTOTAG_FLOW_E2E_OBJECTS=100000 runs the full-size run (its
figures are in docs/backfill.md "## Measured"), AUTOTAG_FLOW_E2E_FIGURES=<file> writes them as JSON."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import oss2
import pytest
import requests
from alibabacloud_fnf20190315 import models
from conftest import STS, flow_template, readable

from autotag.events import ObjectEvent
from autotag.gateway import OssGateway
from autotag.rules import load_rules
from autotag.settings import Settings
from autotag.tagger import tag_object
from deployer.flows import cloudflow_client

ROOT = Path(__file__).parents[2]
BUCKET, STATE = "autotag-demo", "autotag-demo-state"
FLOW, MAP = "oss-autotag-backfill-prefix", "Backfill"
OBJECTS = int(os.environ.get("AUTOTAG_FLOW_E2E_OBJECTS", "2000"))
PREFIX = ""  # the whole bucket: the rules derive `project` from keys under projects/
FAULTS = {
    "faults": [
        {"kind": "throttle", "rate": 0.03, "apis": ["HeadObject", "PutObjectTagging"]},
        {"kind": "error", "rate": 0.02, "apis": ["HeadObject", "GetObjectTagging", "PutObjectTagging"]},
    ],
    "seed": 22,
}


@dataclass
class Cloud:
    """`autotag local up` in its own process, on free ports, with its state in `data_dir`."""

    template: Path
    data_dir: Path
    process: subprocess.Popen[str] | None = None
    oss_endpoint: str = ""
    cloudflow_endpoint: str = ""
    admin_token: str = ""
    starts: int = 0
    lines: list[str] = field(default_factory=list)

    def start(self) -> Cloud:
        autotag = Path(sys.executable).with_name("autotag")
        command = [
            str(autotag), "local", "up", "--oss-port", "0", "--fc-port", "0", "--cloudflow-port", "0",
            "--concurrency", "16", "--template", str(self.template), "--data-dir", str(self.data_dir),
            "--dead-letters", str(self.data_dir.parent / "dead-letters.jsonl"),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=self.data_dir.parent
        )
        assert self.process.stdout is not None
        banner = [self.process.stdout.readline() for _ in range(4)]
        self.lines += banner
        self.oss_endpoint = re.search(r"(http://\S+)", banner[0])[1]  # type: ignore[index]
        self.admin_token = re.search(r"admin token: ([\w-]+)", banner[0])[1]  # type: ignore[index]
        self.cloudflow_endpoint = re.search(r"(http://\S+)", banner[3])[1]  # type: ignore[index]
        stdout = self.process.stdout
        # drain its output (progress lines) so it never blocks on a full pipe
        threading.Thread(target=lambda: self.lines.extend(stdout), daemon=True).start()
        self.starts += 1
        return self

    def kill(self) -> None:
        """SIGKILL: nothing is flushed; batches in flight are cut off."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        answer = requests.request(
            method,
            f"{self.oss_endpoint}/_admin/{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.admin_token}"},
            timeout=60,
        )
        assert answer.status_code < 300, answer.text
        return answer.json() if answer.content else None

    def bucket(self, name: str = BUCKET) -> oss2.Bucket:
        auth = oss2.StsAuth(STS.access_key_id, STS.access_key_secret, STS.security_token)
        return oss2.Bucket(auth, self.oss_endpoint, name, region="cn-hangzhou", session=oss2.Session(32))

    def flows(self) -> Any:
        return cloudflow_client(
            self.cloudflow_endpoint,
            "cn-hangzhou",
            STS.access_key_id,
            STS.access_key_secret,
            STS.security_token,
        )


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    (tmp_path / "cloud").mkdir()
    started = Cloud(flow_template(tmp_path / "cloud"), tmp_path / "data").start()
    yield started
    started.stop()


def key_of(number: int) -> str:
    folder = f"projects/p{number % 5}" if number % 7 == 0 else f"f{number % 64:02d}"
    return f"{PREFIX}{folder}/obj-{number:06d}.{('jpg', 'txt', 'csv', 'pdf')[number % 4]}"


def headers_of(number: int) -> dict[str, str]:
    """One in ten with the uploader's own tag, one in thirteen with an owner the rules turn into a tag."""
    headers = {}
    if number % 10 == 0:
        headers["x-oss-tagging"] = "team=blue"
    if number % 13 == 0:
        headers["x-oss-meta-owner"] = "ann"
    return headers


def expected(number: int) -> dict[str, str]:
    key = key_of(number)
    kinds = {"jpg": "image", "txt": "text", "csv": "data", "pdf": "document"}
    derived = {"kind": kinds[key.rsplit(".", 1)[1]], "size": "small"}
    if key.startswith("projects/"):
        derived["project"] = key.split("/")[1]
    if number % 13 == 0:
        derived["owner"] = "ann"
    uploader = {"team": "blue"} if number % 10 == 0 else {}
    return {**uploader, **derived, "autotag": " ".join(sorted(derived))}


def seed(bucket: oss2.Bucket, count: int) -> None:
    bucket.create_bucket()  # no trigger watches it, so the local cloud did not create it
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda n: bucket.put_object(key_of(n), b"x", headers=headers_of(n) or None), range(count)
            )
        )


def map_run(cloud: Cloud, execution: str) -> dict[str, Any] | None:
    """The Map run's status and ItemCounts as DescribeMapRun gives them, None before it exists."""
    try:
        body = (
            cloud.flows()
            .describe_map_run(
                models.DescribeMapRunRequest(flow_name=FLOW, execution_name=execution, map_run_name=MAP)
            )
            .body
        )
    except Exception:  # not there yet (MapRunNotExists), or the cloud is restarting
        return None
    return {"status": body.status, "counts": body.item_counts.to_map() if body.item_counts else {}}


def execution_status(cloud: Cloud, execution: str) -> Any:
    request = models.DescribeExecutionRequest(flow_name=FLOW, execution_name=execution)
    return cloud.flows().describe_execution(request).body


def wait_for(what: str, check: Any, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    latest = None
    while time.monotonic() < deadline:
        latest = check()
        if latest:
            return latest
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen in {seconds} s")


def requests_sum(stats: dict[str, Any]) -> dict[str, int]:
    return {api: int(n) for api, n in stats["requests"].items()}


@pytest.mark.timeout(7200)
def test_a_flow_killed_mid_way_resumes_and_tags_every_object_once(cloud: Cloud, tmp_path: Path) -> None:
    seed(cloud.bucket(), OBJECTS)
    cloud.admin("POST", "stats/reset")
    cloud.admin("PUT", "conditions", FAULTS)
    given = {
        "bucket": BUCKET,
        "source": {"prefix": PREFIX},
        "report": {"bucket": STATE, "prefix": "backfill/reports/"},
        "concurrency": 16,
        "toleratedFailurePercentage": 0,
    }
    began = time.monotonic()
    started = (
        cloud.flows()
        .start_execution(
            models.StartExecutionRequest(flow_name=FLOW, execution_name="scale-1", input=json.dumps(given))
        )
        .body
    )
    assert started.status in ("Starting", "Running"), started

    # Part-way (a third of the items done): SIGKILL, with batches in flight.
    def partway() -> dict[str, Any] | None:
        run = map_run(cloud, "scale-1")
        done = run and run["counts"].get("Succeed", 0) + run["counts"].get("Failed", 0)
        return run if run and OBJECTS // 3 <= done < OBJECTS else None

    before = wait_for("a third of the items", partway, 1800)
    counted_before = requests_sum(cloud.admin("GET", "stats"))
    killed_at = time.monotonic()
    cloud.kill()
    finished = list(
        (tmp_path / "data" / "cloudflow" / "executions" / FLOW / "scale-1" / f"maprun-{MAP}").glob(
            "batch-*.json"
        )
    )
    assert 0 < sum(json.loads(p.read_text())["Items"] for p in finished) < OBJECTS

    # The same local cloud again, on the same data directory: the execution goes on by itself.
    cloud.start()
    restarted_at = time.monotonic()
    cloud.admin("PUT", "conditions", FAULTS)
    ended = wait_for(
        "the execution's end",
        lambda: (s := execution_status(cloud, "scale-1")).status not in ("Starting", "Running") and s,
        7200,
    )
    ended_at = time.monotonic()
    seconds = ended_at - began
    cloud.admin("PUT", "conditions", {"faults": []})
    counted_after = requests_sum(cloud.admin("GET", "stats"))
    assert ended.status == "Succeeded", (ended.status, ended.output)

    by_outcome = check_engine_accounts(cloud, "scale-1", OBJECTS)
    # a batch in flight at the kill ran again: the objects it had tagged were then unchanged
    assert by_outcome.get("tagged", 0) >= OBJECTS - 50 * 16, by_outcome
    report = check_report(cloud, "scale-1", ended.output, OBJECTS, by_outcome)

    check_plan_finds_nothing_to_do(cloud, OBJECTS)

    figures = {
        "objects": OBJECTS,
        "seconds": round(seconds, 1),
        "objectsPerSecond": round(OBJECTS / seconds, 1),
        "killedAfterSeconds": round(killed_at - began, 1),
        "doneAtKill": before["counts"],
        "restarts": cloud.starts - 1,
        "outcomes": by_outcome,
        "requestsBeforeKill": counted_before,
        "requestsAfterRestart": counted_after,
        "faults": FAULTS,
        "resumedSeconds": round(ended_at - restarted_at, 1),
        "report": report,
    }
    per_object = ("HeadObject", "GetObjectTagging", "PutObjectTagging")
    total = {
        api: counted_before.get(api, 0) + counted_after.get(api, 0) for api in counted_after | counted_before
    }
    figures["requestsPerObject"] = round(sum(total.get(a, 0) for a in per_object) / OBJECTS, 3)
    figures["bookkeepingRequests"] = sum(n for a, n in total.items() if a not in per_object)
    if os.environ.get("AUTOTAG_FLOW_E2E_FIGURES"):
        Path(os.environ["AUTOTAG_FLOW_E2E_FIGURES"]).write_text(json.dumps(figures, indent=1))


def check_engine_accounts(cloud: Cloud, execution: str, count: int) -> dict[str, int]:
    """The map run's ItemCounts (DescribeMapRun) and its result files (the ResultWriter's manifest under
    the report prefix) name every object exactly once, none failed; the outcomes counted by kind."""
    run = map_run(cloud, execution)
    assert run is not None and run["status"] == "Succeeded", run
    assert run["counts"]["Total"] == count, run
    assert run["counts"]["Succeed"] == count and run["counts"]["Failed"] == 0, run
    state = cloud.bucket(STATE)
    manifest = json.loads(state.get_object(f"backfill/reports/{execution}/{MAP}/manifest.json").read())
    assert manifest["ItemCounts"] == {"SUCCEEDED": count, "FAILED": 0}
    outcomes = [
        result
        for key in manifest["ResultFiles"]["SUCCEEDED"]
        for batch in json.loads(state.get_object(key).read())
        for result in batch["Output"]["Results"]
    ]
    assert sorted(r["Key"] for r in outcomes) == sorted(key_of(n) for n in range(count))  # each once
    by_outcome: dict[str, int] = {}
    for result in outcomes:
        by_outcome[result["Outcome"]] = by_outcome.get(result["Outcome"], 0) + 1
    assert set(by_outcome) <= {"tagged", "unchanged"}, by_outcome
    return by_outcome


def check_report(
    cloud: Cloud, execution: str, output: str, count: int, by_outcome: dict[str, int]
) -> dict[str, Any]:
    """The completion report the flow's Report step wrote after the Map: report.json there, its counts
    summing to every object and agreeing with the result files, every key exactly once across its parts,
    tagged or unchanged (faults are retried, none failed), no failed manifest or an empty one, and the
    execution's output naming report.json. Returns its parts and sizes for the figures."""
    state = cloud.bucket(STATE)
    location = f"backfill/reports/{execution}/report/"
    summary = json.loads(state.get_object(f"{location}report.json").read())
    assert summary["objects"] == count and sum(summary["counts"].values()) == count, summary["counts"]
    assert summary["counts"] == by_outcome, (summary["counts"], by_outcome)
    assert summary["parts"] and all(key.startswith(f"{location}part-") for key in summary["parts"])
    keys: list[str] = []
    part_bytes = 0
    for key in summary["parts"]:
        body = state.get_object(key).read()
        part_bytes += len(body)
        lines = list(csv.reader(io.StringIO(body.decode(), newline="")))
        assert lines[0] == ["bucket", "key", "versionId", "outcome", "reason"], key
        for row in lines[1:]:
            assert row[0] == BUCKET and row[3] in ("tagged", "unchanged"), row
            keys.append(row[1])
    assert len(keys) == count and sorted(keys) == sorted(key_of(n) for n in range(count))  # each once
    assert summary["failedObjects"] == 0, summary["failedObjects"]
    assert all(state.get_object(key).read() == b"" for key in summary["failed"]), summary["failed"]
    assert json.loads(output)["Report"]["Report"] == f"oss://{STATE}/{location}report.json", output
    return {
        "parts": len(summary["parts"]),
        "partRows": summary["partRows"],
        "partBytes": part_bytes,
        "counts": summary["counts"],
        "failed": summary["failed"],
        "reportJsonBytes": len(state.get_object(f"{location}report.json").read()),
    }


def check_plan_finds_nothing_to_do(cloud: Cloud, count: int) -> None:
    """`autotag plan`'s computation (tag_object without writing, the shipped default rules) over every
    object's final state changes nothing, and the tags are the ones expected, the uploader's kept."""
    rules = load_rules(
        Settings(rules="default", endpoint=None).rules_path(), Settings.from_environment().record_secrets
    )
    bucket = cloud.bucket()
    gateway = OssGateway(bucket)

    def problem(number: int) -> str:
        key = key_of(number)
        event = ObjectEvent("ObjectCreated:PutObject", BUCKET, key, region="")
        result = tag_object(event, rules, gateway, write=False)
        plan = result.plan
        if plan is None or plan.desired != plan.current:
            return f"{key}: plan would still change it ({result.reason}; {result.summary()})"
        if readable(plan.current) != expected(number):
            return f"{key}: {readable(plan.current)} != {expected(number)}"
        return ""

    with ThreadPoolExecutor(16) as pool:
        problems = [p for p in pool.map(problem, range(count)) if p]
    assert problems == [], f"{len(problems)} objects wrong, e.g. {problems[:5]}"
