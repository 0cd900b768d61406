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

    def fetch(self, held: str | None) -> Fetched | None:
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


def test_without_a_good_version_a_bad_file_is_an_error() -> None:
    cache = RulesCache(Location("b", "rules.json"), max_age=1)
    with pytest.raises(RulesError, match=r"oss://b/rules.json \(version v1\): not valid JSON"):
        cache.get(Bucket(b"{").fetch)


def test_an_unreachable_oss_keeps_the_rules_in_use() -> None:
    bucket, clock = Bucket(rules("blue")), Clock()
    cache = RulesCache(Location("b", "rules.json"), max_age=1, clock=clock)
    team(cache, bucket)

    def failing(_held: str | None) -> Fetched | None:
        raise ConnectionError("OSS is unreachable")

    clock.now = 5
    assert cache.get(failing) is cache.rules
    with pytest.raises(ConnectionError):  # nothing to fall back on
        RulesCache(Location("b", "rules.json")).get(failing)


def test_yaml_by_the_key_and_locations_are_checked() -> None:
    cache = RulesCache(Location("b", "team.yaml"))
    loaded = cache.get(
        lambda _held: Fetched("e", b"version: 1\nrules:\n  - name: team\n    tags: {team: red}\n")
    )
    assert loaded.rules[0].name == "team"
    assert parse_location("rules/local.json") is None
    assert parse_location("oss://b/dir/r.json") == Location("b", "dir/r.json")
    with pytest.raises(RulesError, match="an OSS location is oss://<bucket>/<key>"):
        parse_location("oss://just-a-bucket")
