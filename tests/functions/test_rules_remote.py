"""Rules kept in OSS, as one instance sees them: loaded once, revalidated at most every max_age seconds, a
bad new version never replacing the last good one (the OSS side is in tests/e2e/test_rules_from_oss.py)."""

from __future__ import annotations

import json
import logging

import pytest

from autotag.rules import RulesError
from autotag.rules.remote import Fetched, Location, RulesCache, parse_location


def rules(value: str) -> bytes:
    return json.dumps({"version": 1, "rules": [{"name": "team", "tags": {"team": value}}]}).encode()


class Bucket:
    """What OSS holds, and the conditional reads made of it."""

    def __init__(self, data: bytes) -> None:
        self.version, self.data, self.reads = 1, data, []  # type: ignore[var-annotated]

    def put(self, data: bytes) -> None:
        self.version, self.data = self.version + 1, data

    def fetch(self, held: str | None, refused: frozenset[str] = frozenset()) -> Fetched | None:
        self.reads.append(held)
        etag = f"v{self.version}"
        return None if held == etag else Fetched(etag, self.data)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def team(cache: RulesCache, bucket: Bucket) -> str:
    ruleset = cache.get(bucket.fetch)
    return str(ruleset.rules[0].tags[0].value(None, {}))  # type: ignore[arg-type]


def test_loaded_once_then_revalidated_with_the_etag_at_most_every_max_age() -> None:
    bucket, clock = Bucket(rules("blue")), Clock()
    cache = RulesCache(Location("b", "rules.json"), max_age=60, clock=clock)
    assert team(cache, bucket) == "blue" and bucket.reads == [None]
    for _ in range(100):  # events within max_age cost nothing
        team(cache, bucket)
    assert bucket.reads == [None]
    clock.now = 61
    assert team(cache, bucket) == "blue" and bucket.reads == [None, "v1"]  # a 304: still v1
    bucket.put(rules("green"))
    assert team(cache, bucket) == "blue"  # not yet checked again
    clock.now = 122
    assert team(cache, bucket) == "green" and cache.etag == "v2"


def test_a_bad_version_never_replaces_the_last_good_one(caplog: pytest.LogCaptureFixture) -> None:
    bucket, clock = Bucket(rules("blue")), Clock()
    cache = RulesCache(Location("b", "rules.json"), max_age=1, clock=clock)
    good = cache.get(bucket.fetch).fingerprint
    bucket.put(json.dumps({"version": 1, "rules": [{"name": "x", "tags": {"k": "v"}, "tll": "1d"}]}).encode())
    with caplog.at_level(logging.ERROR, logger="autotag.rules"):
        for second in range(2, 6):
            clock.now = second
            assert cache.get(bucket.fetch).fingerprint == good
    (error,) = [r.getMessage() for r in caplog.records]  # once per bad version, not once per check
    assert "oss://b/rules.json (version v2)" in error and "did you mean `ttl`?" in error
    assert f"still using version v1 (rules {good})" in error
    bucket.put(rules("green"))
    clock.now = 10
    assert team(cache, bucket) == "green"


def test_a_refused_version_is_named_to_every_later_read(caplog: pytest.LogCaptureFixture) -> None:
    """So the gateway can leave its bytes unread (it compares the ETag in the headers first)."""
    bucket, clock = Bucket(rules("blue")), Clock()
    cache = RulesCache(Location("b", "rules.json"), max_age=1, clock=clock)
    cache.get(bucket.fetch)
    bucket.put(b"{")
    seen: list[frozenset[str]] = []

    def fetch(held: str | None, refused: frozenset[str]) -> Fetched | None:
        seen.append(refused)
        return bucket.fetch(held, refused)

    for second in range(2, 5):
        clock.now = second
        cache.get(fetch)
    assert seen == [frozenset(), {"v2"}, {"v2"}]


def test_an_object_too_big_to_read_is_refused_from_its_size() -> None:
    def fetch(_held: str | None, _refused: frozenset[str]) -> Fetched | None:
        return Fetched("big", None, 5_000_000_000)

    with pytest.raises(
        RulesError, match=r"\(version big\): a rules file is at most 1 MiB; this one is 5000000000"
    ):
        RulesCache(Location("b", "rules.json")).get(fetch)


def test_without_a_good_version_a_bad_file_is_an_error() -> None:
    cache = RulesCache(Location("b", "rules.json"), max_age=1)
    with pytest.raises(RulesError, match=r"oss://b/rules.json \(version v1\): not valid JSON"):
        cache.get(Bucket(b"{").fetch)


def test_an_unreachable_oss_keeps_the_rules_in_use() -> None:
    bucket, clock = Bucket(rules("blue")), Clock()
    cache = RulesCache(Location("b", "rules.json"), max_age=1, clock=clock)
    team(cache, bucket)

    def failing(_held: str | None, _refused: frozenset[str]) -> Fetched | None:
        raise ConnectionError("OSS is unreachable")

    clock.now = 5
    assert cache.get(failing) is cache.rules
    with pytest.raises(ConnectionError):  # nothing to fall back on
        RulesCache(Location("b", "rules.json")).get(failing)


def test_a_yaml_key_is_refused_before_any_read_and_locations_are_checked() -> None:
    bucket = Bucket(b"version: 1\nrules:\n  - name: team\n    tags: {team: red}\n")
    with pytest.raises(
        RulesError, match=r"AUTOTAG_RULES oss://b/team\.yaml: the functions read rules as JSON"
    ):
        RulesCache(Location("b", "team.yaml")).get(bucket.fetch)
    assert bucket.reads == []
    assert parse_location("rules/local.json") is None
    assert parse_location("oss://b-1/dir/r.json") == Location("b-1", "dir/r.json")
    with pytest.raises(RulesError, match="an OSS location is oss://<bucket>/<key>"):
        parse_location("oss://just-a-bucket")
    with pytest.raises(RulesError, match="'Bad_Bucket' is not a valid bucket name"):
        parse_location("oss://Bad_Bucket/r.json")


def test_a_hung_revalidation_stalls_only_the_event_making_it() -> None:
    """The others go on with the version in use; only the first load makes everyone wait."""
    import threading

    bucket, clock = Bucket(rules("blue")), Clock()
    cache = RulesCache(Location("b", "rules.json"), max_age=1, clock=clock)
    held = cache.get(bucket.fetch)
    clock.now = 5
    entered, release = threading.Event(), threading.Event()

    def hung(held_etag: str | None, refused: frozenset[str]) -> Fetched | None:
        entered.set()
        release.wait(300)
        return bucket.fetch(held_etag, refused)

    revalidating = threading.Thread(target=cache.get, args=(hung,))
    revalidating.start()
    assert entered.wait(300)
    answered = [cache.get(bucket.fetch) for _ in range(3)]  # no waiting: the version held
    release.set()
    revalidating.join()
    assert answered == [held] * 3 and bucket.reads == [None, "v1"]


def test_confirm_asks_oss_every_time_and_never_answers_with_rules_it_could_not_check() -> None:
    """What the expiry sweep asks before it removes a tag: a conditional GET whatever max_age says; a new
    version is taken up; a read that fails raises instead of answering with the version held."""
    bucket, clock = Bucket(rules("blue")), Clock()
    cache = RulesCache(Location("b", "rules.json"), max_age=60, clock=clock)
    held = cache.get(bucket.fetch)
    assert cache.confirm(bucket.fetch) is held and bucket.reads == [None, "v1"]  # a 304, within max_age
    bucket.put(rules("green"))
    assert cache.confirm(bucket.fetch).fingerprint != held.fingerprint and cache.etag == "v2"

    def unreachable(etag: str | None, refused: frozenset[str]) -> Fetched | None:
        raise RulesError("AUTOTAG_RULES oss://b/rules.json: cannot read the rules (GetObject: 503)")

    with pytest.raises(RulesError, match="cannot read the rules"):
        cache.confirm(unreachable)
    assert team(cache, bucket) == "green"  # events still use the version held
