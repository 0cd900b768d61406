"""The rules a function instance uses: the shipped file or a path in the code package, compiled once per
instance; or an OSS object (`AUTOTAG_RULES=oss://bucket/key`), read with the function's own credentials and
revalidated at most every `AUTOTAG_RULES_MAX_AGE` seconds (autotag/rules/remote.py). Rules decide every tag
the functions set and remove, so an object in a bucket the function acts on (AUTOTAG_BUCKETS: where
uploaders write) is refused as a rules location. The CLI reads rules kept in OSS through `fetch_from` too,
with its own credentials. A backfill execution may name rules of its own, pinned to one version
(`pinned_rules`), under the same refusal."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cache
from typing import Any

from ..gateway import AccessRefused, ObjectGone, OssFailure, OssGateway, RetryPolicy
from ..rules import RulesError, RuleSet, load_rules
from ..rules.loader import MAX_FILE_BYTES
from ..rules.remote import Fetch, Fetched, Location, RulesCache, parse_location
from ..settings import ConfigurationError, Settings, credentials_from
from .clients import open_bucket, oss_auth

_caches: dict[tuple[str, tuple[str, ...], float, str], RulesCache] = {}
_caches_lock = threading.Lock()
# Two attempts, not the gateway's four: a revalidation that fails keeps the version in use, and a first
# load must end within the initializer's timeout (template.yml: 30 s).
RULES_RETRY = RetryPolicy(attempts=2)


class RulesUnreadable(RulesError):
    """The rules object could not be read; the message names AUTOTAG_RULES, OSS's answer and the fix.
    `failure` is OSS's answer (or the lack of one), for a caller that tells the kinds apart."""

    def __init__(self, message: str, failure: OssFailure) -> None:
        super().__init__(message)
        self.failure = failure


@cache
def _file_rules(path: str, record_secrets: tuple[str, ...]) -> RuleSet:
    return load_rules(path, record_secrets)


def unreadable(location: Location, failed: OssFailure) -> RulesUnreadable:
    """AUTOTAG_RULES's object could not be read: where, what OSS said, and what to change."""
    if isinstance(failed, AccessRefused) and failed.code == "AccessDenied":
        fix = (
            f"; grant oss:GetObject on acs:oss:*:*:{location.bucket}/{location.key} to the function's role "
            "(docs/least-privilege.md)"
        )
    elif failed.code == "NoSuchBucket":
        fix = f"; there is no bucket {location.bucket!r}"
    elif isinstance(failed, ObjectGone):
        fix = "; there is no object at that key (put one there with `autotag rules push`)"
    elif failed.status and not failed.code and not failed.request_id:
        fix = "; that answer is not OSS's (no OSS error code, no request id): is the OSS endpoint right?"
    else:
        fix = ""
    return RulesUnreadable(f"AUTOTAG_RULES {location}: cannot read the rules ({failed}){fix}", failed)


def fetch_from(bucket: Any, location: Location) -> Fetch:
    """A `Fetch` of `location` through `bucket` (an oss2 Bucket for location.bucket)."""

    def fetch(etag: str | None, refused: frozenset[str]) -> Fetched | None:
        gateway = OssGateway(bucket, retry=RULES_RETRY)
        try:
            found = gateway.read_if_changed(location.key, etag, limit=MAX_FILE_BYTES, skip=refused)
        except OssFailure as failed:
            raise unreadable(location, failed) from None
        return None if found is None else Fetched(found.etag, found.data, found.size)

    return fetch


def _cache_for(settings: Settings, location: Location, context: Any) -> RulesCache:
    # One per function: FC gives each function instances of its own, which read the rules with its own
    # role (a host running several functions in one process must not lend one's version to another).
    function = getattr(getattr(context, "function", None), "name", "") or ""
    key = (settings.rules, settings.record_secrets, settings.rules_max_age, str(function))
    with _caches_lock:
        rules_cache = _caches.get(key)
        if rules_cache is None:
            rules_cache = _caches[key] = RulesCache(location, settings.record_secrets, settings.rules_max_age)
    return rules_cache


def _fetch(settings: Settings, context: Any, location: Location) -> Fetch:
    region = getattr(context, "region", "") or "cn-hangzhou"

    def fetch(etag: str | None, refused: frozenset[str]) -> Fetched | None:
        bucket = open_bucket(
            oss_auth(credentials_from(context)), settings.endpoint_for(region), location.bucket
        )
        return fetch_from(bucket, location)(etag, refused)

    return fetch


def rules_location(settings: Settings) -> Location | None:
    """AUTOTAG_RULES's OSS location (None: rules in the code package). ConfigurationError when it is in a
    bucket this function acts on: whoever may upload there could rewrite every rule, and a sweep would
    then remove every tag the system set."""
    location = parse_location(settings.rules)
    if location is not None and location.bucket in settings.buckets:
        raise ConfigurationError(
            f"AUTOTAG_RULES {location}: {location.bucket!r} is a bucket this function tags "
            "(AUTOTAG_BUCKETS), where uploaders write, and whoever writes the rules decides every tag: "
            "keep them where only deployers write, such as the sweep's state bucket "
            "(oss://<state bucket>/rules.json, docs/rules.md)"
        )
    return location


class RulesChanged(RulesError):
    """The rules object is not the version an execution pinned; the message names both versions."""


def pinned_rules(settings: Settings, context: Any, text: str, etag: str | None) -> RuleSet:
    """The rules a backfill execution runs with (its input's `rules`, an oss:// location), in the version
    `etag` when given: RulesChanged when OSS holds another one now, so that one execution never tags with
    two versions. Cached and revalidated as AUTOTAG_RULES's are (at most every AUTOTAG_RULES_MAX_AGE)."""
    location = parse_location(text, "the execution's rules")
    if location is None:
        raise RulesError(f"the execution's rules {text[:200]!r}: must be oss://<bucket>/<key>")
    if location.bucket in settings.buckets:
        raise ConfigurationError(
            f"the execution's rules {location}: {location.bucket!r} is a bucket this function tags "
            "(AUTOTAG_BUCKETS), where uploaders write, and whoever writes the rules decides every tag: "
            "keep them where only deployers write (docs/rules.md)"
        )
    function = getattr(getattr(context, "function", None), "name", "") or ""
    key = (str(location), settings.record_secrets, settings.rules_max_age, f"{function} execution")
    with _caches_lock:
        rules_cache = _caches.get(key)
        if rules_cache is None:
            rules_cache = _caches[key] = RulesCache(location, settings.record_secrets, settings.rules_max_age)
    rules = rules_cache.get(_fetch(settings, context, location))
    if etag is not None and rules_cache.etag != etag:
        raise RulesChanged(
            f"the execution's rules {location} changed after it started: it pinned version {etag}, OSS "
            f"holds {rules_cache.etag}; start a new execution to use them"
        )
    return rules


def current_rules(settings: Settings, context: Any) -> RuleSet:
    """The rules to apply now (raises RulesError when there are none that load, ConfigurationError when
    they are kept where uploaders write)."""
    location = rules_location(settings)
    if location is None:
        return _file_rules(settings.rules_path(), settings.record_secrets)
    return _cache_for(settings, location, context).get(_fetch(settings, context, location))


def rules_in_force(settings: Settings, context: Any) -> Callable[[], RuleSet] | None:
    """For rules kept in OSS: a call that answers the rules in force right then, by a conditional GET
    (RulesCache.confirm; raises RulesUnreadable when OSS cannot say). None for rules in the code package,
    which change only with a redeploy."""
    location = rules_location(settings)
    if location is None:
        return None
    rules_cache = _cache_for(settings, location, context)
    fetch = _fetch(settings, context, location)
    return lambda: rules_cache.confirm(fetch)
