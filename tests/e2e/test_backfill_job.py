"""Backfill jobs inside the local FC, end to end: `autotag local up` in its own process running template.yml's
functions under their roles (RAM enforced), the job started, followed and cancelled through the CLI, and
its shards running through the FC API.

The local cloud here serves template.yml with two changes that make the job testable in minutes: the upload
function's OSS trigger is left out (the objects existed before the trigger, which is what a backfill is
for), and the backfill function's Timeout is 60 s, so shards checkpoint every 3 s and continue across
invocations. Everything else — handlers, roles, policies, environment, asynchronous retries — is the
template's.

The size defaults to a few thousand objects; AUTOTAG_BACKFILL_E2E_OBJECTS=100000 runs the full-size job
(docs/backfill.md says how)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import oss2
import pytest
import requests
import yaml
from click.testing import CliRunner
from conftest import LONG_TERM, readable

from autotag_cli.local_inventory import inventory_configuration
from autotag_cli.main import cli

ROOT = Path(__file__).parents[2]
BUCKET = "autotag-demo"
INVENTORY_BUCKET = "autotag-demo-inventory"  # the inventory destination template.yml lets the job read
OBJECTS = int(os.environ.get("AUTOTAG_BACKFILL_E2E_OBJECTS", "3000"))
SHARDS = 16


def job_template(directory: Path, timeout: int = 60) -> Path:
    """template.yml without the upload trigger, with the backfill function's Timeout shortened."""
    document = yaml.safe_load((ROOT / "template.yml").read_text())
    del document["Resources"]["oss-autotag"]["tag-on-upload"]["Events"]
    document["Resources"]["oss-autotag-backfill"]["tag-backfill"]["Properties"]["Timeout"] = timeout
    path = directory / "template.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    (directory / "functions").symlink_to(ROOT / "functions")
    return path


@dataclass
class Cloud:
    """`autotag local up` in its own process, on free ports, with its state in `data_dir`."""

    template: Path
    data_dir: Path
    process: subprocess.Popen[str] | None = None
    oss_endpoint: str = ""
    fc_endpoint: str = ""
    admin_token: str = ""
    lines: list[str] = field(default_factory=list)

    def start(self, clock_offset: str = "0") -> Cloud:
        autotag = Path(sys.executable).with_name("autotag")
        letters = self.data_dir.parent / "dead-letters.jsonl"
        command = [
            str(autotag), "local", "up", "--oss-port", "0", "--fc-port", "0", "--cloudflow-port", "0",
            "--concurrency", str(SHARDS),
            "--template", str(self.template), "--data-dir", str(self.data_dir),
            "--clock-offset", clock_offset, "--dead-letters", str(letters),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=self.data_dir.parent)
        assert self.process.stdout is not None
        banner = [self.process.stdout.readline() for _ in range(3)]
        self.oss_endpoint = re.search(r"(http://\S+)", banner[0])[1]  # type: ignore[index]
        self.admin_token = re.search(r"admin token: ([\w-]+)", banner[0])[1]  # type: ignore[index]
        self.fc_endpoint = re.search(r"(http://\S+)", banner[2])[1]  # type: ignore[index]
        return self

    def kill(self) -> None:
        """SIGKILL: nothing is flushed, nothing is released; queued invocations are lost."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

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
        auth = oss2.Auth(LONG_TERM.access_key_id, LONG_TERM.access_key_secret)
        return oss2.Bucket(auth, self.oss_endpoint, name, session=oss2.Session(pool_size=32))

    def autotag(self, *args: str) -> Any:
        env = {
            "AUTOTAG_OSS_ENDPOINT": self.oss_endpoint,
            "AUTOTAG_FC_ENDPOINT": self.fc_endpoint,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": LONG_TERM.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": LONG_TERM.access_key_secret,
        }
        return CliRunner().invoke(cli, list(args), env=env)

    def start_job(self, *args: str) -> dict[str, Any]:
        result = self.autotag(
            "backfill", "--bucket", BUCKET, "--in-fc", "--template", str(self.template), "--json", *args
        )
        assert result.exit_code == 0, result.output
        return json.loads(result.output.splitlines()[-1])  # type: ignore[no-any-return]

    def status(self, reference: str) -> dict[str, Any] | None:
        """The job's status, or None when OSS refused a read (faults are injected)."""
        result = self.autotag("backfill", "status", reference, "--json")
        if result.exit_code != 0:
            return None
        return json.loads(result.output.splitlines()[-1])  # type: ignore[no-any-return]

    def wait(self, reference: str, until: Any, seconds: float) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        latest: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            latest = self.status(reference) or latest
            if latest is not None and until(latest):
                return latest
            time.sleep(0.5)
        raise AssertionError(f"the job did not get there in {seconds} s: {json.dumps(latest)[:3000]}")


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    (tmp_path / "cloud").mkdir()
    started = Cloud(job_template(tmp_path / "cloud"), tmp_path / "data").start()
    yield started
    started.stop()


def key_of(number: int) -> str:
    folder = f"projects/p{number % 5}" if number % 7 == 0 else f"f{number % 64:02d}"
    return f"{folder}/obj-{number:06d}.{('jpg', 'txt', 'csv', 'pdf')[number % 4]}"


def seed(bucket: oss2.Bucket, count: int) -> None:
    """Objects as uploaders left them: one in ten with the uploader's own tag, one in thirteen with an
    x-oss-meta-owner the rules turn into a tag."""

    def put(number: int) -> None:
        headers = {}
        if number % 10 == 0:
            headers["x-oss-tagging"] = "team=blue"
        if number % 13 == 0:
            headers["x-oss-meta-owner"] = "ann"
        bucket.put_object(key_of(number), b"x", headers=headers or None)

    bucket.create_bucket()  # no trigger watches it, so the local cloud did not create it
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(count)))


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


def check_every_object(bucket: oss2.Bucket, count: int) -> None:
    """Every object has exactly the tags the rules derive, recorded as the system's, and the uploader's."""

    def problem(number: int) -> str:
        tags = dict(bucket.get_object_tagging(key_of(number)).tag_set.tagging_rule)
        want = expected(number)
        return "" if readable(tags) == want else f"{key_of(number)}: {readable(tags)} != {want}"

    with ThreadPoolExecutor(16) as pool:
        problems = [p for p in pool.map(problem, range(count)) if p]
    assert problems == [], f"{len(problems)} objects wrong, e.g. {problems[:5]}"


FAULTS = {
    "faults": [
        {
            "kind": "throttle",
            "rate": 0.03,
            "apis": ["HeadObject", "PutObjectTagging", "ListObjects", "GetObject"],
        },
        {"kind": "error", "rate": 0.02, "apis": ["HeadObject", "GetObjectTagging", "PutObject"]},
        {"kind": "reset", "rate": 0.01, "apis": ["PutObjectTagging", "HeadObject"]},
    ],
    "seed": 15,
}


def inventory_of(cloud: Cloud, count: int) -> str:
    """The bucket's inventory, run now: the oss:// location of its manifest.json."""
    destination = cloud.bucket(INVENTORY_BUCKET)
    destination.create_bucket()
    cloud.bucket().put_bucket_inventory_configuration(inventory_configuration(INVENTORY_BUCKET, "daily"))
    run = cloud.admin(
        "POST", "inventory", {"bucket": BUCKET, "id": "daily", "rowsPerFile": max(1, count // 40)}
    )
    return str(run["manifest"])


@pytest.mark.timeout(3600)
@pytest.mark.skipif(
    os.environ.get("AUTOTAG_BACKFILL_E2E") != "1",
    reason="the home-made job's long kill-and-resume run (AUTOTAG_BACKFILL_E2E=1): on a loaded machine its "
    "16 shards all ended while the job stayed 'running' with no report (the last finisher's report claim or "
    "write failed under injected faults, and nothing ends after it); the job is being replaced by the "
    "CloudFlow flow (issue 22)",
)
@pytest.mark.parametrize("source", ["listing", "inventory"])
def test_a_job_killed_mid_way_resumes_and_tags_every_object_once(cloud: Cloud, source: str) -> None:
    bucket = cloud.bucket()
    seed(bucket, OBJECTS)
    # 8 workers per shard: 16 shards share one local OSS of at most 256 connections (in FC, each shard is an
    # instance of its own)
    args = ["--shards", str(SHARDS), "--workers", "8"]
    if source == "inventory":
        args += ["--inventory", inventory_of(cloud, OBJECTS)]
    cloud.admin("PUT", "conditions", FAULTS)
    started = cloud.start_job(*args)
    assert (started["state"], started["shards"]) == ("started", SHARDS), started
    reference = started["job"]
    partway = cloud.wait(reference, lambda s: s["objects"] >= OBJECTS * 0.3, 600)
    cloud.kill()  # mid-way: shards hold live leases, invocations are queued, nothing is released
    assert partway["status"] == "running" and partway["objects"] < OBJECTS, partway

    # The same local cloud again, later than every lease's life (the function's timeout + 60 s).
    cloud.start(clock_offset="3m")
    bucket = cloud.bucket()  # its new endpoint
    cloud.admin("PUT", "conditions", FAULTS)
    resumed = cloud.start_job(*args)
    assert resumed["state"] == "resumed" and resumed["job"] == reference, resumed
    done = cloud.wait(reference, lambda s: s["report"] is not None, 1800)
    cloud.admin("PUT", "conditions", {"faults": []})

    assert done["status"] == "complete" and done["shardsDone"] == SHARDS, done["reason"]
    counts = done["counts"]
    assert counts["tagged"] + counts["unchanged"] == OBJECTS and done["failed"] == 0, json.dumps(done)[:4000]
    assert all(shard["runs"] >= 1 for shard in done["shardDetails"])
    report = done["report"]
    assert report["objects"] == OBJECTS and report["failed"] == 0 and report["status"] == "complete"
    check_every_object(bucket, OBJECTS)
    again = cloud.start_job(*args)  # the same backfill once more: already complete, nothing to do
    assert again["state"] == "complete", again
