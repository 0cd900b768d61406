"""`autotag backfill` here: the backfill flow's items, batches and processor run in-process with the
operator's credentials (no function, no CloudFlow); resumable, rate-limited, with a failure breaker and a
failed.csv that --manifest takes back."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import oss2
import pytest
from click.testing import CliRunner
from conftest import LONG_TERM, STS, readable, tags_of

from autotag_cli.main import cli
from localcloud.oss import FaultRule, LocalOSS

TEMPLATE = str(Path(__file__).parents[2] / "template.yml")


def run(oss: LocalOSS, bucket: oss2.Bucket, tmp_path: Path, *args: str) -> tuple[int, str]:
    env = {
        "AUTOTAG_OSS_ENDPOINT": oss.endpoint,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": LONG_TERM.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": LONG_TERM.access_key_secret,
    }
    result = CliRunner().invoke(
        cli,
        [
            "backfill",
            "--bucket",
            bucket.bucket_name,
            "--template",
            TEMPLATE,
            "--json",
            "--checkpoint",
            str(tmp_path / "checkpoint.json"),
            "--report",
            str(tmp_path / "failed.csv"),
            *args,
        ],
        env=env,
    )
    return result.exit_code, result.output


def seed(bucket: oss2.Bucket, keys: list[str]) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: bucket.put_object(key, b"x"), keys))


@pytest.mark.timeout(1800)  # 10,000 objects through the function on 2 cores kept busy by other work
def test_backfill_of_10000_existing_objects(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    bucket = template_bucket
    keys = [f"projects/p{i % 7}/{i:05d}.{'jpg' if i % 2 else 'csv'}" for i in range(10_000)]
    seed(bucket, keys)
    oss.conditions.reset_counters()
    code, output = run(oss, bucket, tmp_path, "--workers", "8")
    assert code == 0, output
    summary = json.loads(output.splitlines()[-1])
    assert (summary["read"], summary["tagged"], summary["failed"], summary["rejected"]) == (
        10_000,
        10_000,
        0,
        0,
    )
    assert not (tmp_path / "failed.csv").exists()  # nothing failed: no report, not even an empty one
    assert readable(tags_of(bucket, "projects/p3/00003.jpg")) == {
        "kind": "image",
        "project": "p3",
        "size": "small",
        "autotag": "kind project size",
    }
    spent = sum(
        oss.conditions.requests[api] for api in ("HeadObject", "GetObjectTagging", "PutObjectTagging")
    )
    # HEAD (a listing has no content type or metadata for the rules) + PUT: 2 per object, as for a live upload
    assert 20_000 <= spent <= 20_010  # a request OSS answered slowly under load may be retried
    assert oss.conditions.requests["ListObjectsV2"] + oss.conditions.requests["ListObjects"] <= 12
    assert not (tmp_path / "checkpoint.json").exists()  # a finished backfill is finished: nothing resumes it


def test_since_prefix_and_rate(oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path) -> None:
    bucket = template_bucket
    seed(bucket, ["a/1.txt", "a/2.txt", "b/3.txt"])
    code, output = run(
        oss, bucket, tmp_path, "--prefix", "a/", "--since", "2000-01-01T00:00:00Z", "--rate", "50"
    )
    assert code == 0, output
    assert json.loads(output.splitlines()[-1])["tagged"] == 2
    assert readable(tags_of(bucket, "b/3.txt")) == {}
    code, output = run(
        oss,
        bucket,
        tmp_path,
        "--prefix",
        "b/",
        "--since",
        "2999-01-01T00:00:00Z",
        "--checkpoint",
        str(tmp_path / "other.json"),
    )
    assert code == 0 and json.loads(output.splitlines()[-1])["skipped_older"] == 1


def test_failures_trip_the_breaker_and_the_report_replays_them(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    bucket = template_bucket
    keys = [f"k/{i:03d}.txt" for i in range(60)]
    seed(bucket, keys)
    oss.conditions.set_faults([FaultRule("error", 1.0, frozenset({"PutObjectTagging"}))])
    code, output = run(oss, bucket, tmp_path, "--workers", "8", "--max-failure-rate", "0.5")
    oss.conditions.set_faults([])
    summary = json.loads(output.splitlines()[-1])
    assert code == 1 and "stopped" in summary["stopped"] and summary["failed"] >= 20
    assert summary["report"] == str(tmp_path / "failed.csv")
    failed = (tmp_path / "failed.csv").read_text().splitlines()
    reasons = [json.loads(line) for line in (tmp_path / "failed.reasons.jsonl").read_text().splitlines()]
    assert len(failed) == len(reasons) == summary["failed"]
    assert all(line.startswith(f"{bucket.bucket_name},k/") for line in failed), failed
    assert reasons[0]["Outcome"] == "failed" and "PutObjectTagging" in reasons[0]["Reason"], reasons[0]

    code, output = run(
        oss, bucket, tmp_path, "--manifest", str(tmp_path / "failed.csv"), "--report", str(tmp_path / "2.csv")
    )
    assert code == 0, output
    assert json.loads(output.splitlines()[-1])["tagged"] == len(failed)
    assert all(tags_of(bucket, r["Key"])["kind"] == "text" for r in reasons)


def test_bad_options(oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path) -> None:
    bucket = template_bucket
    code, output = run(oss, bucket, tmp_path, "--since", "last week")
    assert code == 2 and "'last week' is not an ISO-8601 time" in output


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("a.txt", "line 2: names no Key"),
        ("autotag-demo,b.txt,v1,extra", "line 2: 4 fields; the header has 3"),
        ("autotag-demo," + "x" * 70_000, "line 2: the line is over 65536 bytes"),
        ('autotag-demo,"open', "line 2: not a CSV record"),
    ],
)
def test_a_bad_manifest_line_fails_alone_named_by_file_and_line(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path, line: str, says: str
) -> None:
    """The manifest flow's own reader: a line it cannot read fails its item, named; the others are tagged."""
    template_bucket.put_object("a.txt", b"x")
    template_bucket.put_object("c.txt", b"x")
    path = tmp_path / "manifest.csv"
    path.write_text(f"autotag-demo,a.txt\n{line}\nautotag-demo,c.txt\n")
    code, output = run(oss, template_bucket, tmp_path, "--manifest", str(path))
    assert code == 1, output
    summary = json.loads(output.splitlines()[-1])
    assert (summary["read"], summary["tagged"], summary["failed"]) == (3, 2, 1), summary
    (reason,) = [json.loads(r) for r in (tmp_path / "failed.reasons.jsonl").read_text().splitlines()]
    assert reason["Where"] == f"{path} {says.split(':')[0]}" and says.split(": ", 1)[1] in reason["Reason"]
    assert not (tmp_path / "failed.csv").read_text()  # it names no object: nothing to run again
    assert "Traceback" not in output


def test_manifest_keys_with_no_object_are_skipped_and_said_so(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    """A key the manifest names that no object has any more: nothing to tag, counted as skipped."""
    template_bucket.put_object("a.txt", b"x")
    path = tmp_path / "manifest.csv"
    path.write_text("autotag-demo,a.txt\nautotag-demo,gone.txt\n")
    code, output = run(oss, template_bucket, tmp_path, "--manifest", str(path))
    assert code == 0, output
    summary = json.loads(output.splitlines()[-1])
    assert (summary["tagged"], summary["skipped"], summary["report"]) == (1, 1, None), summary
    assert not (tmp_path / "failed.csv").exists()  # --report given, nothing failed: no empty file
    table = CliRunner().invoke(
        cli,
        ["backfill", "--bucket", template_bucket.bucket_name, "--template", TEMPLATE, "--manifest", str(path),
         "--report", str(tmp_path / "table.csv")],
        env={"AUTOTAG_OSS_ENDPOINT": oss.endpoint},
        terminal_width=200,
    )  # fmt: skip
    assert table.exit_code == 0, table.output
    assert re.search(r"skipped\s*│\s*1", table.output), table.output
    assert not re.search(r"^┃[\s┃]*$", table.output, re.MULTILINE), table.output  # no empty header row


def test_a_csv_manifest_line_naming_another_bucket_is_rejected_and_sent_nothing(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    template_bucket.put_object("a.txt", b"x")
    path = tmp_path / "manifest.csv"
    path.write_text(f"{template_bucket.bucket_name},a.txt\nelsewhere,b.txt\n")
    oss.conditions.reset_counters()
    code, output = run(oss, template_bucket, tmp_path, "--manifest", str(path))
    assert code == 1, output
    summary = json.loads(output.splitlines()[-1])
    assert (summary["tagged"], summary["rejected"]) == (1, 1), summary
    (reason,) = [json.loads(r) for r in (tmp_path / "failed.reasons.jsonl").read_text().splitlines()]
    assert reason["Bucket"] == "elsewhere" and "'elsewhere' is not 'autotag-demo'" in reason["Reason"], reason
    assert oss.conditions.requests["HeadObject"] == 1  # only a.txt's


def backfill_here(oss_endpoint: str, bucket: oss2.Bucket, *args: str, sts: bool = False) -> tuple[int, str]:
    """`autotag backfill` with its default checkpoint (in the working folder's .localcloud/), signed with
    the local cloud's AccessKey, or its STS credentials."""
    credentials = (
        {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": STS.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": STS.access_key_secret,
            "ALIBABA_CLOUD_SECURITY_TOKEN": STS.security_token,
        }
        if sts
        else {}
    )
    result = CliRunner().invoke(
        cli,
        ["backfill", "--bucket", bucket.bucket_name, "--template", TEMPLATE, "--oss-endpoint", oss_endpoint,
         *args],
        env=credentials,
    )  # fmt: skip
    return result.exit_code, result.output


def test_a_finished_backfill_is_finished_and_another_one_tags_what_is_untagged(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that went through its listing leaves no checkpoint: the next run lists everything again and
    tags what came since, even keys sorting before the last one the earlier run sent."""
    monkeypatch.chdir(tmp_path)
    seed(template_bucket, ["m/2.txt", "m/3.txt"])
    code, output = backfill_here(oss.endpoint, template_bucket, "--prefix", "m/")
    assert code == 0, output
    assert not list((tmp_path / ".localcloud" / "backfill").glob("*.checkpoint.json"))
    template_bucket.put_object("m/1.txt", b"x")  # sorts before m/3.txt; its upload event was lost, say
    code, output = backfill_here(oss.endpoint, template_bucket, "--prefix", "m/", "--json")
    assert code == 0 and "resuming" not in output, output
    assert json.loads(output.splitlines()[-1])["read"] == 3
    assert tags_of(template_bucket, "m/1.txt")["kind"] == "text"


def test_a_backfill_resumes_only_the_same_unfinished_job(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same endpoint, AccessKey ID, bucket, prefix and rules resume a stopped run; any other is a new job,
    whose objects are all sent (a checkpoint made against the local cloud is not one of Alibaba Cloud's)."""
    monkeypatch.chdir(tmp_path)
    seed(template_bucket, [f"s/{i:02d}.txt" for i in range(40)])
    oss.conditions.set_faults([FaultRule("error", 1.0, frozenset({"PutObjectTagging"}))])
    code, output = backfill_here(oss.endpoint, template_bucket, "--prefix", "s/", "--workers", "1", "--json")
    oss.conditions.set_faults([])
    assert code == 1 and json.loads(output.splitlines()[-1])["stopped"], output  # the breaker: unfinished

    rules = tmp_path / "other-rules.json"
    rules.write_text(json.dumps({"version": 1, "rules": [{"name": "r", "tags": {"team": "x"}}]}))
    other_endpoint = oss.endpoint.replace("127.0.0.1", "localhost")
    for other in (
        (other_endpoint, ()),  # another endpoint (the same local OSS, named otherwise)
        (oss.endpoint, ("--rules", str(rules))),  # other rules
        (oss.endpoint, ("--prefix", "s/0")),  # another source
    ):
        endpoint, extra = other
        code, output = backfill_here(endpoint, template_bucket, "--prefix", "s/", *extra, "--json")
        assert code == 0 and "resuming" not in output, (other, output)
        summary = json.loads(output.splitlines()[-1])
        assert summary["read"] == (10 if "s/0" in extra else 40), (other, summary)
    code, output = backfill_here(oss.endpoint, template_bucket, "--prefix", "s/", sts=True)  # another key
    assert code == 0 and "resuming" not in output, output

    code, output = backfill_here(oss.endpoint, template_bucket, "--prefix", "s/", "--json")
    assert code == 0 and "resuming the backfill of oss://autotag-demo/s/ after 's/" in output, output
    assert json.loads(output.splitlines()[-1])["read"] < 40
    code, output = backfill_here(oss.endpoint, template_bucket, "--prefix", "s/", "--json")
    assert "resuming" not in output and json.loads(output.splitlines()[-1])["read"] == 40, output


def test_an_inventory_is_read_by_the_flows_reader_and_a_damaged_data_file_fails_alone(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    """--inventory here: the inventory flow's reader over OSS's inventory files, with the operator's
    credentials. A data file whose MD5 is not its manifest's fails as one item naming the file; the other
    files' objects are tagged."""
    from autotag_cli.local_inventory import inventory_configuration

    keys = [f"inv/{i:02d}.txt" for i in range(30)]
    seed(template_bucket, keys)
    inventory = oss2.Bucket(template_bucket.auth, oss.endpoint, "autotag-demo-inventory")
    inventory.create_bucket()
    template_bucket.put_bucket_inventory_configuration(
        inventory_configuration(inventory.bucket_name, "daily")
    )
    listed = oss.run_inventory(template_bucket.bucket_name, "daily", rows_per_file=10)
    assert len(listed.files) == 3
    damaged = listed.files[1]
    whole = inventory.get_object(damaged).read()
    inventory.put_object(damaged, bytes([whole[0] ^ 1]) + whole[1:])  # same size, another MD5
    manifest = f"oss://{inventory.bucket_name}/{listed.manifest_key}"
    code, output = run(oss, template_bucket, tmp_path, "--inventory", manifest)
    assert code == 1, output
    summary = json.loads(output.splitlines()[-1])
    assert (summary["tagged"], summary["failed"]) == (20, 1), summary
    (reason,) = [json.loads(r) for r in (tmp_path / "failed.reasons.jsonl").read_text().splitlines()]
    assert reason["Where"] == f"oss://{inventory.bucket_name}/{damaged}" and "MD5" in reason["Reason"], reason
    inventory.put_object(damaged, whole)
    code, output = run(
        oss, template_bucket, tmp_path, "--inventory", manifest, "--report", str(tmp_path / "2.csv")
    )
    assert code == 0, output
    assert json.loads(output.splitlines()[-1])["unchanged"] == 20
    assert all(tags_of(template_bucket, key)["kind"] == "text" for key in keys)


def test_at_80_columns_the_failure_report_and_the_manifest_to_run_again_are_whole_on_one_line(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    """The failure report's path, its reasons and the `--manifest` to run again with are what an operator
    copies: each whole on one line at 80 columns, never folded in the table."""
    folder = tmp_path / "reports-of-a-backfill-with-a-long-enough-name" / "to-be-folded-at-80-columns"
    folder.mkdir(parents=True)
    keys = [f"projects/a-long-project-name/renders/final/frame-{i:06d}.exr" for i in range(3)]
    seed(template_bucket, keys)
    manifest = folder / "manifest.csv"
    manifest.write_text("".join(f"{template_bucket.bucket_name},{quote(key, safe='')}\n" for key in keys))
    report = folder / "failed.csv"
    env = {"AUTOTAG_OSS_ENDPOINT": oss.endpoint, "COLUMNS": "80", "ALIBABA_CLOUD_ACCESS_KEY_ID": ""}
    arguments = ["backfill", "--bucket", template_bucket.bucket_name, "--template", TEMPLATE]
    arguments += ["--manifest", str(manifest), "--report", str(report)]
    arguments += ["--checkpoint", str(folder / "checkpoint.json")]
    oss.conditions.set_faults([FaultRule("error", 1.0, frozenset({"PutObjectTagging"}))])
    try:
        result = CliRunner().invoke(cli, arguments, env=env, terminal_width=80)
    finally:
        oss.conditions.set_faults([])
    assert report.exists(), result.output
    lines = result.output.splitlines()
    reasons = folder / "failed.reasons.jsonl"
    for whole in (f"failure report: {report}", f"reasons: {reasons}", f"run again with: --manifest {report}"):
        assert any(whole in line for line in lines), (whole, result.output)
