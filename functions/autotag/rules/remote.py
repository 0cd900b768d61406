"""Rules kept in OSS (`AUTOTAG_RULES=oss://bucket/key`), so changing a rule needs no redeploy.

An instance loads the object once and then revalidates it at most every `max_age` seconds with a
conditional GET (`If-None-Match` with the ETag it holds): an unchanged file costs one small request per
`max_age` per instance, not one per event. A new version that fails to load never replaces the last good
one: the instance keeps tagging with what it has and says, once per version, which file, version and field
are wrong; that version's bytes are not downloaded again (its ETag is remembered, and checked in the
response's headers before the body is read). Only without any good version (the first load) is a bad file
an error. The functions read JSON: a .yaml/.yml key is refused before anything is read.

The expiry sweep also asks, before it removes a tag, which rules are in force right then (`confirm`: one
conditional GET, whatever `max_age` says), so a tag the upload function set under a newer version is never
judged by an older one.

`RulesCache` is pure apart from the `fetch` it is handed, so it is tested without OSS."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .engine import RuleSet
from .loader import RulesError, is_yaml_name, rules_from_bytes, too_big, yaml_refused

SCHEME = "oss://"
DEFAULT_MAX_AGE_SECONDS = 60.0
log = logging.getLogger("autotag.rules")


@dataclass(frozen=True)
class Location:
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}"


# OSS's bucket naming rule: 3-63 characters of lowercase letters, digits and hyphens, starting and ending
# with a letter or digit
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


def parse_location(text: str, name: str = "AUTOTAG_RULES") -> Location | None:
    """The bucket and key of an `oss://bucket/key` rules location; None for a local path. A malformed
    `oss://` location is an error naming it (and `name`, where it was given)."""
    if not text.startswith(SCHEME):
        return None
    bucket, slash, key = text[len(SCHEME) :].partition("/")
    if not bucket or not slash or not key:
        raise RulesError(f"{name} {text!r}: an OSS location is oss://<bucket>/<key>")
    if not _BUCKET_NAME.fullmatch(bucket):
        raise RulesError(
            f"{name} {text!r}: {bucket[:70]!r} is not a valid bucket name (3-63 lowercase letters, "
            "digits and hyphens, starting and ending with a letter or digit)"
        )
    return Location(bucket, key)


@dataclass(frozen=True)
class Fetched:
    """A version of the rules object: its ETag and bytes; `data` is None when they were not read (a
    version already refused, or one whose announced `size` is over the limit)."""

    etag: str
    data: bytes | None
    size: int | None = None


# fetch(etag held, versions refused) -> the object's version when it is not the one held, or None when it
# is (a 304). A version in `refused`, or over MAX_FILE_BYTES, comes back without its bytes; at most
# MAX_FILE_BYTES + 1 of them are read in any case.
Fetch = Callable[[str | None, frozenset[str]], Fetched | None]


class RulesCache:
    """The rules one instance uses for one location: loaded once, revalidated every `max_age` seconds.

    One event revalidates at a time, and only that one waits for OSS: the others go on with the version in
    use meanwhile, so a slow or hung revalidation never stalls a batch's workers. Before any good version,
    every event waits for the first load (there is nothing else to tag with)."""

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

    def _fresh(self) -> RuleSet | None:
        if self.rules is not None and self._clock() - self.checked_at < self.max_age:
            return self.rules
        return None

    def get(self, fetch: Fetch) -> RuleSet:
        if is_yaml_name(self.location.key):  # refused before any request: the functions read JSON only
            raise yaml_refused(f"AUTOTAG_RULES {self.location}")
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        held = self.rules
        if not self._lock.acquire(blocking=held is None):
            return held  # type: ignore[return-value]  # another event is revalidating: use what is held
        try:
            fresh = self._fresh()  # loaded or revalidated while this one waited
            if fresh is not None:
                return fresh
            return self._revalidate(fetch)
        finally:
            self._lock.release()

    def confirm(self, fetch: Fetch) -> RuleSet:
        """The rules in force now, by a conditional GET sent after this call began, however recently the
        held version was checked (one small request: 304 when nothing changed). Unlike `get`, a read that
        fails raises: the expiry sweep asks before it removes a tag, and must not act on rules it cannot
        confirm. A new version that fails to load leaves the held one in force, as for every event."""
        if is_yaml_name(self.location.key):
            raise yaml_refused(f"AUTOTAG_RULES {self.location}")
        with self._lock:
            return self._revalidate(fetch, strict=True)

    def _revalidate(self, fetch: Fetch, *, strict: bool = False) -> RuleSet:
        try:
            fetched = fetch(self.etag, frozenset(self.refused))
        except Exception as error:
            if self.rules is None or strict:
                raise
            log.warning("%s; still using version %s (rules %s)", error, self.etag, self.rules.fingerprint)
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
            if fetched.data is None:
                raise too_big(source, fetched.size)
            rules = rules_from_bytes(fetched.data, source, self.record_secrets)
        except RulesError as error:
            self.refused[fetched.etag] = str(error)
            if self.rules is None:
                raise
            log.error("%s; still using version %s (rules %s)", error, self.etag, self.rules.fingerprint)
            return self.rules
        self.rules, self.etag = rules, fetched.etag
        return rules
