"""After a change of rules kept in OSS, the timer's next sweep brings existing objects to the new rules by
itself (AUTOTAG_RECONCILE_ON_RULES_CHANGE): template.yml's functions on the local FC, its OSS trigger tagging
uploads under the old rules, its timer firing the sweep; requests counted at the local OSS, per object."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import oss2
import pytest
from click.testing import CliRunner
from conftest import (
    LONG_TERM,
    REGION,
    TEMPLATE_BUCKET,
    TEMPLATE_STATE_BUCKET,
    make_auth,
    readable,
    sealed_header,
    tags_of,
)

from autotag.rules import parse_rules
from autotag.sweep.checkpoint import Scope
from autotag.sweep.gateway import SweepGateway
from autotag.sweep.runner import SweepLimits, run_sweep
from autotag.sweep.sealing import Place, seal
from autotag.sweep.state import StateStore
from autotag_cli.main import cli
from localcloud.fc import DeadLetterStore, LocalFC, load_template
from localcloud.oss import LocalOSS

ROOT = Path(__file__).parents[2]
RULES_KEY = "rules.json"
PER_OBJECT = frozenset({"HeadObject", "GetObjectTagging", "PutObjectTagging", "DeleteObjectTagging"})

KIND = {"name": "kind", "tags": {"kind": {"from": "extension"}}}
MEDIA = {"name": "media", "when": {"prefix": "img/"}, "tags": {"media": "image"}}
OLD = {
    "version": 1,
    "rules": [KIND, {"name": "logs", "when": {"prefix": "logs/"}, "tags": {"dept": "ops"}}, MEDIA],
}
# One rule under one prefix changed: a value changed and a tag added.
NEW = {
    "version": 1,
    "rules": [
        KIND,
        {"name": "logs", "when": {"prefix": "logs/"}, "tags": {"dept": "sre", "retention": "short"}},
        MEDIA,
    ],
}
LOGS = [f"logs/{n}.txt" for n in range(6)]
ELSEWHERE = [f"img/{n}.jpg" for n in range(4)] + [f"other/{n}.csv" for n in range(4)]


@contextmanager
def cloud(oss: LocalOSS, tmp_path: Path, setting: str) -> Iterator[LocalFC]:
    """template.yml on the local FC, its rules kept in its state bucket, AUTOTAG_RECONCILE_ON_RULES_CHANGE
    set to `setting`."""
    fc = LocalFC(
        load_template(ROOT / "template.yml"),
        environment={
            "AUTOTAG_OSS_ENDPOINT": oss.endpoint,
            "AUTOTAG_FANOUT": "in-process",
            "AUTOTAG_RULES": f"oss://{TEMPLATE_STATE_BUCKET}/{RULES_KEY}",
            "AUTOTAG_RULES_MAX_AGE": "0",  # each invocation reads the rules in force
            "AUTOTAG_RECONCILE_ON_RULES_CHANGE": setting,
        },
        dead_letters=DeadLetterStore(tmp_path / "dead-letters.jsonl"),
        retry_base_seconds=0.01,
        clock=oss.clock,
    )
    with fc:
        fc.wire_oss(oss)
        yield fc


def state_bucket(oss: LocalOSS) -> oss2.Bucket:
    return oss2.Bucket(make_auth("v1"), oss.endpoint, TEMPLATE_STATE_BUCKET, region=REGION)


def push(oss: LocalOSS, rules: dict[str, Any]) -> None:
    state_bucket(oss).put_object(RULES_KEY, json.dumps(rules).encode())


def settle(oss: LocalOSS, fc: LocalFC) -> None:
    assert oss.notifier.drain(600)
    assert fc.drain(600)


def sweep(oss: LocalOSS, fc: LocalFC) -> dict[str, Any]:
    """Fire the timer a minute on (so the incremental pass has a window) and return its sweep's summary."""
    oss.clock.advance(timedelta(minutes=1))
    before = len(fc.results)
    fc.fire_timer("tag-expiry", at=oss.clock.now())
    settle(oss, fc)
    (result,) = [r for r in fc.results[before:] if r.function == "tag-expiry"]
    assert result.ok, result.error_message
    (report,) = json.loads(result.payload or "")["sweeps"]
    return report  # type: ignore[no-any-return]


def tagged_under_old_rules(oss: LocalOSS, fc: LocalFC, bucket: oss2.Bucket) -> None:
    """Objects uploaded (one with an uploader's own tag) and tagged under OLD; a first sweep completed."""
    push(oss, OLD)
    for key in LOGS + ELSEWHERE:
        headers = {"x-oss-tagging": "owner=ann"} if key == LOGS[0] else None
        bucket.put_object(key, b"x", headers=headers)
    settle(oss, fc)
    assert readable(tags_of(bucket, LOGS[0])) == {
        "owner": "ann",
        "kind": "txt",
        "dept": "ops",
        "autotag": "dept kind",
    }
    first = sweep(oss, fc)
    assert first["complete"] and first["mode"] == "full", first


def count_requests(oss: LocalOSS, bucket: str = TEMPLATE_BUCKET) -> Counter[tuple[str, str]]:
    """(API, key) of each request to `bucket` from now on."""
    seen: Counter[tuple[str, str]] = Counter()
    oss.conditions.hooks.append(
        lambda request: seen.update([(request.api, request.key)]) if request.bucket == bucket else None
    )
    return seen


def plan_finds_nothing(oss: LocalOSS, tmp_path: Path, rules: dict[str, Any]) -> None:
    """`autotag plan` under `rules` proposes no change for any object."""
    path = tmp_path / "new-rules.json"
    path.write_text(json.dumps(rules))
    env = {
        "AUTOTAG_OSS_ENDPOINT": oss.endpoint,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": LONG_TERM.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": LONG_TERM.access_key_secret,
        "COLUMNS": "200",
    }
    for prefix in ("logs/", "img/", "other/"):
        command = ["plan", "--bucket", TEMPLATE_BUCKET, "--prefix", prefix, "--rules", str(path), "--json"]
        result = CliRunner().invoke(cli, command, env=env)
        assert result.exit_code == 0, result.output
        outcomes = {json.loads(line)["outcome"] for line in result.output.splitlines()}
        assert outcomes == {"unchanged"}, result.output


def test_the_timer_brings_objects_the_change_reaches_to_the_new_rules_and_reads_no_other(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    with cloud(oss, tmp_path, "selected") as fc:
        tagged_under_old_rules(oss, fc, template_bucket)
        push(oss, NEW)
        requests = count_requests(oss)
        report = sweep(oss, fc)
    assert report["passes"] == ["selected", "incremental"] and report["complete"], report
    assert report["reconciledFrom"] == parse_rules(OLD).fingerprint
    assert report["listedPrefixes"] == ["logs/"]
    assert (report["tagged"], report["tagsAdded"], report["tagsChanged"]) == (6, 6, 6), report
    assert readable(tags_of(template_bucket, LOGS[0])) == {
        "owner": "ann",  # the uploader's own tag stays
        "kind": "txt",
        "dept": "sre",
        "retention": "short",
        "autotag": "dept kind retention",
    }
    for key in LOGS[1:]:
        assert readable(tags_of(template_bucket, key))["retention"] == "short"
    # Objects the change cannot reach were sent no per-object request; only listings covered them.
    touched = {key for (api, key), _ in requests.items() if api in PER_OBJECT}
    assert touched == set(LOGS), sorted(touched)
    assert requests[("PutObjectTagging", LOGS[0])] == 1
    assert readable(tags_of(template_bucket, "img/0.jpg")) == {
        "kind": "jpg",
        "media": "image",
        "autotag": "kind media",
    }
    plan_finds_nothing(oss, tmp_path, NEW)


@pytest.mark.parametrize("tampering", ["forged", "missing", "another scope's"])
def test_a_previous_copy_not_believed_makes_the_pass_full_and_loses_nothing(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path, tampering: str
) -> None:
    """The copy of the previous rules decides which objects are left alone: one the system did not seal
    there (forged: it claims the previous rules already derived the new tags under logs/, so a selection
    from it would leave logs/ alone), none at all, or the system's own copied from another scope makes
    the pass reconcile every object."""
    with cloud(oss, tmp_path, "selected") as fc:
        tagged_under_old_rules(oss, fc, template_bucket)
        kept = f".autotag/sweep/{Scope(TEMPLATE_BUCKET).id}/rules-{parse_rules(OLD).fingerprint}.json"
        original = state_bucket(oss).get_object(kept).read()
        assert json.loads(original)["fingerprint"] == parse_rules(OLD).fingerprint  # the first pass kept it
        if tampering == "forged":
            forged = {**json.loads(original), "rules": NEW}
            state_bucket(oss).put_object(kept, json.dumps(forged).encode())
        elif tampering == "missing":
            state_bucket(oss).delete_object(kept)
        else:  # the same rules, sealed by the system for the scope of the prefix logs/
            other = kept.replace(Scope(TEMPLATE_BUCKET).id, Scope(TEMPLATE_BUCKET, "logs/").id)
            document = {"fingerprint": parse_rules(OLD).fingerprint, "rules": OLD}
            sealed = seal(document, Place(TEMPLATE_STATE_BUCKET, other), oss.clock.now())
            state_bucket(oss).put_object(kept, sealed)
        push(oss, NEW)
        report = sweep(oss, fc)
    assert (report["mode"], report["retag"], report["complete"]) == ("full", True, True), report
    why = {"forged": "not believed", "missing": "no copy of rules", "another scope's": "not believed"}[
        tampering
    ]
    assert any(why in w and "full pass" in w for w in report["warnings"]), report["warnings"]
    assert report["tagged"] == 6 and report["listed"] == len(LOGS + ELSEWHERE)
    assert readable(tags_of(template_bucket, LOGS[0])) == {
        "owner": "ann",
        "kind": "txt",
        "dept": "sre",
        "retention": "short",
        "autotag": "dept kind retention",
    }
    assert readable(tags_of(template_bucket, "other/0.csv")) == {"kind": "csv", "autotag": "kind"}
    plan_finds_nothing(oss, tmp_path, NEW)


def test_prune_keeps_todays_behaviour_a_full_pass_that_adds_nothing(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    with cloud(oss, tmp_path, "prune") as fc:
        tagged_under_old_rules(oss, fc, template_bucket)
        push(oss, NEW)
        report = sweep(oss, fc)
    assert (report["mode"], report["retag"], report["passes"]) == ("full", False, ["full"]), report
    assert (report["tagsAdded"], report["tagged"], report["pruned"]) == (0, 0, 6), report
    # The changed value is removed and the new tag never added: only a backfill brings them.
    assert readable(tags_of(template_bucket, LOGS[1])) == {"kind": "txt", "autotag": "kind"}


@pytest.mark.parametrize("setting", ["full"])
def test_full_gives_every_object_the_new_rules(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path, setting: str
) -> None:
    with cloud(oss, tmp_path, setting) as fc:
        tagged_under_old_rules(oss, fc, template_bucket)
        push(oss, NEW)
        requests = count_requests(oss)
        report = sweep(oss, fc)
    assert (report["mode"], report["retag"], report["tagged"]) == ("full", True, 6), report
    touched = {key for (api, key), _ in requests.items() if api in PER_OBJECT}
    assert touched == set(LOGS + ELSEWHERE)
    plan_finds_nothing(oss, tmp_path, NEW)


def test_a_selected_pass_over_several_runs_keeps_its_selection(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    """Each run lists at most 2 objects (`maxObjects`): the pass takes three runs, and each resumes the same
    selection from its checkpoint, which pins the rules it reconciles from."""
    with cloud(oss, tmp_path, "selected") as fc:
        tagged_under_old_rules(oss, fc, template_bucket)
        push(oss, NEW)
        requests = count_requests(oss)
        runs = []
        for _ in range(3):
            oss.clock.advance(timedelta(minutes=1))
            payload = json.dumps({"buckets": [TEMPLATE_BUCKET], "workers": 4, "maxObjects": 2})
            event = json.dumps(
                {
                    "triggerTime": oss.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "triggerName": "nightly-expiry",
                    "payload": payload,
                }
            )
            result = fc.invoke("tag-expiry", event.encode())
            assert result.ok, result.error_message
            (report,) = json.loads(result.payload or "")["sweeps"]
            runs.append(report)
        checkpoint = json.loads(
            state_bucket(oss).get_object(f".autotag/sweep/{Scope(TEMPLATE_BUCKET).id}/checkpoint.json").read()
        )
    assert [(r["mode"], r["resumed"], r["listed"]) for r in runs] == [
        ("selected", False, 2),
        ("selected", True, 2),
        ("selected", True, 2),
    ], runs
    assert [r["reconciledFrom"] for r in runs] == [parse_rules(OLD).fingerprint] * 3
    assert sum(r["tagged"] for r in runs) == 6
    # The last run completed the selected pass; its incremental pass then listed the rest (maxObjects).
    assert checkpoint["completed"]["fingerprint"] == parse_rules(NEW).fingerprint
    touched = {key for (api, key), _ in requests.items() if api in PER_OBJECT}
    assert touched == set(LOGS), sorted(touched)
    for key in LOGS:
        assert readable(tags_of(template_bucket, key))["retention"] == "short"


def test_a_metadata_condition_costs_a_head_alone_for_the_objects_it_does_not_match(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    """A rule added for one prefix and one metadata value: every key under the prefix may match, so each
    gets a HEAD; only the one whose metadata matches has its tags read and written."""
    oncall = {
        "name": "oncall",
        "when": {"all": [{"prefix": "logs/"}, {"meta": {"team": "sre"}}]},
        "tags": {"oncall": "yes"},
    }
    with cloud(oss, tmp_path, "selected") as fc:
        push(oss, OLD)
        for key in LOGS + ELSEWHERE:
            headers = {"x-oss-meta-team": "sre"} if key == LOGS[2] else None
            template_bucket.put_object(key, b"x", headers=headers)
        settle(oss, fc)
        assert sweep(oss, fc)["complete"]
        push(oss, {**OLD, "rules": [*OLD["rules"], oncall]})
        requests = count_requests(oss)
        report = sweep(oss, fc)
    assert (report["mode"], report["listedPrefixes"], report["tagged"]) == ("selected", ["logs/"], 1), report
    assert readable(tags_of(template_bucket, LOGS[2])) == {
        "kind": "txt",
        "dept": "ops",
        "oncall": "yes",
        "autotag": "dept kind oncall",
    }
    assert {key for (api, key), _ in requests.items() if api == "HeadObject"} == set(LOGS)
    assert {key for (api, key), _ in requests.items() if api in PER_OBJECT - {"HeadObject"}} == {LOGS[2]}


def test_a_push_during_a_selected_pass_never_lets_the_older_rules_overwrite_newer_tags(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    """The selected pass for NEW has read its rules; as it lists logs/, NEWER is pushed and a new object is
    tagged under it. Before each write the pass asks which rules are in force (a check sent after it read
    the tags): it writes nothing by NEW, and a full pass with NEWER follows (the stopped pass may have
    written NEW's tags anywhere it had reached)."""
    newer_logs = {"name": "logs", "when": {"prefix": "logs/"}, "tags": {"dept": "platform"}}
    newer = {"version": 1, "rules": [KIND, newer_logs, MEDIA]}
    pushed: list[str] = []

    def push_while_the_pass_lists(request: Any) -> None:
        listing = request.api == "ListObjects" and request.bucket == TEMPLATE_BUCKET
        if listing and request.query.get("prefix") == "logs/" and not pushed:
            pushed.append("newer")
            push(oss, newer)
            tags = sealed_header({"kind": "txt", "dept": "platform"}, "kind", "dept")
            template_bucket.put_object("logs/new.txt", b"x", headers={"x-oss-tagging": tags})

    with cloud(oss, tmp_path, "selected") as fc:
        tagged_under_old_rules(oss, fc, template_bucket)
        push(oss, NEW)
        oss.conditions.hooks.append(push_while_the_pass_lists)
        report = sweep(oss, fc)
    assert pushed == ["newer"]
    assert report["passes"] == ["selected", "full"] and report["complete"], report
    assert any("the rules changed" in w for w in report["warnings"]), report["warnings"]
    assert readable(tags_of(template_bucket, "logs/new.txt")) == {
        "kind": "txt",
        "dept": "platform",
        "autotag": "dept kind",
    }
    plan_finds_nothing(oss, tmp_path, newer)


def test_a_selected_pass_on_a_versioned_bucket_resumes_between_versions_of_a_key(
    oss: LocalOSS, new_bucket: Any
) -> None:
    """Every version is an object of its own: a selected pass listing 3 versions per run stops between two
    versions of one key, and the next run goes on from that version, so each version under the prefix gets
    the new rules' tags once and nothing else is read."""
    bucket = new_bucket(versioning="Enabled")
    old_tags = sealed_header({"kind": "txt", "dept": "ops"}, "kind", "dept")
    for key in ("logs/a.txt", "logs/a.txt", "logs/b.txt", "logs/b.txt", "logs/c.txt"):
        bucket.put_object(key, b"x", headers={"x-oss-tagging": old_tags})
    bucket.put_object("other/d.csv", b"x", headers={"x-oss-tagging": sealed_header({"kind": "csv"}, "kind")})
    gateway = SweepGateway(bucket)
    store = StateStore(gateway, ".autotag/", Scope(bucket.bucket_name))
    first = run_sweep(gateway, parse_rules(OLD), store, None, on_rules_change="selected")
    assert first.complete and first.mode == "full"
    requests = count_requests(oss, bucket.bucket_name)
    reports = []
    while not (reports and reports[-1].complete):
        store = StateStore(gateway, ".autotag/", Scope(bucket.bucket_name))
        limits = SweepLimits(workers=2, max_objects=3)
        reports.append(
            run_sweep(gateway, parse_rules(NEW), store, None, limits=limits, on_rules_change="selected")
        )
        assert len(reports) < 5, [r.summary() for r in reports]
    assert [(r.mode, r.resumed, r.tagged) for r in reports[:2]] == [
        ("selected", False, 3),
        ("selected", True, 2),
    ]
    versions = bucket.list_object_versions(prefix="logs/").versions
    assert len(versions) == 5
    for version in versions:
        tags = readable(tags_of(bucket, version.key, versionId=version.versionid))
        assert tags == {"kind": "txt", "dept": "sre", "retention": "short", "autotag": "dept kind retention"}
    objects = {
        key for (api, key), _ in requests.items() if api in PER_OBJECT and not key.startswith(".autotag/")
    }
    assert objects == {
        "logs/a.txt",
        "logs/b.txt",
        "logs/c.txt",
    }
    assert requests[("PutObjectTagging", "logs/a.txt")] == 2  # each of its versions once
