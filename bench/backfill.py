"""Backfill through CloudFlow's distributed Map: objects per second at Map MaxConcurrency 1, 4 and 16, and
OSS requests per object, on one local cloud.

`autotag local up` runs in its own process — the local OSS, the local FC running template.yml's functions
under their roles (RAM enforced) and the local CloudFlow running template.yml's flows — with every OSS
request delayed `--latency-ms` first. The template is the shipped one without the upload trigger (the
objects exist before any trigger, which is what a backfill is for). Each run tags `--objects` untagged
objects of a prefix of its own, spread over 64 folders, through an execution of the template's prefix flow
(`oss-autotag-backfill-prefix`) started with CloudFlow's official SDK and `concurrency` set to the run's
MaxConcurrency; it is timed from StartExecution until DescribeExecution says Succeeded (the result files
written).

OSS requests are counted by the local OSS (its admin API): everything the run sends — the Map's listing,
the function's HEAD and PutObjectTagging per object, the ResultWriter's files — and nothing the bench
sends itself. Sub-workflows are the Map's batches (MaxItemsPerBatch 50), each one invocation of the
backfill function unless FC asked for a retry."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import oss2
import yaml
from alibabacloud_fnf20190315 import models
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from deployer.flows import cloudflow_client
from localcloud.oss import DEFAULT_CREDENTIALS

ROOT = Path(__file__).parents[1]
BUCKET, STATE = "autotag-demo", "autotag-demo-state"  # what template.yml's backfill roles may use
FLOW = "oss-autotag-backfill-prefix"
LONG_TERM, STS = DEFAULT_CREDENTIALS
PER_OBJECT_APIS = ("HeadObject", "GetObjectTagging", "PutObjectTagging")


@dataclass
class Measured:
    concurrency: int
    objects: int
    seconds: float
    requests: dict[str, int]
    batches: int
    baseline: float | None = None  # objects/s at MaxConcurrency 1

    @property
    def rate(self) -> float:
        return self.objects / self.seconds

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def row(self) -> list[str]:
        per_object = sum(self.requests.get(api, 0) for api in PER_OBJECT_APIS)
        return [
            f"MaxConcurrency {self.concurrency}",
            f"{self.objects:,}",
            f"{self.seconds:.1f}",
            f"{self.rate:,.0f}",
            f"{self.rate / self.baseline:.2f}x" if self.baseline else "—",
            f"{self.total:,}",
            f"{self.total / self.objects:.4f}",
            f"{(self.total - per_object) / self.objects:.4f}",
            f"{self.batches:,}",
        ]


COLUMNS = (
    "run",
    "objects",
    "seconds",
    "objects/s",
    "vs MaxConcurrency 1",
    "OSS requests",
    "requests/object",
    "of which listing + result files",
    "sub-workflows (batches)",
)


class LocalCloud:
    """`autotag local up` on free ports, in its own process."""

    def __init__(self, template: Path, data_dir: Path, concurrency: int) -> None:
        autotag = Path(sys.executable).with_name("autotag")
        command = [
            str(autotag), "local", "up", "--oss-port", "0", "--fc-port", "0", "--cloudflow-port", "0",
            "--concurrency", str(concurrency), "--template", str(template), "--data-dir", str(data_dir),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=data_dir.parent
        )
        assert self.process.stdout is not None
        banner = [self.process.stdout.readline() for _ in range(4)]
        oss_endpoint = re.search(r"(http://\S+)", banner[0])
        token = re.search(r"admin token: ([\w-]+)", banner[0])
        flows = re.search(r"(http://\S+)", banner[3])
        if not (oss_endpoint and token and flows):
            self.process.kill()
            raise RuntimeError(f"autotag local up did not start: {banner}")
        self.oss_endpoint, self.token, self.cloudflow_endpoint = oss_endpoint[1], token[1], flows[1]
        stdout = self.process.stdout
        # its progress lines are read and dropped, so that it never blocks on a full pipe
        threading.Thread(target=lambda: [None for _ in stdout], daemon=True).start()

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
                if error.code != 503 or attempt == 9:  # the local OSS sheds load (503) as OSS does
                    raise
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def requests(self) -> dict[str, int]:
        return dict(self.admin("GET", "stats")["requests"])

    def flows(self) -> Any:
        return cloudflow_client(
            self.cloudflow_endpoint,
            "cn-hangzhou",
            STS.access_key_id,
            STS.access_key_secret,
            STS.security_token,
        )

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


def flow_run(cloud: LocalCloud, state: oss2.Bucket, prefix: str, objects: int, concurrency: int) -> Measured:
    cloud.admin("POST", "stats/reset")
    name = f"bench-{prefix.strip('/')}"
    given = {
        "bucket": BUCKET,
        "source": {"prefix": prefix},
        "report": {"bucket": STATE, "prefix": "backfill/reports/"},
        "concurrency": concurrency,
        "toleratedFailurePercentage": 0,
    }
    client = cloud.flows()
    started = time.perf_counter()
    client.start_execution(
        models.StartExecutionRequest(flow_name=FLOW, execution_name=name, input=json.dumps(given))
    )
    while True:
        described = client.describe_execution(
            models.DescribeExecutionRequest(flow_name=FLOW, execution_name=name)
        ).body
        if described.status not in ("Starting", "Running"):
            break
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    spent = cloud.requests()
    output = json.loads(described.output or "{}")
    counts = output.get("ItemCounts", {})
    if described.status != "Succeeded" or (counts.get("Succeed"), counts.get("Failed")) != (objects, 0):
        raise RuntimeError(f"the flow did not tag every object: {described.status} {described.output}")
    manifest = json.loads(state.get_object(output["ResultWriterDetails"]["ManifestKey"]).read())
    batches = 0
    for key in manifest["ResultFiles"]["SUCCEEDED"]:
        results = json.loads(state.get_object(key).read())
        batches += len(results)
        outcomes = {r["Outcome"] for batch in results for r in batch["Output"]["Results"]}
        if outcomes != {"tagged"}:
            raise RuntimeError(f"not every object was tagged: {outcomes}")
    return Measured(concurrency, objects, seconds, spent, batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=5000, help="untagged objects per run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16], help="Map MaxConcurrency")
    parser.add_argument("--latency-ms", type=float, default=5.0, help="added to every OSS request")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    args = parser.parse_args()
    console = Console(width=190)
    runs: list[Measured] = []
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as scratch:
        work = Path(scratch)
        (work / "cloud").mkdir()
        template = bench_template(work / "cloud")
        cloud = LocalCloud(template, work / "data", concurrency=max(args.concurrency))
        try:
            auth = oss2.StsAuth(STS.access_key_id, STS.access_key_secret, STS.security_token)
            session = oss2.Session(pool_size=32)
            bucket = oss2.Bucket(auth, cloud.oss_endpoint, BUCKET, region="cn-hangzhou", session=session)
            state = oss2.Bucket(auth, cloud.oss_endpoint, STATE, region="cn-hangzhou", session=session)
            bucket.create_bucket()
            prefixes = [f"concurrency-{n}/" for n in args.concurrency]
            seeding = time.perf_counter()
            seed(bucket, prefixes, args.objects)
            console.print(
                f"seeded {len(prefixes)} x {args.objects:,} objects in {time.perf_counter() - seeding:.0f} s"
            )
            cloud.admin("PUT", "conditions", {"latency_ms": args.latency_ms})
            for concurrency, prefix in zip(args.concurrency, prefixes, strict=True):
                runs.append(flow_run(cloud, state, prefix, args.objects, concurrency))
                console.print(runs[-1].row())
        finally:
            cloud.stop()
    single = next((r for r in runs if r.concurrency == 1), None)
    for measured in runs:
        measured.baseline = single.rate if single else None
    title = (
        f"backfill flow: {args.objects:,} untagged objects per run, {args.latency_ms:g} ms latency per OSS "
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
        console.print(
            f"MaxConcurrency {measured.concurrency}: {json.dumps(measured.requests, sort_keys=True)}"
        )
    if args.markdown:
        lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(m.row()) + " |" for m in runs]
        lines += ["", title, ""]
        lines += [
            f"- MaxConcurrency {m.concurrency}: `{json.dumps(m.requests, sort_keys=True)}`" for m in runs
        ]
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
