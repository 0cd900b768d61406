"""`autotag reconcile --cloud`, end to end: `autotag local up` in its own process (template.yml without its
upload trigger), objects tagged by OLD with `autotag backfill`, NEW pushed where the backfill function may
read it. The candidates are selected here, written as a CSV manifest beside the reports, and run as an
execution of the template's manifest flow with NEW pinned; it ends Succeeded with every object as
`autotag plan` says under NEW, and the local OSS counts per-object requests for the candidates only."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import oss2
import pytest
import requests
from click.testing import CliRunner
from conftest import STS, LocalCloudProcess, flow_template, local_cloud_process, readable, tags_of

from autotag_cli.main import cli

ROOT = Path(__file__).parents[2]
BUCKET, STATE = "autotag-demo", "autotag-demo-state"
NEW = f"oss://{STATE}/backfill/rules/new.json"  # where the backfill function may read an execution's rules
KIND = {"name": "kind", "tags": {"kind": {"from": "extension", "map": {"jpg": "image", "txt": "text"}}}}
OLD_RULES = [KIND, {"name": "team-a", "when": {"prefix": "a/"}, "tags": {"team": "alpha"}}]
NEW_RULES = [KIND, {"name": "team-a", "when": {"prefix": "a/"}, "tags": {"team": "alpha-2"}}]
KEYS = [*(f"a/{i}.txt" for i in range(6)), *(f"b/{i}.jpg" for i in range(20))]


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[LocalCloudProcess]:
    template = flow_template(tmp_path)
    with local_cloud_process(tmp_path, template, "--concurrency", "4") as running:
        yield running


def cli_run(cloud: LocalCloudProcess, *args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env=cloud.cli_environment())


def last_json(result: Any) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    return json.loads(result.output.splitlines()[-1])  # type: ignore[no-any-return]


def test_a_cloud_reconcile_runs_the_candidates_as_a_manifest_with_new_pinned(
    cloud: LocalCloudProcess, tmp_path: Path
) -> None:
    auth = oss2.StsAuth(STS.access_key_id, STS.access_key_secret, STS.security_token)
    data = oss2.Bucket(auth, cloud.oss_endpoint, BUCKET, region="cn-hangzhou")
    data.create_bucket()  # no trigger watches it in this template, so local up made none
    for key in KEYS:
        data.put_object(key, b"x")
    data.put_object("a/theirs.txt", b"x", headers={"x-oss-tagging": "owner=me"})
    old, new_file = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps({"version": 1, "rules": OLD_RULES}))
    new_file.write_text(json.dumps({"version": 1, "rules": NEW_RULES}))
    template = str(ROOT / "template.yml")
    backfilled = cli_run(cloud, "backfill", "--bucket", BUCKET, "--template", template, "--rules", str(old),
                         "--report", str(tmp_path / "old.csv"), "--json")  # fmt: skip
    assert last_json(backfilled)["tagged"] == len(KEYS) + 1
    assert cli_run(cloud, "rules", "push", str(new_file), "--to", NEW).exit_code == 0

    token = re.search(r"admin token: ([\w-]+)", cloud.banner[0])
    assert token, cloud.banner
    admin = {"Authorization": f"Bearer {token[1]}"}
    requests.post(f"{cloud.oss_endpoint}/_admin/stats/reset", headers=admin, timeout=10).raise_for_status()

    reconciled = cli_run(cloud, "reconcile", str(old), NEW, "--bucket", BUCKET, "--cloud",
                         "--template", template, "--json")  # fmt: skip
    started = last_json(reconciled)
    # NEW was pushed just now: function instances may use the old rules a while longer, and it says so
    assert "a function instance may still tag uploads with the old rules" in reconciled.output
    assert started["selection"]["prefixes"] == ["a/"] and started["selection"]["candidates"] == 7
    assert started["input"]["rules"] == NEW and started["input"]["rulesETag"]
    manifest = started["candidatesManifest"]
    assert manifest.startswith(f"oss://{STATE}/backfill/manifests/reconcile-{BUCKET}-"), manifest
    status = last_json(cli_run(cloud, "backfill", "status", started["execution"], "--watch", "1", "--json"))
    assert status["status"] == "Succeeded", status
    assert status["objects"] == {"tagged": 7}, status

    stats = requests.get(f"{cloud.oss_endpoint}/_admin/stats", headers=admin, timeout=10).json()["requests"]
    # the candidates only: a tag read and a write each (the rules read nothing beyond the key), and one HEAD
    # of NEW (when it came into force)
    per_object = sum(stats.get(api, 0) for api in ("HeadObject", "GetObjectTagging", "PutObjectTagging"))
    assert per_object == 2 * 7 + 1 and stats["HeadObject"] == 1, stats

    plan = cli_run(cloud, "plan", "--bucket", BUCKET, "--prefix", "", "--rules", NEW, "--json")
    assert plan.exit_code == 0, plan.output
    outcomes = {json.loads(line)["key"]: json.loads(line)["outcome"] for line in plan.output.splitlines()}
    assert set(outcomes.values()) == {"unchanged"} and len(outcomes) == len(KEYS) + 1, outcomes
    assert readable(tags_of(data, "a/theirs.txt")) == {
        "owner": "me",
        "kind": "text",
        "team": "alpha-2",
        "autotag": "kind team",
    }


def test_no_note_when_the_running_upload_function_reads_new(tmp_path: Path) -> None:
    """`autotag local up --rules oss://…` (docs/rules.md's walkthrough) runs tag-on-upload with those rules,
    whatever template.yml says: a reconcile to them must not say uploads get other rules (a fresh user saw
    `note: NEW (…) is not the rules tag-on-upload reads (default, …)` there). The deployed function's own
    AUTOTAG_RULES decides, read from the FC API."""
    pushed = "oss://autotag-demo-state/rules.json"
    with local_cloud_process(tmp_path, flow_template(tmp_path), "--rules", pushed) as cloud:
        auth = oss2.StsAuth(STS.access_key_id, STS.access_key_secret, STS.security_token)
        oss2.Bucket(auth, cloud.oss_endpoint, BUCKET, region="cn-hangzhou").create_bucket()
        old, new, other = (tmp_path / f"{name}.json" for name in ("old", "new", "other"))
        old.write_text(json.dumps({"version": 1, "rules": OLD_RULES}))
        new.write_text(json.dumps({"version": 1, "rules": NEW_RULES}))
        other.write_text(json.dumps({"version": 1, "rules": [KIND]}))
        pushing = cli_run(cloud, "rules", "push", str(new), "--to", pushed)
        assert pushing.exit_code == 0, pushing.output
        template = ("--bucket", BUCKET, "--template", str(tmp_path / "template.yml"), "--dry-run")
        same = cli_run(cloud, "reconcile", str(old), pushed, *template)
        assert same.exit_code == 0, same.output
        assert "tag-on-upload reads" not in same.stderr, same.stderr
        differs = cli_run(cloud, "reconcile", str(old), str(other), *template)
        assert differs.exit_code == 0, differs.output
        (note,) = [line for line in differs.stderr.splitlines() if "tag-on-upload reads" in line]
        assert f"reads ({pushed}, fingerprint " in note, note
