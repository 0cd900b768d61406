"""The rules a function instance uses: the shipped file or a path in the code package, compiled once per
instance; or an OSS object (`AUTOTAG_RULES=oss://bucket/key`), read with the function's own credentials and
revalidated at most every `AUTOTAG_RULES_MAX_AGE` seconds (autotag/rules/remote.py)."""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from ..gateway import OssGateway
from ..rules import RuleSet, load_rules
from ..rules.remote import Fetched, RulesCache, parse_location
from ..settings import Settings, credentials_from
from .clients import open_bucket, oss_auth

_caches: dict[tuple[str, tuple[str, ...], float], RulesCache] = {}
_caches_lock = threading.Lock()


@cache
def _file_rules(path: str, record_secrets: tuple[str, ...]) -> RuleSet:
    return load_rules(path, record_secrets)


def current_rules(settings: Settings, context: Any) -> RuleSet:
    """The rules to apply now (raises RulesError when there are none that load)."""
    location = parse_location(settings.rules)
    if location is None:
        return _file_rules(settings.rules_path(), settings.record_secrets)
    key = (settings.rules, settings.record_secrets, settings.rules_max_age)
    with _caches_lock:
        rules_cache = _caches.get(key)
        if rules_cache is None:
            rules_cache = _caches[key] = RulesCache(location, settings.record_secrets, settings.rules_max_age)
    region = getattr(context, "region", "") or "cn-hangzhou"

    def fetch(etag: str | None) -> Fetched | None:
        bucket = open_bucket(
            oss_auth(credentials_from(context)), settings.endpoint_for(region), location.bucket
        )
        found = OssGateway(bucket).read_if_changed(location.key, etag)
        return None if found is None else Fetched(*found)

    return rules_cache.get(fetch)
