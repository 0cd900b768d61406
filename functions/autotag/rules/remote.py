"""Rules kept in OSS (`AUTOTAG_RULES=oss://bucket/key`), so changing a rule needs no redeploy.

An instance loads the object once and then revalidates it at most every `max_age` seconds with a
conditional GET (`If-None-Match` with the ETag it holds): an unchanged file costs one small request per
`max_age` per instance, not one per event. A new version that fails to load never replaces the last good
one: the instance keeps tagging with what it has and says, once per version, which file, version and field
are wrong. Only without any good version (the first load) is a bad file an error.

`RulesCache` is pure apart from the `fetch` it is handed, so it is tested without OSS."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .engine import RuleSet
from .loader import RulesError, rules_from_bytes

SCHEME = "oss://"
DEFAULT_MAX_AGE_SECONDS = 60.0
log = logging.getLogger("autotag.rules")


@dataclass(frozen=True)
class Location:
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"


def parse_location(text: str) -> Location | None:
    """The bucket and key of an `oss://bucket/key` rules location; None for a local path. A malformed
    `oss://` location is an error naming it."""
    if not text.startswith(SCHEME):
        return None
    bucket, slash, key = text[len(SCHEME) :].partition("/")
    if not bucket or not slash or not key:
        raise RulesError(f"AUTOTAG_RULES {text!r}: an OSS location is oss://<bucket>/<key>")
    return Location(bucket, key)


@dataclass(frozen=True)
class Fetched:
    etag: str
    data: bytes


# fetch(etag held, or None) -> the object's new version, or None when it is unchanged (a 304)
Fetch = Callable[[str | None], Fetched | None]


class RulesCache:
    """The rules one instance uses for one location: loaded once, revalidated every `max_age` seconds."""

    def __init__(
        self,
        location: Location,
        record_secrets: tuple[str, ...] = (),
        max_age: float = DEFAULT_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.location = location
        self.record_secrets = record_secrets
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self.rules: RuleSet | None = None
        self.etag: str | None = None  # the version `rules` came from
        self.checked_at = float("-inf")
        self.refused: dict[str, str] = {}  # versions that failed to load -> why (reported once each)

    def get(self, fetch: Fetch) -> RuleSet:
        with self._lock:  # one revalidation at a time; concurrent events wait for it
            if self.rules is not None and self._clock() - self.checked_at < self.max_age:
                return self.rules
            try:
                fetched = fetch(self.etag)
            except Exception as error:
                if self.rules is None:
                    raise
                log.warning(
                    "rules %s: cannot revalidate (%s); still using version %s",
                    self.location,
                    error,
                    self.etag,
                )
                self.checked_at = self._clock()
                return self.rules
            self.checked_at = self._clock()
            if fetched is None or (self.rules is not None and fetched.etag == self.etag):
                if self.rules is None:  # a 304 answers only a conditional GET, made with a version held
                    raise RulesError(f"{self.location}: OSS answered 'not modified' to a first read")
                return self.rules
            if fetched.etag in self.refused:
                if self.rules is None:
                    raise RulesError(self.refused[fetched.etag])
                return self.rules
            source = f"{self.location} (version {fetched.etag})"
            try:
                yaml_file = self.location.key.lower().endswith((".yaml", ".yml"))
                rules = rules_from_bytes(fetched.data, source, self.record_secrets, yaml_file=yaml_file)
            except RulesError as error:
                self.refused[fetched.etag] = str(error)
                if self.rules is None:
                    raise
                log.error("%s; still using version %s (rules %s)", error, self.etag, self.rules.fingerprint)
                return self.rules
            self.rules, self.etag = rules, fetched.etag
            return rules
