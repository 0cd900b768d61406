"""Backfill jobs on an in-process local cloud (the local OSS, the local FC running the template's functions
under their roles, the FC API the shards go through): shards continuing across many short invocations while
FC crashes instances, cancel and resume, the failure-rate breaker, the report's failed.csv round trip
through --manifest (in FC and here), TTLs already expired, and what a job costs in OSS requests."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import oss2
import pytest
import yaml
from click.testing import CliRunner
from conftest import LONG_TERM, REGION, ROOT, make_auth, purge, readable, tags_of

from autotag_cli.local_inventory import inventory_configuration
from autotag_cli.main import cli
from localcloud.fc import DeadLetterStore, LocalFC, Template, load_template, role_credentials
from localcloud.fc.api import LocalFcApi
from localcloud.oss import LocalOSS

TEMPLATE = ROOT / "template.yml"
STATE_PREFIX = ".autotag/"


def with_timeout(template: Template, seconds: int) -> Template:
    spec = template.functions["tag-backfill"]
    return replace(template, functions={**template.functions, "tag-backfill": replace(spec, timeout=seconds)})


@dataclass
class Job:
    """A local FC and its FC API on the session's local OSS, and the CLI pointed at both."""

    oss: LocalOSS
    fc: LocalFC
    api: LocalFcApi
    template_path: Path

    def cli(self, *args: str) -> Any:
        env: dict[str, str | None] = {
            "AUTOTAG_OSS_ENDPOINT": self.oss.endpoint,
            "AUTOTAG_FC_ENDPOINT": self.api.endpoint,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": LONG_TERM.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": LONG_TERM.access_key_secret,
        }
        return CliRunner().invoke(cli, list(args), env=env)

    def start(self, *args: str) -> dict[str, Any]:
        result = self.cli(
            "backfill",
            "--bucket",
            "autotag-demo",
            "--in-fc",
            "--template",
            str(self.template_path),
            "--json",
            *args,
        )
        assert result.exit_code == 0, result.output
        return json.loads(result.output.splitlines()[-1])  # type: ignore[no-any-return]

    def status(self, reference: str) -> dict[str, Any]:
        result = self.cli("backfill", "status", reference, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.output.splitlines()[-1])  # type: ignore[no-any-return]

    def until_reported(self, reference: str, seconds: float = 240) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            status = self.status(reference)
            if status["report"] is not None:
                return status
            time.sleep(0.3)
        raise AssertionError(f"no report for {reference}: {self.status(reference)}")


def local_fc(oss: LocalOSS, template: Template, **options: Any) -> tuple[LocalFC, LocalFcApi]:
    fc = LocalFC(template, environment={"AUTOTAG_OSS_ENDPOINT": oss.endpoint}, dead_letters=DeadLetterStore(),
                 retry_base_seconds=0.05, concurrency=8, **options)  # fmt: skip
    api = LocalFcApi(fc)
    fc.environment["AUTOTAG_FC_ENDPOINT"] = api.endpoint
    # The in-process FC puts its functions' environment in this process, where the CLI would read
    # AUTOTAG_RULES as its --rules (refused with --in-fc); unset, the functions use the default rules all
    # the same, and no CLI run has to unset it while the functions' threads read the environment.
    fc.environment.pop("AUTOTAG_RULES", None)
    return fc, api


@pytest.fixture
def job(oss: LocalOSS, template_bucket: oss2.Bucket) -> Iterator[Job]:
    """The template's functions, the backfill's Timeout cut to 20 s (it checkpoints every second)."""
    fc, api = local_fc(oss, with_timeout(load_template(TEMPLATE), 20))
    with fc, api:
        yield Job(oss, fc, api, TEMPLATE)


def seed(bucket: oss2.Bucket, keys: list[str], **headers: str) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: bucket.put_object(key, b"x", headers=headers or None), keys))


def test_shards_continue_across_short_invocations_while_fc_crashes_instances(
    oss: LocalOSS, template_bucket: oss2.Bucket
) -> None:
    keys = [f"d{i % 9}/k{i:04d}.jpg" for i in range(600)]
    seed(template_bucket, keys)
    fc, api = local_fc(oss, with_timeout(load_template(TEMPLATE), 8), crash_rate=0.1, seed=3)
    with fc, api:
        runner = Job(oss, fc, api, TEMPLATE)
        # 40 requests per second per shard: each shard needs a few runs of 5 s
        started = runner.start("--shards", "4", "--qps", "160", "--workers", "4")
        done = runner.until_reported(started["job"], 300)
        assert fc.drain(120)
    assert done["status"] == "complete", done
    assert done["counts"]["tagged"] + done["counts"]["unchanged"] == 600 and done["failed"] == 0
    assert sum(fc.crashes.values()) > 0  # instances died before and after handlers ran
    # Each shard's work takes longer at the rate limit (40 requests a second) than one run's 5 s, whatever the
    # machine's speed; a run counts once it saves its end, so an instance crashing before that hides one from
    # that shard's count: that some shard went on across runs is what holds on any machine.
    assert any(shard["runs"] >= 2 for shard in done["shardDetails"]), done["shardDetails"]
    assert all(readable(tags_of(template_bucket, key))["kind"] == "image" for key in keys[::37])
    assert not fc.dead_letters.all(), "every crashed invocation was retried to success"


def test_runs_stopped_by_the_rate_limit_at_their_deadline_continue_without_failing(
    oss: LocalOSS, template_bucket: oss2.Bucket
) -> None:
    """A run whose QPS share runs out at its deadline — in a window, in the listing's next page, at its
    last checkpoint — hands over to the next run: no invocation fails, nothing is retried by FC."""
    keys = [f"r/k{i:04d}.csv" for i in range(700)]
    seed(template_bucket, keys)
    fc, api = local_fc(oss, with_timeout(load_template(TEMPLATE), 6))
    failed: list[str] = []
    fc.observers.append(
        lambda record: (
            failed.append(record.result.error_message or "")
            if record.result is not None and record.result.error_type
            else None
        )
    )
    with fc, api:
        runner = Job(oss, fc, api, TEMPLATE)
        # 3 s of work per run at 60 requests per second, a listing page of 1,000 keys: every run ends on
        # the limiter, the first ones while the next page is fetched
        done = runner.until_reported(
            runner.start("--shards", "1", "--qps", "60", "--workers", "8")["job"], 110
        )
        assert fc.drain(30)
    assert failed == [], failed[:3]
    # a window cut short is done again by the next run: what it had tagged is unchanged then
    counts = done["counts"]
    assert done["status"] == "complete" and counts["tagged"] + counts["unchanged"] == 700, done
    assert done["shardDetails"][0]["runs"] >= 3 and done["failed"] == 0
    assert all(readable(tags_of(template_bucket, key))["kind"] == "data" for key in keys[::29])


def test_cancel_stops_every_shard_and_starting_again_resumes(job: Job, template_bucket: oss2.Bucket) -> None:
    keys = [f"c{i % 4}/k{i:04d}.txt" for i in range(400)]
    seed(template_bucket, keys)
    started = job.start("--shards", "4", "--qps", "8", "--workers", "2")  # slow: 1 object/s per shard
    reference = started["job"]
    time.sleep(3)
    cancelled = job.cli("backfill", "cancel", reference, "--template", str(TEMPLATE))
    assert cancelled.exit_code == 0, cancelled.output
    assert f"backfill job {reference}: cancelled" in cancelled.output
    stopped = job.until_reported(reference, 60)
    assert stopped["status"] == "cancelled" and stopped["report"]["status"] == "cancelled"
    assert 0 < stopped["objects"] < 400 and stopped["shardsDone"] < 4
    assert all(shard["stopped"].startswith("the job is cancelled") for shard in stopped["shardDetails"])
    assert job.fc.drain(60)
    before = stopped["objects"]
    time.sleep(2)
    assert job.status(reference)["objects"] == before  # nothing runs after a cancel
    resumed = job.start("--shards", "4", "--qps", "4000")
    assert resumed["state"] == "resumed (cancelled before)" and resumed["job"] == reference
    done = job.until_reported(reference)
    assert done["status"] == "complete" and done["objects"] == 400 and done["failed"] == 0
    assert done["objectsPerSecond"] > 0  # an ended job shows the rate its shards sustained
    shown = job.cli("backfill", "status", reference)
    assert shown.exit_code == 0 and "complete" in shown.output and " 0.0 objects/s" not in shown.output
    failed_csv = done["report"]["failedManifest"]
    assert f"failed.csv: {failed_csv}" in shown.output  # whole, on one line: what --manifest takes
    assert all(readable(tags_of(template_bucket, key))["kind"] == "text" for key in keys[::23])


def test_at_the_templates_timeout_progress_shows_within_seconds_and_a_cancel_stops_within_seconds(
    oss: LocalOSS, template_bucket: oss2.Bucket
) -> None:
    """The template's Timeout (checkpoints every 30 s) and a slow job (1 object/s per shard): the first
    checkpoint comes a few seconds into a run, and a cancel stops every shard within seconds — not at the
    next 30 s checkpoint, not after its whole window of objects."""
    keys = [f"s{i % 4}/k{i:04d}.txt" for i in range(200)]
    seed(template_bucket, keys)
    fc, api = local_fc(oss, load_template(TEMPLATE))
    with fc, api:
        job = Job(oss, fc, api, TEMPLATE)
        reference = job.start("--shards", "4", "--qps", "8", "--workers", "2")["job"]
        seen: dict[str, Any] = {}
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline and not seen.get("objects"):
            seen = job.status(reference)
            time.sleep(0.5)
        assert seen["objects"] > 0, seen  # progress within seconds, not at the first 30 s checkpoint
        cancelled = job.cli("backfill", "cancel", reference, "--json")
        assert cancelled.exit_code == 0, cancelled.output
        stopped = job.until_reported(reference, 15)
        assert fc.drain(30)
    assert stopped["status"] == "cancelled" and 0 < stopped["objects"] < 100, stopped
    tagged = sum(1 for key in keys if tags_of(template_bucket, key))
    assert tagged == stopped["objects"], (tagged, stopped["objects"])  # nothing tagged after the report


@pytest.fixture
def inventory(oss: LocalOSS, template_bucket: oss2.Bucket) -> Iterator[tuple[oss2.Bucket, str]]:
    """autotag-demo's inventory (the destination template.yml lets the job read), run now over 60 objects in
    3 data files: the destination bucket and the manifest.json's key."""
    seed(template_bucket, [f"v/k{i:03d}.csv" for i in range(60)])
    destination = oss2.Bucket(make_auth("sts-v1"), oss.endpoint, "autotag-demo-inventory", region=REGION)
    destination.create_bucket()
    fields = ("Size", "LastModifiedDate")
    template_bucket.put_bucket_inventory_configuration(
        inventory_configuration(destination.bucket_name, "daily", fields=fields)
    )
    run = oss.run_inventory("autotag-demo", "daily", rows_per_file=20)
    assert run.manifest_key is not None and len(run.files) == 3
    yield destination, run.manifest_key
    purge(destination)


def forged(destination: oss2.Bucket, manifest_key: str, name: str, change: Any) -> str:
    """A copy of the manifest, `change`d, in a folder of its own (no manifest.checksum beside it)."""
    document = json.loads(destination.get_object(manifest_key).read())
    change(document)
    key = f"forged/{name}/manifest.json"
    destination.put_object(key, json.dumps(document).encode())
    return f"oss://{destination.bucket_name}/{key}"


def test_an_inventory_whose_data_files_are_missing_changed_or_forged_is_refused_naming_the_file(
    job: Job, inventory: tuple[oss2.Bucket, str]
) -> None:
    destination, manifest_key = inventory
    document = json.loads(destination.get_object(manifest_key).read())
    first, second = document["files"][0]["key"], document["files"][1]["key"]

    def missing(manifest: dict[str, Any]) -> None:
        manifest["files"][1]["key"] = second + ".gone"

    def resized(manifest: dict[str, Any]) -> None:
        manifest["files"][0]["size"] += 1

    for name, change, expected in [
        ("missing", missing, f"oss://autotag-demo-inventory/{second}.gone, listed in "),
        ("resized", resized, f"oss://autotag-demo-inventory/{first} is "),
    ]:
        refused = job.cli(
            "backfill", "--bucket", "autotag-demo", "--in-fc", "--template", str(TEMPLATE),
            "--inventory", forged(destination, manifest_key, name, change),
        )  # fmt: skip
        assert refused.exit_code == 1 and expected in refused.output, (name, refused.output)
        assert "Traceback" not in refused.output and "ObjectGone" not in refused.output
    # manifest.json edited beside its manifest.checksum
    edited = json.loads(destination.get_object(manifest_key).read())
    edited["files"] = edited["files"][:2]
    destination.put_object(manifest_key, json.dumps(edited).encode())
    refused = job.cli(
        "backfill", "--bucket", "autotag-demo", "--in-fc", "--template", str(TEMPLATE),
        "--inventory", f"oss://autotag-demo-inventory/{manifest_key}",
    )  # fmt: skip
    assert refused.exit_code == 1 and "manifest.checksum" in refused.output, refused.output
    bucket = oss2.Bucket(make_auth("sts-v1"), job.oss.endpoint, "autotag-demo", region=REGION)
    assert not any(tags_of(bucket, f"v/k{i:03d}.csv") for i in range(60))  # no shard ran


def test_a_data_file_gone_after_the_start_or_not_matching_its_md5_fails_the_job_naming_it(
    job: Job, inventory: tuple[oss2.Bucket, str]
) -> None:
    """A data file deleted (lifecycle, a half-copied inventory) after the job's start, and a manifest whose
    MD5 for a file is not that file's: the shard reading it fails the job naming the file, the report is
    written, nothing is dead-lettered, and status does not say running."""
    destination, manifest_key = inventory
    files = json.loads(destination.get_object(manifest_key).read())["files"]

    def wrong_md5(manifest: dict[str, Any]) -> None:
        manifest["files"][2]["MD5checksum"] = "0" * 32

    forged_md5 = forged(destination, manifest_key, "md5", wrong_md5)
    # 2 workers: windows of 8 objects, so the shard has tagged most objects before the last file's end
    md5 = job.until_reported(
        job.start("--inventory", forged_md5, "--shards", "1", "--workers", "2")["job"], 60
    )
    bucket = oss2.Bucket(make_auth("sts-v1"), job.oss.endpoint, "autotag-demo", region=REGION)
    tagged = sum(1 for i in range(60) if tags_of(bucket, f"v/k{i:03d}.csv"))
    location = f"oss://autotag-demo-inventory/{manifest_key}"
    # 1 object/s: the shard is still in the first file when the second is deleted
    started = job.start("--inventory", location, "--shards", "1", "--qps", "2", "--workers", "1")
    destination.delete_object(files[1]["key"])
    job.start("--inventory", location, "--shards", "1", "--qps", "400")  # the same job, at full speed
    gone = job.until_reported(started["job"], 60)
    assert job.fc.drain(30) and not job.fc.dead_letters.all()
    assert gone["status"] == "failed" and gone["report"]["status"] == "failed", gone
    assert gone["reason"] == f"oss://autotag-demo-inventory/{files[1]['key']} does not exist any more", gone
    assert md5["status"] == "failed", md5
    # what the failing shard did before it failed is counted: the report agrees with OSS
    assert md5["objects"] == tagged >= 40 and md5["report"]["objects"] == tagged, (
        md5["shardDetails"],
        tagged,
    )
    assert md5["reason"].startswith(f"oss://autotag-demo-inventory/{files[2]['key']} has MD5 "), md5["reason"]
    assert md5["reason"].endswith(f"{forged_md5} says {'0' * 32}"), md5["reason"]


def narrowed(directory: Path) -> Path:
    """template.yml whose backfill role may tag only under ok/: objects elsewhere are refused."""
    document = yaml.safe_load(TEMPLATE.read_text())
    statements = document["Resources"]["oss-autotag-backfill"]["Properties"]["Policies"][0]["Statement"]
    tagging = next(s for s in statements if "oss:PutObjectTagging" in s["Action"])
    tagging["Action"].remove("oss:PutObjectTagging")
    statements.append(
        {"Effect": "Allow", "Action": ["oss:PutObjectTagging"], "Resource": ["acs:oss:*:*:autotag-demo/ok/*"]}
    )
    del document["Resources"]["oss-autotag"]["tag-on-upload"]["Events"]  # the objects exist already
    path = directory / "template.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    (directory / "functions").symlink_to(ROOT / "functions")
    return path


def test_refused_objects_fill_the_report_the_breaker_stops_a_failing_job_and_failed_csv_retries(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    seed(template_bucket, [f"ok/k{i:03d}.jpg" for i in range(150)] + [f"no/k{i:03d}.jpg" for i in range(50)])
    seed(template_bucket, [f"z/k{i:03d}.jpg" for i in range(130)])
    template = narrowed(tmp_path)
    fc, api = local_fc(oss, with_timeout(load_template(template), 20))
    oss.add_credentials(fc.role_credentials())  # the narrowed role's policy, until the shipped one is back
    try:
        with fc, api:
            narrow = Job(oss, fc, api, template)
            mixed = narrow.until_reported(
                narrow.start("--prefix", "", "--shards", "1", "--max-failure-rate", "0.6")["job"]
            )
            # z/ fails whole: after 100 objects its shard's failure rate stops the job
            failing = narrow.until_reported(narrow.start("--prefix", "z/", "--shards", "1")["job"])
    finally:
        oss.add_credentials(role_credentials(load_template(TEMPLATE).roles.values()))
    assert mixed["status"] == "complete" and mixed["counts"]["tagged"] == 150, mixed["counts"]
    assert mixed["failed"] == 180  # no/ and z/: refused by RAM, 55%: under the 60% the job allows
    failed_csv = mixed["report"]["failedManifest"]
    lines = template_bucket.get_object(failed_csv.split("/", 3)[3]).read().decode().splitlines()
    assert sorted(lines)[:2] == ["autotag-demo,no/k000.jpg", "autotag-demo,no/k001.jpg"] and len(lines) == 180
    reasons = template_bucket.get_object(mixed["report"]["failures"].split("/", 3)[3]).read().decode()
    assert "AccessDenied" in reasons and "PutObjectTagging" in reasons
    assert failing["status"] == "failed" and "maxFailureRate" in failing["reason"], failing
    assert failing["report"]["status"] == "failed" and failing["objects"] < 130

    # The report's failed.csv, as it is: its no/ lines through a job in FC under the shipped template's role,
    # its z/ lines here (the laptop-side backfill, from a local file)
    failed_rows = [line for line in lines if ",no/" in line]
    failed_key = f"{STATE_PREFIX}backfill/retry-no.csv"
    template_bucket.put_object(failed_key, "\n".join(failed_rows).encode())
    fc, api = local_fc(oss, with_timeout(load_template(TEMPLATE), 20))
    with fc, api:
        full = Job(oss, fc, api, TEMPLATE)
        retried = full.until_reported(full.start("--manifest", f"oss://autotag-demo/{failed_key}")["job"])
    assert retried["status"] == "complete" and retried["counts"]["tagged"] == 50 and retried["failed"] == 0
    here = tmp_path / "retry-z.csv"
    here.write_text("\n".join(line for line in lines if ",z/" in line) + "\n")
    report = str(tmp_path / "local-failures.jsonl")
    local = full.cli(
        "backfill", "--bucket", "autotag-demo", "--manifest", str(here), "--template", str(TEMPLATE),
        "--json", "--report", report,
    )  # fmt: skip
    assert local.exit_code == 0, local.output
    summary = json.loads(local.output.splitlines()[-1])
    assert (summary["submitted"], summary["succeeded"], summary["failed"]) == (130, 130, 0), summary
    assert all(
        readable(tags_of(template_bucket, key))["kind"] == "image" for key in ("no/k049.jpg", "z/k129.jpg")
    )


def test_ttls_already_over_are_not_added(job: Job, oss: LocalOSS, template_bucket: oss2.Bucket) -> None:
    seed(template_bucket, ["tmp/old.txt", "keep/old.txt"])
    oss.clock.offset = timedelta(days=8)  # a week and a day after those uploads, on OSS's clock
    seed(template_bucket, ["tmp/new.txt"])
    done = job.until_reported(job.start()["job"])
    assert done["status"] == "complete" and done["counts"]["tagged"] == 3, done
    assert readable(tags_of(template_bucket, "tmp/old.txt")) == {
        "kind": "text",
        "size": "small",
        "autotag": "kind size",
    }  # its scratch-space tag would have run out a day ago: not added
    assert readable(tags_of(template_bucket, "tmp/new.txt"))["lifecycle"] == "temporary"
    assert "lifecycle" not in tags_of(template_bucket, "keep/old.txt")


def test_an_untagged_object_costs_two_requests(oss: LocalOSS, template_bucket: oss2.Bucket) -> None:
    """HeadObject and PutObjectTagging per object, as for a live upload; the listing, the job's state, its
    lease, checkpoints (every 30 s at the template's Timeout) and report a few dozen more per job."""
    objects = 2000
    seed(template_bucket, [f"u{i % 3}/k{i:05d}.csv" for i in range(objects)])
    oss.conditions.reset_counters()
    fc, api = local_fc(oss, load_template(TEMPLATE))
    with fc, api:
        job = Job(oss, fc, api, TEMPLATE)
        began = time.monotonic()
        reference = job.start("--shards", "1")["job"]
        assert fc.drain(240)  # the job's own requests only: no status read in between
        seconds = time.monotonic() - began
        spent = dict(oss.conditions.requests)
        done = job.status(reference)
    assert done["status"] == "complete" and done["counts"]["tagged"] == objects, done
    assert spent["PutObjectTagging"] == objects and "GetObjectTagging" not in spent, spent
    # a HEAD per object (its tag count of 0: nothing to read); the few others check the shard's lease
    assert objects <= spent["HeadObject"] <= objects + 5, spent
    # The rest is the job's: planning, its record, the listing's pages and the report (about 34 here, ~1 per
    # 1,000 objects listed beyond that), and per second of work a look at the job every 5 s and a checkpoint
    # every 30 s: within 2.01 per object from about 5,000 objects per shard.
    assert sum(spent.values()) - 2 * objects <= 35 + seconds / 5 + seconds / 30, (spent, seconds)


def test_a_local_manifest_for_a_job_is_checked_here_before_it_is_uploaded(
    job: Job, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    """The CLI holds the file: a line that is not bucket,key[,versionId], bytes that are not UTF-8, a line
    naming another bucket or a file naming no object are refused here (exit 2, the file and line named),
    and nothing is uploaded or started."""
    cases = {
        "junk.csv": (b"autotag-demo,a.txt\nthis is junk\n", "junk.csv line 2 is not bucket,key[,versionId]"),
        "latin1.csv": (
            b"autotag-demo,a.txt\nautotag-demo,caf\xe9.txt\n",
            "latin1.csv line 2: not UTF-8 text",
        ),
        "header.csv": (b"Bucket,Key\nautotag-demo,a.txt\n", "it looks like a header; the format has none"),
        "other.csv": (
            b"autotag-demo,a.txt\nother-bucket,b.txt\n",
            "other.csv line 2 names bucket 'other-bucket'",
        ),
        "empty.csv": (b"\n\n", "empty.csv names no object"),
        "report.jsonl": (b'{"key": "a.txt"}\n', "report.jsonl line 1 is not bucket,key[,versionId]"),
    }
    for name, (data, expected) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        refused = job.cli(
            "backfill", "--bucket", "autotag-demo", "--in-fc", "--template", str(TEMPLATE),
            "--manifest", str(path),
        )  # fmt: skip
        assert refused.exit_code == 2, (name, refused.output)
        assert expected in " ".join(refused.output.split()), (name, refused.output)
        assert "Traceback" not in refused.output and "UnicodeDecodeError" not in refused.output
    assert not list(oss2.ObjectIterator(template_bucket, prefix=STATE_PREFIX))  # nothing uploaded or started


def test_one_run_writes_the_report_and_a_writer_that_died_is_taken_over(
    job: Job, oss: LocalOSS, template_bucket: oss2.Bucket
) -> None:
    """Shards that end together each try to write the report: the first claims it (a create-only object)
    and the others leave it, so the CSVs are never rewritten after manifest.json. A claim not followed by
    a report within a lease's life (its writer died) is taken over."""
    from autotag.backfill.control import Control, finish
    from autotag.backfill.gateway import BackfillGateway
    from autotag.backfill.job import JobPaths

    seed(template_bucket, [f"w/k{i:02d}.txt" for i in range(30)])
    reference = job.start("--shards", "1")["job"]
    done = job.until_reported(reference)
    assert job.fc.drain(30)
    job_id = reference.split("/")[1]
    paths = JobPaths(STATE_PREFIX, job_id)
    for name in ("manifest.json", "failed.csv", "failures.csv"):
        template_bucket.delete_object(paths.report_key(1, name))
    template_bucket.put_object(paths.report_key(1, "writing"), b"")  # another run is writing it
    state = BackfillGateway(template_bucket)
    control = Control(state, state, lambda name: state, None, STATE_PREFIX, lambda events: [], 960.0)  # type: ignore[arg-type]
    spec = control.read_job(job_id)
    assert spec is not None and spec.status == "complete"
    assert finish(spec, control) is None
    assert not template_bucket.object_exists(paths.report_key(1, "failed.csv"))
    oss.clock.offset = timedelta(seconds=961)  # the claim is older than a lease's life: its writer died
    written = finish(spec, control)
    assert written is not None and written["status"] == "complete" and written["objects"] == done["objects"]
    assert template_bucket.object_exists(paths.report_key(1, "failed.csv"))


def test_a_job_starts_and_cancels_from_any_folder_without_the_template(
    job: Job, template_bucket: oss2.Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starting, following and cancelling a job in a deployed FC needs its names, not template.yml: without
    one in the working folder the deployed names are used; a --template named but missing is an error."""
    seed(template_bucket, [f"a/k{i}.txt" for i in range(5)])
    monkeypatch.chdir(tmp_path)
    started = job.cli("backfill", "--bucket", "autotag-demo", "--in-fc", "--json")
    assert started.exit_code == 0, started.output
    answer = json.loads(started.output.splitlines()[-1])
    reference = answer["job"]
    assert "AUTOTAG_STATE_BUCKET" in answer["warning"]  # its state shares the tagged bucket
    cancelled = job.cli("backfill", "cancel", reference)
    assert cancelled.exit_code == 0 and f"backfill job {reference}:" in cancelled.output, cancelled.output
    missing = job.cli("backfill", "cancel", reference, "--template", "nowhere.yml")
    assert missing.exit_code == 2 and "no template at nowhere.yml" in missing.output, missing.output


def test_a_listing_that_cannot_balance_the_shards_says_so_at_the_start(
    job: Job, template_bucket: oss2.Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shards are cut at the top-level entries under the prefix: every key in one folder gives one shard;
    more entries than the plan reads (10,000; 1,000 here) leave the rest to the last shard. Both are said
    when the job starts, with what to do instead."""
    import autotag.backfill.control

    seed(
        template_bucket,
        [f"one/deep/k{i:02d}.txt" for i in range(20)] + [f"flat-{i:04d}.txt" for i in range(1100)],
    )
    folder = job.start("--prefix", "one/", "--shards", "4")
    assert folder["shards"] == 1, folder
    assert (
        "oss://autotag-demo/one/ has 1 top-level entry to cut at, so the job runs in 1 shard(s), not 4"
        in (folder["warning"])
    )
    monkeypatch.setattr(
        autotag.backfill.control, "MAX_BOUNDARY_PAGES", 1
    )  # the functions run in this process
    flat = job.start("--prefix", "flat-", "--shards", "4")
    assert "oss://autotag-demo/flat- has more than 1,000 top-level entries" in flat["warning"], flat
    assert "--inventory balances shards" in flat["warning"]
    shown = job.cli(
        "backfill", "--bucket", "autotag-demo", "--prefix", "flat-", "--in-fc", "--shards", "4",
        "--template", str(TEMPLATE), "--restart",
    )  # fmt: skip
    assert "note: oss://autotag-demo/flat- has more than" in " ".join(shown.output.split()), shown.output
    for reference in (folder["job"], flat["job"]):
        job.until_reported(reference)
    assert job.fc.drain(60)


def test_an_empty_prefix_starts_no_job_and_a_cancel_in_a_bucket_it_does_not_serve_names_it(
    job: Job, template_bucket: oss2.Bucket
) -> None:
    nothing = job.cli(
        "backfill", "--bucket", "autotag-demo", "--prefix", "empty/", "--in-fc", "--template", str(TEMPLATE)
    )  # fmt: skip
    assert nothing.exit_code == 0, nothing.output
    assert nothing.output.strip() == "no object under oss://autotag-demo/empty/: no job started"
    assert not list(oss2.ObjectIterator(template_bucket, prefix=STATE_PREFIX))  # no job state written
    missing = job.cli(
        "backfill", "cancel", "no-such-bucket-here/bf-0123456789ab", "--template", str(TEMPLATE)
    )
    assert missing.exit_code == 1, missing.output
    line = " ".join(missing.output.split())
    assert (
        "tag-backfill rejected it: the bucket 'no-such-bucket-here' is not one this function acts on "
        "(AUTOTAG_BUCKETS: autotag-demo)" in line
    ), line


def test_status_watch_redraws_the_table_in_place(job: Job, template_bucket: oss2.Bucket) -> None:
    """On a terminal, --watch draws the status once and moves the cursor back over it to draw it again
    (it once printed the whole table anew every time)."""
    import re

    seed(template_bucket, [f"w/k{i:03d}.jpg" for i in range(150)])
    reference = job.start("--shards", "1", "--qps", "60", "--workers", "2")["job"]  # some seconds of work
    env = {
        "AUTOTAG_OSS_ENDPOINT": job.oss.endpoint,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": LONG_TERM.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": LONG_TERM.access_key_secret,
        "TTY_COMPATIBLE": "1",
        "COLUMNS": "120",
    }
    watched = CliRunner().invoke(cli, ["backfill", "status", reference, "--watch", "1"], env=env)
    assert watched.exit_code == 0, watched.output
    drawn = watched.output.count(f"backfill job {reference}")
    assert drawn >= 2, watched.output  # it was redrawn while the job ran
    redraws = len(re.findall(r"\x1b\[\d*A", watched.output))  # cursor up: over the table drawn before
    assert redraws >= drawn - 1, watched.output
    assert "failed.csv:" in watched.output  # the report's locations, once, under the last table
    piped = CliRunner().invoke(
        cli, ["backfill", "status", reference, "--watch", "1"], env={**env, "TTY_COMPATIBLE": "0"}
    )
    assert re.search(r"^report: +oss://", piped.output, re.MULTILINE), piped.output  # a line of its own


def test_at_80_columns_the_status_shows_the_jobs_source_and_report_whole(
    job: Job, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    """`backfill status` at 80 columns: the job's reference, its manifest's location and the report's
    locations (what an operator copies into `status`, `cancel` and `--manifest`) each whole on one line."""
    keys = [f"projects/a-long-project-name/renders/final/frame-{i:06d}.exr" for i in range(3)]
    seed(template_bucket, keys)
    manifest = tmp_path / "frames.csv"
    manifest.write_text("".join(f"autotag-demo,{key}\n" for key in keys))
    reference = job.start("--manifest", str(manifest), "--template", str(TEMPLATE))["job"]
    done = job.until_reported(reference)
    env = {
        "AUTOTAG_OSS_ENDPOINT": job.oss.endpoint,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": LONG_TERM.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": LONG_TERM.access_key_secret,
        "COLUMNS": "80",
    }
    shown = CliRunner().invoke(cli, ["backfill", "status", reference], env=env, terminal_width=80)
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert done["location"].startswith("oss://"), done
    for whole in (reference, done["location"], done["report"]["failedManifest"]):
        assert any(whole in line for line in lines), (whole, shown.output)
