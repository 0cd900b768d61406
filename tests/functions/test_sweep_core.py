"""The sweep's pure core: payloads, passes and their checkpoint codec, candidate selection, shard plans."""

from __future__ import annotations

import gzip
import json
import threading
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from autotag.inventory import InventoryError, leading_rows, newest_run
from autotag.ownership import keyed_seal
from autotag.rules import RulesError, RuleSet, parse_rules
from autotag.sweep.checkpoint import (
    Checkpoint,
    PassTotals,
    Position,
    Scope,
    SweepPass,
    checkpoint_document,
    checkpoint_from_document,
    completed,
    decode_checkpoint,
    encode_checkpoint,
    next_pass,
)
from autotag.sweep.gateway import ListedObject
from autotag.sweep.request import SweepRequestError, parse_sweep_payload
from autotag.sweep.rules_watch import RulesUnconfirmed, RulesWatch
from autotag.sweep.sealing import NotBelieved, Place, seal, unseal
from autotag.sweep.selection import is_candidate
from autotag.sweep.shards import plan_shards, sampled_boundaries

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)
RULES = parse_rules(
    {
        "version": 1,
        "rules": [
            {"name": "kind", "tags": {"kind": {"from": "extension"}}},
            {"name": "tmp", "when": {"prefix": "tmp/"}, "tags": {"life": "tmp"}, "ttl": "7d"},
            {"name": "big", "when": {"size": {"min": "1MiB"}}, "tags": {"big": "yes"}, "ttl": "1d"},
            {"name": "meta", "when": {"meta": {"keep": "no"}}, "tags": {"x": "y"}, "ttl": "2d"},
            {
                "name": "not-logs",
                "when": {"not": {"all": [{"prefix": "logs/"}, {"content_type": "text/*"}]}},
                "tags": {"n": "1"},
                "ttl": "3d",
            },
        ],
    }
)

TMP_ONLY = parse_rules(
    {
        "version": 1,
        "rules": [{"name": "tmp", "when": {"prefix": "tmp/"}, "tags": {"life": "tmp"}, "ttl": "7d"}],
    }
)


def listed(key: str, size: int = 10, modified: datetime = T0) -> ListedObject:
    return ListedObject(key, size, modified, "etag")


@pytest.mark.parametrize(
    ("key", "size", "since", "clock", "expected"),
    [
        ("tmp/a", 10, None, T0, True),  # a full pass reads everything
        ("tmp/a", 10, T0 + 6 * DAY, T0 + 7 * DAY, True),  # the 7-day TTL ends inside the window
        ("tmp/a", 10, T0 + 7 * DAY, T0 + 8 * DAY, False),  # it ended in an earlier window
        ("docs/a", 10, T0 + 6 * DAY, T0 + 7 * DAY, False),  # no TTL rule can match this key or size
        ("docs/a", 2**21, T0, T0 + DAY, True),  # the size rule's TTL
        ("docs/a", 10, T0 + DAY, T0 + 2 * DAY, True),  # metadata rules: the listing cannot tell
        ("logs/a", 10, T0 + 2 * DAY, T0 + 3 * DAY, True),  # `not` over something unknowable: maybe
    ],
)
def test_candidates_come_from_the_listing_alone(
    key: str, size: int, since: datetime | None, clock: datetime, expected: bool
) -> None:
    assert is_candidate(RULES, listed(key, size), since, clock) is expected


@given(st.integers(0, 30 * 86400), st.integers(0, 30 * 86400), st.integers(1, 30 * 86400))
def test_consecutive_windows_see_each_expiry_exactly_once(age: int, first: int, second: int) -> None:
    """Windows (a, b] and (b, c] partition time: an expiry moment falls in exactly one of them."""
    obj = listed("tmp/x", modified=T0 + timedelta(seconds=age))
    a, b, c = T0, T0 + timedelta(seconds=first), T0 + timedelta(seconds=first + second)
    hits = is_candidate(TMP_ONLY, obj, a, b) + is_candidate(TMP_ONLY, obj, b, c)
    expires = obj.last_modified + 7 * DAY
    assert hits == (a < expires <= c)


def test_passes_resume_go_incremental_and_go_full_when_rules_change() -> None:
    scope = Scope("b")
    fresh = next_pass(Checkpoint(scope), "r1", T0)
    assert fresh is not None and fresh.mode == "full"
    midway = Checkpoint(scope, current=SweepPass(T0, None, "r1", Position("k")))
    assert next_pass(midway, "r1", T0 + DAY) == midway.current  # resumes at its own clock
    restarted = next_pass(midway, "r2", T0 + DAY)
    assert restarted is not None and (restarted.mode, restarted.position) == ("full", Position())
    done = completed(midway, midway.current)  # type: ignore[arg-type]
    incremental = next_pass(done, "r1", T0 + DAY)
    assert incremental is not None and (incremental.mode, incremental.since) == ("incremental", T0)
    assert next_pass(done, "r1", T0) is None  # nothing new to judge
    forced = next_pass(done, "r1", T0 + DAY, force_full=True)
    assert forced is not None and forced.mode == "full"


# Any year a datetime can hold: a checkpoint written at any clock must read back (years below 1000 too).
times = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(timezone.utc)
).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))


checkpoints = st.builds(
    Checkpoint,
    st.builds(
        Scope, st.just("bkt"), st.text(max_size=5), st.text(max_size=5), st.none() | st.text(max_size=5)
    ),
    st.none() | times,
    st.none() | st.text(max_size=8),
    st.none()
    | st.builds(
        SweepPass,
        times,
        st.none() | times,
        st.text(max_size=8),
        st.builds(Position, st.text(max_size=20), st.text(max_size=5)),
        st.builds(PassTotals, *([st.integers(0, 10**9)] * 6)),
        st.booleans(),
        st.none() | st.text(max_size=8),
    ),
    st.none() | st.text(max_size=8),
)


@given(checkpoints)
def test_checkpoints_survive_the_round_trip(checkpoint: Checkpoint) -> None:
    assert decode_checkpoint(encode_checkpoint(checkpoint), checkpoint.scope) == checkpoint


HERE = Place("state-bucket", ".autotag/sweep/0123/checkpoint.json")


@given(checkpoints, st.sampled_from([(), ("s1",), ("s1", "s0")]))
def test_sealed_checkpoints_are_believed_where_and_when_they_were_sealed(
    checkpoint: Checkpoint, secrets: tuple[str, ...]
) -> None:
    data = seal(checkpoint_document(checkpoint), HERE, T0, secrets)
    document = unseal(data, HERE, T0 + timedelta(seconds=2), secrets)
    assert checkpoint_from_document(document, checkpoint.scope) == checkpoint


def sealed_at_here(document: dict[str, Any], secrets: tuple[str, ...] = ("s1",)) -> bytes:
    sealed: bytes = seal(document, HERE, T0, secrets)
    return sealed


@pytest.mark.parametrize(
    ("data", "place", "stamped", "secrets", "why"),
    [
        (b"\x00garbage", HERE, T0, ("s1",), "not JSON"),
        (b"[" * 100_000, HERE, T0, ("s1",), "not JSON"),
        (b'{"format": 1, "completed": {}}', HERE, T0, ("s1",), "carries no seal"),
        (b'{"seal": 7}', HERE, T0, ("s1",), "carries no seal"),
        (
            sealed_at_here({"n": 1}),
            Place("state-bucket", ".autotag/sweep/4567/checkpoint.json"),
            T0,
            ("s1",),
            "copied from another scope",
        ),
        (
            sealed_at_here({"n": 1}),
            Place("other-bucket", HERE.key),
            T0,
            ("s1",),
            "copied from another scope or bucket",
        ),
        (sealed_at_here({"n": 1}).replace(b'"n": 1', b'"n": 2'), HERE, T0, ("s1",), "changed since"),
        (sealed_at_here({"n": 1}, ()), HERE, T0, ("s1",), "not sealed by this system"),  # unkeyed, secret set
        (sealed_at_here({"n": 1}), HERE, T0, ("s2",), "not sealed by this system"),  # another secret
        (sealed_at_here({"n": 1}).replace(b'seal": "', rb'seal": "\u00e9'), HERE, T0, ("s1",), "not sealed"),
        (sealed_at_here({"n": 1}), HERE, T0 + timedelta(minutes=6), ("s1",), "a copy written back later"),
        (sealed_at_here({"n": 1}), HERE, T0 - timedelta(minutes=6), ("s1",), "a copy written back later"),
    ],
)
def test_state_not_sealed_here_and_then_is_not_believed(
    data: bytes, place: Place, stamped: datetime, secrets: tuple[str, ...], why: str
) -> None:
    with pytest.raises(NotBelieved, match=why):
        unseal(data, place, stamped, secrets)


def test_a_rotated_secret_still_opens_what_the_old_one_sealed_and_state_seals_are_not_record_seals() -> None:
    data = sealed_at_here({"n": 1}, ("old",))
    assert unseal(data, HERE, T0, ("new", "old")) == {"n": 1}
    assert json.loads(sealed_at_here({"n": 1}))["seal"] != keyed_seal("s1", ["autotag-record-1"], 52)
    with pytest.raises(ValueError, match="'seal'"):
        seal({"seal": "x"}, HERE, T0)


@pytest.mark.parametrize("data", [b"", b"{}", b'{"format": 99}', b'{"format": 1, "completed": 3}', b"\xff"])
def test_unreadable_checkpoints_are_a_clear_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="checkpoint"):
        decode_checkpoint(data, Scope("b"))


keys = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=8)


@given(st.lists(keys, min_size=0, max_size=30), st.integers(1, 8), st.lists(keys, max_size=30))
def test_shards_cover_every_key_exactly_once(boundaries: list[str], count: int, probes: list[str]) -> None:
    shards = plan_shards(boundaries, count)
    assert shards[0].start_at == "" and shards[-1].end_before is None
    for probe in probes + boundaries:
        owners = [s for s in shards if Scope("b", "", s.start_at, s.end_before).contains(probe)]
        assert len(owners) == 1


@given(keys, keys)
def test_a_shards_first_listing_marker_reaches_its_first_key(start: str, key: str) -> None:
    """Listing after the pass's start marker (OSS: keys strictly after it, in UTF-8 byte order) reaches
    every key the shard contains."""
    sweep = next_pass(Checkpoint(Scope("b", "", start, None)), "r", T0)
    assert sweep is not None
    marker = sweep.position.key.encode()
    if key >= start:
        assert key.encode() > marker


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("[]", "payload: [] is not of type 'object'"),
        ('{"buckets": []}', "payload.buckets: [] should be non-empty"),
        (json.dumps({"buckets": ["b" * 63] * 101}), "payload.buckets: 101 entries; at most 100"),
        (json.dumps({"buckets": ["b" * 10_000]}), "payload.buckets[0]: 'bbbbbbbb"),
        (
            json.dumps({"buckets": ["ok-bucket"], "prefix": "p" * 2000}),
            "payload.prefix: 2000 characters; at most 1023",
        ),
        (
            '{"buckets": ["ok-bucket"], "qps": -1}',
            "payload.qps: -1 is less than or equal to the minimum of 0",
        ),
        ('{"buckets": ["ok-bucket"], "colour": 1}', "Additional properties are not allowed ('colour'"),
        (
            '{"buckets": ["ok-bucket"], "shard": {"index": 2, "count": 2, "startAt": "", "endBefore": null}}',
            "payload.shard.index: 2 is not below count 2",
        ),
        (
            json.dumps({"buckets": ["ok-bucket"], "shards": 4, "inventory": "s3://inv/m.json"}),
            "payload.inventory: 's3://inv/m.json' does not match",
        ),
        (
            json.dumps({"buckets": ["ok-bucket"], "shards": 4, "inventory": "oss://inv/x/" + "k" * 2000}),
            "payload.inventory: 2012 characters; at most 1100",
        ),
        (
            json.dumps({"buckets": ["ok-bucket"], "shards": 4, "inventory": "oss://inv/ok-bucket/daily"}),
            "payload.inventory: 'oss://inv/ok-bucket/daily' is neither a manifest (…/manifest.json) nor a "
            "folder of an inventory's runs (ending in /)",
        ),
        (
            json.dumps({"buckets": ["ok-bucket"], "inventory": "oss://inv/ok-bucket/daily/"}),
            "payload.inventory: it plans the shards of a sweep; give shards of 2 or more",
        ),
        (
            json.dumps({"buckets": ["ok-bucket", "b2-x"], "shards": 2, "inventory": "oss://inv/d/"}),
            "payload.inventory: an inventory lists one bucket; buckets names 2",
        ),
        (
            json.dumps({"buckets": ["ok-bucket"], "shards": 2, "inventory": 7}),
            "payload.inventory: 7 is not of type 'string'",
        ),
    ],
)
def test_bad_payloads_name_the_field(payload: str, message: str) -> None:
    with pytest.raises(SweepRequestError) as raised:
        parse_sweep_payload(payload)
    assert message in str(raised.value)
    assert len(str(raised.value)) < 200, str(raised.value)  # the field and what is wrong, not the value


def test_payload_round_trips_through_the_shard_events() -> None:
    request = parse_sweep_payload('{"buckets": ["ok-bucket"], "prefix": "p/", "qps": 50, "dryRun": true}')
    assert parse_sweep_payload(request.as_payload()) == request


@pytest.mark.parametrize(
    "location",
    ["oss://inv/inventory/ok-bucket/daily/", "oss://inv/ok-bucket/daily/2026-12-01T00-00Z/manifest.json"],
)
def test_an_inventory_is_a_manifest_or_a_folder_of_runs(location: str) -> None:
    request = parse_sweep_payload({"buckets": ["ok-bucket"], "shards": 8, "inventory": location})
    assert request.inventory == location
    assert parse_sweep_payload(request.as_payload()) == request


def test_the_start_of_a_data_file_gives_its_complete_records_only() -> None:
    """A ranged read cuts a gzip data file anywhere: what gunzips is parsed up to its last whole line."""
    keys = [f"all/k{i:05d} é+%" for i in range(5000)]
    lines = "".join(f'"ok-bucket","{quote(key)}","7"\n' for key in keys).encode()
    data = gzip.compress(lines)
    columns = ("Bucket", "Key", "Size")
    for size in (200, 4096, 10_000):
        rows = leading_rows(data[:size], columns, "oss://inv/data/1.csv.gz")
        assert 0 < len(rows) < 5000 and [row.key for row in rows] == keys[: len(rows)]
    assert [row.key for row in leading_rows(data, columns, "whole")] == keys
    with pytest.raises(InventoryError, match=r"oss://inv/x.csv.gz cannot be read: not gzip"):
        leading_rows(b"not gzip at all", columns, "oss://inv/x.csv.gz")


def test_the_newest_run_of_an_inventory_folder() -> None:
    parent = "inventory/b/daily/"
    folders = [
        f"{parent}data/",
        f"{parent}2026-11-30T00-00Z/",
        f"{parent}2026-12-01T00-00Z/",
        f"{parent}hive/",
    ]
    assert newest_run(folders, parent) == f"{parent}2026-12-01T00-00Z/"
    assert newest_run([f"{parent}data/"], parent) is None


def test_inventory_samples_weigh_each_file_alike_and_leave_out_other_prefixes_and_the_state() -> None:
    files = [[f"p/a{i:03d}" for i in range(100)], ["p/b0", "q/x", ".autotag/s", "p/b1"]]
    chosen = sampled_boundaries(files, "p/", ".autotag/", limit=10)
    assert chosen == ["p/a000", "p/a020", "p/a040", "p/a060", "p/a080", "p/b0", "p/b1"]


def test_a_rules_check_vouches_only_for_reads_made_before_it_was_sent() -> None:
    """Two workers that read tags before a check was sent share its answer; one that read while it was in
    flight waits for a check of its own: the rules it is told are in force were asked after its read."""
    sent, release = threading.Event(), threading.Event()
    answers = iter([RULES, TMP_ONLY])

    def confirm() -> RuleSet:
        sent.set()
        release.wait(300)
        return next(answers)

    watch = RulesWatch(confirm)
    early = watch.ticket()
    told: dict[str, RuleSet] = {}
    first = threading.Thread(target=lambda: told.setdefault("first", watch.in_force(early)))
    first.start()
    assert sent.wait(300)
    late = watch.ticket()  # read while the first check was on its way
    also_early = threading.Thread(target=lambda: told.setdefault("also early", watch.in_force(early)))
    also_early.start()
    release.set()
    first.join()
    also_early.join()
    told["late"] = watch.in_force(late)
    assert told == {"first": RULES, "also early": RULES, "late": TMP_ONLY}
    assert watch.checks == 2 and watch.latest is TMP_ONLY


def test_a_rules_check_that_fails_vouches_for_nothing() -> None:
    outcomes: list[RuleSet | Exception] = [RulesError("AUTOTAG_RULES oss://r/rules.json: cannot read"), RULES]

    def confirm() -> RuleSet:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    watch = RulesWatch(confirm)
    ticket = watch.ticket()
    with pytest.raises(RulesUnconfirmed, match="cannot read") as raised:
        watch.in_force(ticket)
    assert raised.value.why() == "the rules in force could not be read"
    with pytest.raises(RulesUnconfirmed):  # a read before the failed check: no answer vouches for it
        watch.in_force(ticket)
    assert watch.in_force(watch.ticket()) is RULES and watch.checks == 2
