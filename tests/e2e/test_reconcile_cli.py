"""`autotag rules diff` and `autotag reconcile` here, through the CLI against the local OSS: objects tagged
by OLD (with `autotag backfill`), then the rules changed under some prefixes. A reconcile lists only those
prefixes, sends nothing about any other object (counted per key at the local OSS), and leaves every object
exactly as `autotag plan` says under NEW: what NEW derives set, owned tags NEW no longer derives removed,
uploaders' tags kept. Wrong inputs are one line with the exit code docs/cli.md gives."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click
import oss2
import pytest
from click.testing import CliRunner
from conftest import LONG_TERM, BucketFactory, make_auth, readable, tags_of

from autotag_cli.local_inventory import inventory_configuration
from autotag_cli.main import cli
from localcloud.oss import LocalOSS

TEMPLATE = str(Path(__file__).parents[2] / "template.yml")
BUCKET = "autotag-demo"  # template_bucket's
KIND = {"name": "kind", "tags": {"kind": {"from": "extension", "map": {"jpg": "image", "txt": "text"}}}}
OLD_RULES = [
    KIND,
    {"name": "team-a", "when": {"prefix": "a/"}, "tags": {"team": "alpha"}},
    {"name": "team-b", "when": {"prefix": "b/"}, "tags": {"team": "beta"}},
    {"name": "archive", "when": {"prefix": "c/"}, "tags": {"archived": "yes"}},
]
# team-a's value changed (under a/), archive removed (under c/); b/ is not reached
NEW_RULES = [
    KIND,
    {"name": "team-a", "when": {"prefix": "a/"}, "tags": {"team": "alpha-2"}},
    {"name": "team-b", "when": {"prefix": "b/"}, "tags": {"team": "beta"}},
]
PLAIN = [
    *(f"a/{i}.txt" for i in range(4)),
    *(f"b/{i}.jpg" for i in range(4)),
    *(f"c/{i}.txt" for i in range(3)),
]
UPLOADERS = {"a/theirs.txt": "owner=me", "c/kept.txt": "keep=me", "c/claimed.txt": "archived=theirs"}


def write_rules(path: Path, rules: list[dict[str, Any]]) -> str:
    path.write_text(json.dumps({"version": 1, "rules": rules}))
    return str(path)


def run(oss: LocalOSS, *args: str) -> click.testing.Result:
    env = {
        "AUTOTAG_OSS_ENDPOINT": oss.endpoint,
        "AUTOTAG_FC_ENDPOINT": "http://127.0.0.1:1",  # no FC: the upload function's rules are the template's
        "ALIBABA_CLOUD_ACCESS_KEY_ID": LONG_TERM.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": LONG_TERM.access_key_secret,
        "COLUMNS": "80",
    }
    return CliRunner().invoke(cli, list(args), env=env, terminal_width=80)


def reconcile(oss: LocalOSS, old: str, new: str, *args: str) -> click.testing.Result:
    """`autotag reconcile OLD NEW` of autotag-demo with template.yml's flows."""
    return run(oss, "reconcile", old, new, "--bucket", BUCKET, "--template", TEMPLATE, *args)


def last_json(result: click.testing.Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    return json.loads(result.output.splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture
def tagged_by_old(oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path) -> tuple[str, str]:
    """The objects uploaded and backfilled with OLD; (OLD, NEW) as files."""
    old = write_rules(tmp_path / "old.json", OLD_RULES)
    new = write_rules(tmp_path / "new.json", NEW_RULES)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: template_bucket.put_object(key, b"x"), PLAIN))
    for key, tagging in UPLOADERS.items():
        template_bucket.put_object(key, b"x", headers={"x-oss-tagging": tagging})
    result = run(oss, "backfill", "--bucket", BUCKET, "--template", TEMPLATE, "--rules", old,
                 "--report", str(tmp_path / "old.csv"), "--json")  # fmt: skip
    assert last_json(result)["tagged"] == len(PLAIN) + len(UPLOADERS)
    assert readable(tags_of(template_bucket, "c/0.txt")) == {
        "kind": "text",
        "archived": "yes",
        "autotag": "archived kind",
    }
    return old, new


@pytest.fixture
def requests_per_key(oss: LocalOSS) -> Counter[tuple[str, str]]:
    """(key, OSS API) of every object-level request the local OSS receives from here on."""
    seen: Counter[tuple[str, str]] = Counter()
    oss.conditions.hooks.append(
        lambda request: seen.update([(request.key, request.api)]) if request.key else None
    )
    return seen


def planned_changes(oss: LocalOSS, bucket: str, rules: str) -> list[str]:
    """The keys `autotag plan` under `rules` would change (every object of the bucket)."""
    result = run(oss, "plan", "--bucket", bucket, "--prefix", "", "--rules", rules, "--json")
    assert result.exit_code == 0, result.output
    planned = [json.loads(line) for line in result.output.splitlines()]
    assert len(planned) == len(PLAIN) + len(UPLOADERS)
    return [entry["key"] for entry in planned if entry["outcome"] not in ("unchanged", "skipped")]


def test_a_reconcile_reaches_only_the_changed_prefixes_and_ends_as_plan_says(
    oss: LocalOSS,
    template_bucket: oss2.Bucket,
    tmp_path: Path,
    tagged_by_old: tuple[str, str],
    requests_per_key: Counter[tuple[str, str]],
) -> None:
    old, new = tagged_by_old
    bucket = template_bucket.bucket_name
    assert sorted(planned_changes(oss, bucket, new)) == sorted(
        [*(k for k in PLAIN if not k.startswith("b/")), "a/theirs.txt", "c/kept.txt"]
    )
    requests_per_key.clear()
    oss.conditions.reset_counters()
    result = reconcile(oss, old, new, "--report", str(tmp_path / "failed.csv"), "--json")
    summary = last_json(result)
    assert summary["selection"]["prefixes"] == ["a/", "c/"]
    reached = [k for k in [*PLAIN, *UPLOADERS] if not k.startswith("b/")]
    assert (summary["selection"]["listed"], summary["selection"]["candidates"]) == (
        len(reached),
        len(reached),
    )
    assert (summary["read"], summary["tagged"], summary["unchanged"], summary["failed"]) == (
        len(reached), len(reached) - 1, 1, 0,
    )  # fmt: skip
    # Nothing about any object under b/: not a HEAD, not a tag read; the others only tag reads and writes.
    assert not [key for key, _ in requests_per_key if key.startswith("b/")], requests_per_key
    assert {api for _, api in requests_per_key} <= {"GetObjectTagging", "PutObjectTagging"}, requests_per_key
    assert sum(requests_per_key.values()) <= 2 * len(reached)
    assert oss.conditions.requests["ListObjectsV2"] == 2  # one page per prefix

    assert planned_changes(oss, bucket, new) == []
    assert readable(tags_of(template_bucket, "a/0.txt")) == {
        "kind": "text",
        "team": "alpha-2",
        "autotag": "kind team",
    }
    assert readable(tags_of(template_bucket, "a/theirs.txt"))["owner"] == "me"
    assert readable(tags_of(template_bucket, "b/0.jpg")) == {
        "kind": "image",
        "team": "beta",
        "autotag": "kind team",
    }
    # the removed rule took only its own tag away: an uploader's tags stay, even one with its key
    assert readable(tags_of(template_bucket, "c/0.txt")) == {"kind": "text", "autotag": "kind"}
    assert readable(tags_of(template_bucket, "c/kept.txt")) == {
        "keep": "me",
        "kind": "text",
        "autotag": "kind",
    }
    assert readable(tags_of(template_bucket, "c/claimed.txt"))["archived"] == "theirs"
    assert not (tmp_path / "failed.csv").exists()


def test_a_changed_metadata_condition_costs_a_head_alone_for_a_candidate_it_does_not_reach(
    oss: LocalOSS,
    template_bucket: oss2.Bucket,
    tmp_path: Path,
    requests_per_key: Counter[tuple[str, str]],
) -> None:
    """Under m/ a rule's metadata condition changed (owner ann to bob): every key there is a candidate (a
    listing shows no metadata), and one whose metadata neither version matches costs its HEAD and nothing
    more; outside m/ nothing is sent."""
    steward = {
        "name": "steward",
        "key_regex": "^m/",
        "when": {"meta": {"owner": "ann"}},
        "tags": {"s": "yes"},
    }
    old = write_rules(tmp_path / "old.json", [KIND, steward])
    new = write_rules(tmp_path / "new.json", [KIND, {**steward, "when": {"meta": {"owner": "bob"}}}])
    owners = {
        "m/ann.txt": "ann",
        "m/bob.txt": "bob",
        "m/cy.txt": "cy",
        "m/none.txt": None,
        "n/ann.txt": "ann",
    }
    for key, owner in owners.items():
        template_bucket.put_object(key, b"x", headers={"x-oss-meta-owner": owner} if owner else {})
    result = run(oss, "backfill", "--bucket", BUCKET, "--template", TEMPLATE, "--rules", old,
                 "--report", str(tmp_path / "old.csv"), "--json")  # fmt: skip
    assert last_json(result)["tagged"] == len(owners)
    assert tags_of(template_bucket, "m/ann.txt")["s"] == "yes"
    requests_per_key.clear()
    summary = last_json(reconcile(oss, old, new, "--report", str(tmp_path / "failed.csv"), "--json"))
    assert summary["reach"]["headNeeded"] and summary["selection"]["candidates"] == 4
    assert (summary["tagged"], summary["unchanged"]) == (2, 2), summary
    assert {api for key, api in requests_per_key if key in ("m/cy.txt", "m/none.txt")} == {"HeadObject"}
    assert requests_per_key[("m/cy.txt", "HeadObject")] == requests_per_key[("m/none.txt", "HeadObject")] == 1
    assert not [key for key, _ in requests_per_key if key.startswith("n/")], requests_per_key
    assert (
        "s" not in tags_of(template_bucket, "m/ann.txt")
        and tags_of(template_bucket, "m/bob.txt")["s"] == "yes"
    )
    assert planned_changes_with(oss, BUCKET, new) == []


def test_the_text_says_what_was_selected_with_prefixes_on_lines_of_their_own(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path, tagged_by_old: tuple[str, str]
) -> None:
    old, new = tagged_by_old
    result = reconcile(oss, old, new, "--report", str(tmp_path / "failed.csv"))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "prefix: a/" in lines and "prefix: c/" in lines, result.output
    assert "objects listed: 10" in lines and "candidates (a changed rule may reach them): 10" in lines
    assert "changed rule: team-a" in lines and "removed rule: archive" in lines
    # standard output; NEW (not pushed) is noted on standard error in one line, a path in it
    assert all(len(line) <= 80 for line in result.stdout.splitlines()), result.output


def test_a_dry_run_sends_nothing_about_any_object_and_writes_nothing(
    oss: LocalOSS,
    template_bucket: oss2.Bucket,
    tmp_path: Path,
    tagged_by_old: tuple[str, str],
    requests_per_key: Counter[tuple[str, str]],
) -> None:
    old, new = tagged_by_old
    requests_per_key.clear()
    oss.conditions.reset_counters()
    before = set(tmp_path.iterdir())
    result = reconcile(oss, old, new, "--dry-run", "--json")
    document = last_json(result)
    assert document["dryRun"] and document["selection"]["candidates"] == 10
    assert document["estimate"]["perCandidate"] == {
        "HeadObject": 0,
        "GetObjectTagging": 10,
        "PutObjectTagging": 10,
    }
    assert not requests_per_key, requests_per_key
    assert set(oss.conditions.requests) <= {"ListObjects", "ListObjectsV2"}, oss.conditions.requests
    assert set(tmp_path.iterdir()) == before
    assert tags_of(template_bucket, "a/0.txt")["team"] == "alpha"


def test_rules_that_derive_the_same_need_no_reconcile(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    described = [{**rule, "description": "the same rule, described"} for rule in OLD_RULES]
    old = write_rules(tmp_path / "old.json", OLD_RULES)
    same = write_rules(tmp_path / "same.json", described)
    oss.conditions.reset_counters()
    result = reconcile(oss, old, same)
    assert result.exit_code == 0, result.output
    assert "OLD and NEW derive the same tags for every object: nothing to reconcile" in result.output
    document = last_json(reconcile(oss, old, same, "--json"))
    assert document["reach"]["unchanged"] and document["selection"] is None
    assert sum(oss.conditions.requests.values()) == 0


def test_rules_diff_shows_the_changed_rules_their_prefixes_and_an_estimate(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path, tagged_by_old: tuple[str, str]
) -> None:
    old, new = tagged_by_old
    result = run(oss, "rules", "diff", old, new)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "changed rule: team-a" in lines and "removed rule: archive" in lines, result.output
    assert "  matches: prefix 'a/'" in lines and "  before: prefix 'c/'" in lines, result.output
    assert "prefix: a/" in lines and "prefix: c/" in lines
    assert "whole bucket: no; only keys under 2 prefixes can change:" in lines

    document = last_json(run(oss, "rules", "diff", old, new, "--json"))
    assert [(c["rule"], c["change"], c["prefixes"]) for c in document["changes"]] == [
        ("team-a", "changed", ["a/"]),
        ("archive", "removed", ["c/"]),
    ]
    assert (document["prefixes"], document["wholeBucket"], document["removalOnly"]) == (
        ["a/", "c/"],
        False,
        False,
    )
    assert "estimate" not in document  # no bucket, no request

    estimated = last_json(
        run(oss, "rules", "diff", old, new, "--bucket", template_bucket.bucket_name, "--json")
    )
    assert (estimated["selection"]["listed"], estimated["selection"]["candidates"]) == (10, 10)
    assert estimated["estimate"]["requestsAtMost"] == 2 + 2 * 10 and not estimated["estimate"]["lowerBound"]
    assert "docs/backfill.md" in estimated["estimate"]["rateSource"]

    sampled = run(oss, "rules", "diff", old, new, "--bucket", template_bucket.bucket_name, "--sample", "3")
    assert sampled.exit_code == 0, sampled.output
    assert "the sample stopped at 3 objects, after the key:" in sampled.output
    assert "key: a/2.txt" in sampled.output.splitlines()
    assert all(len(line) <= 80 for line in sampled.output.splitlines()), sampled.output
    sampled_json = last_json(
        run(
            oss, "rules", "diff", old, new, "--bucket", template_bucket.bucket_name, "--sample", "3", "--json"
        )
    )
    assert sampled_json["estimate"]["lowerBound"] and sampled_json["selection"]["listed"] == 3


def test_a_rule_with_no_key_bound_reaches_the_whole_bucket_and_says_why(
    oss: LocalOSS, tmp_path: Path
) -> None:
    old = write_rules(tmp_path / "old.json", OLD_RULES)
    new = write_rules(
        tmp_path / "new.json",
        [*OLD_RULES, {"name": "big", "when": {"size": {"min": "1MiB"}}, "tags": {"big": "yes"}}],
    )
    document = last_json(run(oss, "rules", "diff", old, new, "--json"))
    assert document["wholeBucket"] and document["prefixes"] == [""]
    assert "'big'" in document["whyWholeBucket"]
    text = run(oss, "rules", "diff", old, new).output.splitlines()
    assert 'prefix: "" (the whole bucket)' in text


def test_an_inventory_newer_than_new_selects_and_passes_over_untagged_objects_when_only_removing(
    oss: LocalOSS,
    template_bucket: oss2.Bucket,
    new_bucket: BucketFactory,
    tmp_path: Path,
    tagged_by_old: tuple[str, str],
    requests_per_key: Counter[tuple[str, str]],
) -> None:
    """A change that only removes tags, from an inventory with TaggingCount: an object with no tags at all
    is passed over before any request; an inventory started before NEW was pushed is refused."""
    old, _ = tagged_by_old
    for number in range(3):  # never tagged: no tag to remove
        template_bucket.put_object(f"c/untagged-{number}.txt", b"x")
    removed = write_rules(tmp_path / "removed.json", OLD_RULES[:3])
    destination = new_bucket()
    template_bucket.put_bucket_inventory_configuration(
        inventory_configuration(destination.bucket_name, "daily", fields=("Size", "TaggingCount"))
    )
    early = oss.run_inventory(template_bucket.bucket_name, "daily")
    oss.clock.offset = timedelta(minutes=2)
    location = "oss://autotag-demo-state/rules-next.json"
    pushed = run(oss, "rules", "push", removed, "--to", location)
    assert pushed.exit_code == 0, pushed.output
    stale = f"oss://{destination.bucket_name}/{early.manifest_key}"
    result = reconcile(oss, old, location, "--inventory", stale)
    assert result.exit_code == 2, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert "before NEW oss://autotag-demo-state/rules-next.json was in force everywhere at" in line, line

    oss.clock.offset = timedelta(minutes=4)
    fresh = oss.run_inventory(template_bucket.bucket_name, "daily")
    requests_per_key.clear()
    fresh_location = f"oss://{destination.bucket_name}/{fresh.manifest_key}"
    result = reconcile(
        oss, old, location, "--inventory", fresh_location, "--report", str(tmp_path / "f.csv"), "--json"
    )
    summary = last_json(result)
    assert summary["reach"]["removalOnly"] is True
    selection = summary["selection"]
    assert selection["listed"] == len(PLAIN) + len(UPLOADERS) + 3 and selection["passedOverUntagged"] == 3
    assert selection["candidates"] == 5  # c/0-2.txt, c/kept.txt, c/claimed.txt
    assert not [k for k, _ in requests_per_key if k.startswith(("a/", "b/", "c/untagged-"))], requests_per_key
    assert readable(tags_of(template_bucket, "c/kept.txt")) == {
        "keep": "me",
        "kind": "text",
        "autotag": "kind",
    }
    # only the objects no rules ever tagged (their uploads' events would): the change itself left nothing
    untagged = [f"c/untagged-{number}.txt" for number in range(3)]
    assert planned_changes_with(oss, template_bucket.bucket_name, location) == untagged


def planned_changes_with(oss: LocalOSS, bucket: str, rules: str) -> list[str]:
    result = run(oss, "plan", "--bucket", bucket, "--prefix", "", "--rules", rules, "--json")
    assert result.exit_code == 0, result.output
    planned = [json.loads(line) for line in result.output.splitlines()]
    return [entry["key"] for entry in planned if entry["outcome"] not in ("unchanged", "skipped")]


@pytest.mark.parametrize(
    ("case", "code", "says"),
    [
        ("missing OLD", 2, "cannot read the rules file"),
        ("invalid NEW", 2, "rules[0]).tags.x"),
        ("NEW missing in OSS", 2, "NEW oss://autotag-demo-state/no-such-rules.json: cannot read the rules"),
        ("no such bucket", 4, "no-such-bucket-here"),
        ("--cloud with a file NEW", 2, "with --cloud the backfill function reads the rules from OSS"),
        ("no --bucket", 2, "Missing option '--bucket'"),
    ],
)
def test_wrong_inputs_are_one_line_without_a_secret(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path, case: str, code: int, says: str
) -> None:
    old = write_rules(tmp_path / "old.json", OLD_RULES)
    new = write_rules(tmp_path / "new.json", NEW_RULES)
    bucket = ["--bucket", template_bucket.bucket_name]
    arguments = {
        "missing OLD": [str(tmp_path / "gone.json"), new, *bucket],
        "invalid NEW": [old, write_rules(tmp_path / "bad.json", [{"name": "a", "tags": {"x": 1}}]), *bucket],
        "NEW missing in OSS": [old, "oss://autotag-demo-state/no-such-rules.json", *bucket],
        "no such bucket": [old, new, "--bucket", "no-such-bucket-here"],
        "--cloud with a file NEW": [old, new, *bucket, "--cloud"],
        "no --bucket": [old, new],
    }[case]
    result = run(oss, "reconcile", *arguments, "--template", TEMPLATE)
    assert result.exit_code == code, result.output
    (line,) = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert says in line, line
    assert "Traceback" not in result.output and LONG_TERM.access_key_secret not in result.output
    if case != "no --bucket":
        diff = run(oss, "rules", "diff", *arguments[:2])
        if case in ("missing OLD", "invalid NEW", "NEW missing in OSS"):
            assert diff.exit_code == code and says in diff.output, diff.output
            assert "Traceback" not in diff.output and LONG_TERM.access_key_secret not in diff.output


def test_a_changed_ownership_tag_is_refused_and_nothing_is_sent_about_any_object(
    oss: LocalOSS,
    template_bucket: oss2.Bucket,
    tagged_by_old: tuple[str, str],
    requests_per_key: Counter[tuple[str, str]],
    tmp_path: Path,
) -> None:
    """Under another ownership tag, the tags the system set (recorded under `autotag`) are no longer its
    own: a reconcile would leave them orphaned (a later rule change could never remove them). It is refused
    in one line naming both tags, before any request about an object."""
    old, _ = tagged_by_old
    moved = tmp_path / "moved.json"
    moved.write_text(json.dumps({"version": 1, "ownership_tag": "at-owner", "rules": OLD_RULES}))
    before = tags_of(template_bucket, "a/0.txt")
    requests_per_key.clear()
    result = reconcile(oss, old, str(moved))
    assert result.exit_code == 2, result.output
    (line,) = [line for line in result.output.splitlines() if line.strip()]
    assert line.startswith("Error:") and "'autotag'" in line and "'at-owner'" in line, line
    assert not requests_per_key and tags_of(template_bucket, "a/0.txt") == before
    diff = last_json(run(oss, "rules", "diff", old, str(moved), "--json"))
    assert "no longer its own" in diff["whyWholeBucket"], diff


@pytest.mark.parametrize(
    ("side", "location", "says"),
    [
        ("NEW", "oss://Bad_Bucket/x.json", "'Bad_Bucket' is not a valid bucket name"),
        ("NEW", "oss://autotag-demo-state/", "an OSS location is oss://<bucket>/<key>"),
        ("OLD", "oss://Bad_Bucket/x.json", "'Bad_Bucket' is not a valid bucket name"),
        ("OLD", "oss://autotag-demo-state/", "an OSS location is oss://<bucket>/<key>"),
    ],
)
def test_a_malformed_oss_old_or_new_is_bad_input_naming_which(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path, side: str, location: str, says: str
) -> None:
    rules = write_rules(tmp_path / "rules.json", NEW_RULES)
    old, new = (location, rules) if side == "OLD" else (rules, location)
    for result in (reconcile(oss, old, new), run(oss, "rules", "diff", old, new)):
        (line,) = [line for line in result.output.splitlines() if line.startswith("Error")]
        assert result.exit_code == 2, result.output
        assert line.startswith(f"Error: {side} '{location}': {says}"), line
        assert "AUTOTAG_RULES" not in line and "Traceback" not in result.output, line


class NotOss(ThreadingHTTPServer):
    """An HTTP server that is not OSS: 403 to everything, no OSS error document, no request id."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's name
                self.send_response(403)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("case", "code", "says"),
    [
        ("dead endpoint", 3, "could not reach OSS"),
        ("wrong secret", 3, "SignatureDoesNotMatch"),
        ("not OSS", 3, "that answer is not OSS's"),
        ("missing object", 2, "there is no object at that key"),
    ],
)
def test_reading_an_oss_old_fails_with_the_exit_code_cli_md_gives(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path, case: str, code: int, says: str
) -> None:
    new = write_rules(tmp_path / "new.json", NEW_RULES)
    rules = "oss://autotag-demo-state/rules.json"
    oss2.Bucket(make_auth("long"), oss.endpoint, "autotag-demo-state").put_object(
        "rules.json", json.dumps({"version": 1, "rules": OLD_RULES}).encode()
    )
    env = {
        "AUTOTAG_OSS_ENDPOINT": oss.endpoint,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": LONG_TERM.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": LONG_TERM.access_key_secret,
    }
    server = NotOss()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        if case == "dead endpoint":
            env["AUTOTAG_OSS_ENDPOINT"] = f"http://127.0.0.1:{_free_port()}"
        elif case == "wrong secret":
            env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] = "not-the-secret"
        elif case == "not OSS":
            env["AUTOTAG_OSS_ENDPOINT"] = f"http://127.0.0.1:{server.server_address[1]}"
        elif case == "missing object":
            rules = "oss://autotag-demo-state/no-such-rules.json"
        result = CliRunner().invoke(cli, ["rules", "diff", rules, new], env=env)
    finally:
        server.shutdown()
        server.server_close()
    (line,) = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert result.exit_code == code, result.output
    assert line.startswith(f"Error: OLD {rules}") and says in line and "::" not in line, line
    assert "Traceback" not in result.output and "not-the-secret" not in result.output, result.output


def test_a_new_that_is_not_what_the_upload_function_reads_is_noted(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    old = write_rules(tmp_path / "old.json", OLD_RULES)
    new = write_rules(tmp_path / "notpushed.json", NEW_RULES)
    result = reconcile(oss, old, new, "--dry-run")
    assert result.exit_code == 0, result.output
    (note,) = [line for line in result.stderr.splitlines() if "tag-on-upload" in line]
    assert note.startswith(f"note: NEW ({new}) is not the rules tag-on-upload reads (default, fingerprint ")
    assert "uploads keep getting those rules' tags" in note, note
    same = reconcile(oss, old, "default", "--dry-run")  # template.yml's tag-on-upload reads `default`
    assert same.exit_code == 0 and "tag-on-upload" not in same.stderr, same.output

    unreadable = tmp_path / "template.yml"  # tag-on-upload reads rules that are not in OSS
    text = Path(TEMPLATE).read_text().replace("'./functions'", repr(str(Path(TEMPLATE).parent / "functions")))
    unreadable.write_text(
        text.replace("AUTOTAG_RULES: default", "AUTOTAG_RULES: oss://autotag-demo-state/x.json", 1)
    )
    said = run(oss, "reconcile", old, new, "--bucket", BUCKET, "--template", str(unreadable), "--dry-run")
    assert said.exit_code == 0, said.output
    (note,) = [line for line in said.stderr.splitlines() if "tag-on-upload" in line]
    assert note.startswith(
        "note: could not read the rules tag-on-upload reads (oss://autotag-demo-state/x.json"
    ), note


@pytest.mark.parametrize("cloudflow", ["dead", "not CloudFlow", "another service"])
def test_a_cloud_reconcile_that_cannot_start_leaves_no_manifest(
    oss: LocalOSS, template_bucket: oss2.Bucket, tagged_by_old: tuple[str, str], cloudflow: str
) -> None:
    old, new = tagged_by_old
    state = oss2.Bucket(make_auth("long"), oss.endpoint, "autotag-demo-state")
    state.put_object("rules.json", Path(new).read_bytes())
    server = NotOss()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = _free_port() if cloudflow == "dead" else server.server_address[1]
    endpoint = oss.endpoint if cloudflow == "another service" else f"http://127.0.0.1:{port}"
    try:
        result = reconcile(
            oss, old, "oss://autotag-demo-state/rules.json", "--cloud", "--cloudflow-endpoint", endpoint
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 3, result.output  # no answer, or not CloudFlow's: docs/cli.md's 3
    assert [o.key for o in oss2.ObjectIterator(state, prefix="backfill/manifests/")] == [], result.output
    if cloudflow == "dead":
        assert "cannot reach CloudFlow" in result.output and "candidates:" not in result.output, result.output
    else:
        assert "the candidates' manifest was deleted" in result.stderr, result.output
    if cloudflow != "dead":  # an answer that is not CloudFlow's
        (line,) = [line for line in result.output.splitlines() if line.startswith("Error")]
        assert "is the CloudFlow endpoint right?" in line and "None" not in line, line


def test_rules_diff_shows_patterns_as_written_says_why_a_pattern_is_unbounded_and_one_ratio_format(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path, tagged_by_old: tuple[str, str]
) -> None:
    old = write_rules(tmp_path / "old.json", OLD_RULES)
    docs = {"name": "docs", "key_regex": r"\.(?P<ext>md|txt)$", "tags": {"doc": "yes"}}
    teams = {"name": "teams", "key_regex": "(?i)^teams/", "tags": {"team": "any"}}
    lines = run(oss, "rules", "diff", old, write_rules(tmp_path / "docs.json", [*OLD_RULES, docs])).output
    assert "  after: key matches '\\.(?P<ext>md|txt)$'" in lines.splitlines(), lines
    assert "whole bucket: yes: 'docs' has a key pattern that is not anchored" in lines, lines
    result = run(oss, "rules", "diff", old, write_rules(tmp_path / "teams.json", [*OLD_RULES, teams]))
    assert "'teams' has a key pattern that is case-insensitive" in result.output, result.output
    control = {"name": "nl", "key_regex": "^a\nb", "tags": {"x": "y"}}
    said = run(oss, "rules", "diff", old, write_rules(tmp_path / "nl.json", [*OLD_RULES, control])).output
    assert "  after: key matches '^a\\nb'" in said.splitlines(), said  # a control still escaped
    estimated = run(oss, "rules", "diff", old, str(tmp_path / "docs.json"), "--bucket", BUCKET).output
    (ratio,) = [line for line in estimated.splitlines() if "per listed object" in line]
    assert re.search(r"\(\d+\.\d\d per listed object\)$", ratio), ratio
