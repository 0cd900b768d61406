"""Backfill of existing objects: the laptop-side `autotag backfill` against the job inside FC with 1, 4 and
16 shards, on one local cloud.

`autotag local up` runs in its own process — the local OSS and the local FC running template.yml's
functions under their roles, RAM enforced — with every OSS request delayed `--latency-ms` first. The
template is the shipped one without the upload trigger (the objects exist before any trigger, which is what
a backfill is for). Each run tags `--objects` untagged objects of a prefix of its own, spread over 64
folders, so a listing splits evenly into 1, 4 and 16 shards:

- laptop: `autotag backfill --bucket B --prefix P` as an operator runs it, in its own process: it lists the
  bucket and runs the upload function's handler there, `--laptop-workers` objects at once;
- FC job: `autotag backfill --bucket B --prefix P --in-fc --shards N`, `--job-workers` objects at once per
  shard (the default), timed from the command until the local OSS has served the last object's
  PutObjectTagging.

OSS requests are counted by the local OSS: everything a run sends (listing, HEAD, PutObjectTagging, the
job's record, plan, leases, checkpoints and report), not the status reads the bench makes afterwards.
Invocations are the job's: its start and every run of every shard."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import oss2
import yaml
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from localcloud.oss import DEFAULT_CREDENTIALS

ROOT = Path(__file__).parents[1]
BUCKET = "autotag-demo"  # the bucket template.yml's backfill role may tag
CREDENTIAL = DEFAULT_CREDENTIALS[0]
PER_OBJECT_APIS = ("HeadObject", "GetObjectTagging", "PutObjectTagging")


@dataclass
class Measured:
    name: str
    objects: int
    seconds: float
    requests: dict[str, int]
    invocations: int | None
    baseline: float | None = None  # objects/s of the one-shard job

    @property
    def rate(self) -> float:
        return self.objects / self.seconds

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def row(self) -> list[str]:
        per_object = sum(self.requests.get(api, 0) for api in PER_OBJECT_APIS)
        return [
            self.name,
            f"{self.objects:,}",
            f"{self.seconds:.1f}",
            f"{self.rate:,.0f}",
            f"{self.rate / self.baseline:.2f}x" if self.baseline else "—",
            f"{self.total:,}",
            f"{self.total / self.objects:.4f}",
            f"{(self.total - per_object) / self.objects:.4f}",
            "—" if self.invocations is None else f"{self.invocations:,}",
        ]


COLUMNS = (
    "run",
    "objects",
    "seconds",
    "objects/s",
    "vs 1 shard",
    "OSS requests",
    "requests/object",
    "of which listing + state",
    "FC invocations",
)


class LocalCloud:
    """`autotag local up` on free ports, in its own process."""

    def __init__(self, template: Path, data_dir: Path, concurrency: int) -> None:
        autotag = Path(sys.executable).with_name("autotag")
        command = [
            str(autotag), "local", "up", "--oss-port", "0", "--fc-port", "0", "--cloudflow-port", "0",
            "--concurrency", str(concurrency), "--template", str(template), "--data-dir", str(data_dir),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=data_dir.parent)
        assert self.process.stdout is not None
        banner = [self.process.stdout.readline() for _ in range(3)]
        oss_endpoint = re.search(r"(http://\S+)", banner[0])
        token = re.search(r"admin token: ([\w-]+)", banner[0])
        fc_endpoint = re.search(r"(http://\S+)", banner[2])
        if not (oss_endpoint and token and fc_endpoint):
            self.process.kill()
            raise RuntimeError(f"autotag local up did not start: {banner}")
        self.oss_endpoint, self.token, self.fc_endpoint = oss_endpoint[1], token[1], fc_endpoint[1]

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"{self.oss_endpoint}/_admin/{path}",
            data=json.dumps(body or {}).encode(),
            method=method,
            headers={"Authorization": f"Bearer {self.token}"},
        )
        for attempt in range(10):
            try:
                with urllib.request.urlopen(request) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as error:
                # the local OSS sheds load as OSS does (503) while 16 shards keep it at its connection limit
                if error.code != 503 or attempt == 9:
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def requests(self) -> dict[str, int]:
        return dict(self.admin("GET", "stats")["requests"])

    def autotag(self, *args: str) -> dict[str, Any]:
        """An `autotag` command as an operator runs it, its JSON summary."""
        environment = {
            **os.environ,
            "AUTOTAG_OSS_ENDPOINT": self.oss_endpoint,
            "AUTOTAG_FC_ENDPOINT": self.fc_endpoint,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": CREDENTIAL.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": CREDENTIAL.access_key_secret,
        }
        autotag = Path(sys.executable).with_name("autotag")
        done = subprocess.run(
            [str(autotag), *args, "--json"], capture_output=True, text=True, env=environment, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"autotag {' '.join(args)} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def bench_template(directory: Path) -> Path:
    """template.yml without the upload function's trigger."""
    document = yaml.safe_load((ROOT / "template.yml").read_text())
    del document["Resources"]["oss-autotag"]["tag-on-upload"]["Events"]
    path = directory / "template.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    (directory / "functions").symlink_to(ROOT / "functions")
    return path


def seed(bucket: oss2.Bucket, prefixes: list[str], objects: int) -> None:
    keys = [f"{prefix}f{i % 64:02d}/obj-{i:07d}.jpg" for prefix in prefixes for i in range(objects)]
    with Progress(transient=True) as progress, ThreadPoolExecutor(32) as pool:
        task = progress.add_task(f"uploading {len(keys):,} untagged objects", total=len(keys))
        for _ in pool.map(lambda key: bucket.put_object(key, b"x"), keys):
            progress.advance(task)


def quiet(cloud: LocalCloud, seconds: float) -> dict[str, int]:
    """The request counts once they have not changed for `seconds` (the last runs write their report)."""
    last, since = cloud.requests(), time.monotonic()
    while time.monotonic() - since < seconds:
        time.sleep(0.5)
        now = cloud.requests()
        if now != last:
            last, since = now, time.monotonic()
    return last


def laptop(
    cloud: LocalCloud, template: Path, prefix: str, objects: int, workers: int, work: Path
) -> Measured:
    cloud.admin("POST", "stats/reset")
    started = time.perf_counter()
    summary = cloud.autotag(
        "backfill", "--bucket", BUCKET, "--prefix", prefix, "--template", str(template),
        "--workers", str(workers), "--checkpoint", str(work / f"{prefix.strip('/')}.json"),
        "--report", str(work / f"{prefix.strip('/')}.failures.jsonl"),
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if (summary["succeeded"], summary["failed"]) != (objects, 0):
        raise RuntimeError(f"the laptop-side backfill did not tag every object: {summary}")
    return Measured(f"laptop: autotag backfill ({workers} workers)", objects, seconds, quiet(cloud, 2), None)


def fc_job(
    cloud: LocalCloud, template: Path, prefix: str, objects: int, shards: int, workers: int
) -> Measured:
    cloud.admin("POST", "stats/reset")
    started = time.perf_counter()
    job = cloud.autotag(
        "backfill", "--bucket", BUCKET, "--prefix", prefix, "--in-fc", "--shards", str(shards),
        "--workers", str(workers), "--template", str(template),
    )  # fmt: skip
    while cloud.requests().get("PutObjectTagging", 0) < objects:
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    spent = quiet(cloud, 3)
    deadline = time.monotonic() + 120
    while (status := cloud.autotag("backfill", "status", job["job"]))["report"] is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the job wrote no report: {json.dumps(status)[:2000]}")
        time.sleep(1)
    counts = status["counts"]
    if status["status"] != "complete" or counts["tagged"] != objects or status["failed"]:
        raise RuntimeError(f"the job did not tag every object once: {json.dumps(status)[:2000]}")
    invocations = 1 + sum(shard["runs"] for shard in status["shardDetails"])
    name = f"FC job: {shards} shard{'s' if shards > 1 else ''} ({workers} workers each)"
    return Measured(name, objects, seconds, spent, invocations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=8000, help="untagged objects per run")
    parser.add_argument("--shards", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--laptop-workers", type=int, default=8, help="autotag backfill's default")
    parser.add_argument("--job-workers", type=int, default=16, help="a job's default per shard")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args()
    console = Console(width=190)
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as scratch:
        work = Path(scratch)
        (work / "cloud").mkdir()
        template = bench_template(work / "cloud")
        cloud = LocalCloud(template, work / "data", concurrency=max(args.shards) + 4)
        try:
            auth = oss2.Auth(CREDENTIAL.access_key_id, CREDENTIAL.access_key_secret)
            bucket = oss2.Bucket(auth, cloud.oss_endpoint, BUCKET, session=oss2.Session(pool_size=32))
            bucket.create_bucket()
            prefixes = ["laptop/", *(f"shards-{n}/" for n in args.shards)]
            seeding = time.perf_counter()
            seed(bucket, prefixes, args.objects)
            console.print(
                f"seeded {len(prefixes)} x {args.objects:,} objects in {time.perf_counter() - seeding:.0f} s"
            )
            cloud.admin("PUT", "conditions", {"latency_ms": args.latency_ms})
            runs = [laptop(cloud, template, "laptop/", args.objects, args.laptop_workers, work)]
            console.print(runs[-1].row())
            for shards in args.shards:
                runs.append(
                    fc_job(cloud, template, f"shards-{shards}/", args.objects, shards, args.job_workers)
                )
                console.print(runs[-1].row())
        finally:
            cloud.stop()
    single = next((r for r in runs[1:] if r.name.startswith("FC job: 1 shard ")), None)
    for measured in runs[1:]:
        measured.baseline = single.rate if single else None
    title = (
        f"backfill: {args.objects:,} untagged objects per run, {args.latency_ms:g} ms latency per OSS "
        f"request, one local cloud ({os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()})"
    )
    table = Table(title=title)
    for column in COLUMNS:
        table.add_column(column)
    for measured in runs:
        table.add_row(*measured.row())
    console.print(table)
    for measured in runs:
        console.print(f"{measured.name}: {json.dumps(measured.requests, sort_keys=True)}")
    if args.markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(m.row()) + " |" for m in runs]
        lines += ["", title, ""] + [f"- {m.name}: `{json.dumps(m.requests, sort_keys=True)}`" for m in runs]
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
