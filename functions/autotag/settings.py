"""The function's configuration, read from the environment template.yml declares."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from .ownership import record_secrets

DEFAULT_RULES = "default"  # the rules shipped in autotag/rules/default.json
DEFAULT_STATE_PREFIX = ".autotag/"  # the folder of the sweep's state, wherever it is kept
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")  # OSS's bucket naming rules


class ConfigurationError(RuntimeError):
    """The function is deployed without something it needs; the message names the variable."""


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    access_key_secret: str
    security_token: str


@dataclass(frozen=True)
class Settings:
    rules: str
    endpoint: str | None  # None: the region's internal endpoint
    state_prefix: str = DEFAULT_STATE_PREFIX
    record_secrets: tuple[str, ...] = ()  # key the ownership record's seal (see ownership.py)
    rules_max_age: float = 60.0  # seconds between revalidations of rules kept in OSS
    batch_workers: int = 8  # objects of one batched delivery tagged at once
    # The buckets this function acts on (AUTOTAG_BUCKETS): an event naming another is refused. Empty: not
    # configured, and every event fails with a ConfigurationError rather than act on whatever it names.
    buckets: frozenset[str] = frozenset()
    # What the expiry sweep's pass after a change of rules does (AUTOTAG_RECONCILE_ON_RULES_CHANGE):
    # `selected` (only the objects the change can reach, given the new rules' full plan), `full` (every
    # object, the full plan) or `prune` (every object, stale tags removed and nothing added).
    reconcile_on_rules_change: str = "selected"

    @classmethod
    def from_environment(cls) -> Settings:
        return cls(
            rules=os.environ.get("AUTOTAG_RULES") or DEFAULT_RULES,
            endpoint=os.environ.get("AUTOTAG_OSS_ENDPOINT") or None,
            state_prefix=os.environ.get("AUTOTAG_STATE_PREFIX") or DEFAULT_STATE_PREFIX,
            record_secrets=record_secrets(os.environ.get("AUTOTAG_RECORD_SECRET", "")),
            rules_max_age=_seconds("AUTOTAG_RULES_MAX_AGE", 60.0),
            batch_workers=_count("AUTOTAG_BATCH_WORKERS", 8),
            buckets=_buckets("AUTOTAG_BUCKETS"),
            reconcile_on_rules_change=_choice(
                "AUTOTAG_RECONCILE_ON_RULES_CHANGE", ("selected", "full", "prune"), "selected"
            ),
        )

    def require_buckets(self) -> None:
        """Raise ConfigurationError when no bucket is configured: acting on whatever bucket an event names
        is what the setting exists to prevent."""
        if not self.buckets:
            raise ConfigurationError(
                "AUTOTAG_BUCKETS is not set: it lists the buckets this function acts on (template.yml sets "
                "it to the trigger's bucket); events naming other buckets are refused"
            )

    def bucket_refusal(self, bucket: str) -> str:
        """Why this function must not act on `bucket`, or "" when it is one of its buckets."""
        self.require_buckets()
        if bucket in self.buckets:
            return ""
        return (
            f"the bucket {bucket!r} is not one this function acts on "
            f"(AUTOTAG_BUCKETS: {', '.join(sorted(self.buckets))})"
        )

    def rules_path(self) -> str:
        if self.rules == DEFAULT_RULES:
            return str(resources.files("autotag").joinpath("rules/default.json"))
        return self.rules

    def endpoint_for(self, region: str) -> str:
        return self.endpoint or f"https://oss-{region}-internal.aliyuncs.com"


def _seconds(name: str, default: float) -> float:
    text = os.environ.get(name) or ""
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86400:
        raise ConfigurationError(f"{name} {text!r}: a number of seconds from 0 to 86400")
    return value


def _buckets(name: str) -> frozenset[str]:
    """Bucket names separated by commas or spaces; each must be a name OSS allows."""
    text = os.environ.get(name) or ""
    names = [part for part in re.split(r"[\s,]+", text) if part]
    for bucket in names:
        if not BUCKET_NAME.fullmatch(bucket):
            raise ConfigurationError(
                f"{name}: {bucket[:70]!r} is not a bucket name (3-63 lower-case letters, digits and "
                "hyphens, starting and ending with a letter or digit)"
            )
    return frozenset(names)


def _choice(name: str, choices: tuple[str, ...], default: str) -> str:
    text = (os.environ.get(name) or "").strip()
    if not text:
        return default
    if text not in choices:
        raise ConfigurationError(f"{name} {text[:40]!r}: one of {', '.join(choices)}")
    return text


def _count(name: str, default: int) -> int:
    text = os.environ.get(name) or ""
    if not text:
        return default
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 64):
        raise ConfigurationError(f"{name} {text!r}: a whole number from 1 to 64")
    return int(text)


def credentials_from(context: Any) -> Credentials:
    """The invocation's STS credentials: FC 2.0 puts them on the context, FC 3.0 in the environment."""
    given = getattr(context, "credentials", None)
    if given is not None and getattr(given, "access_key_id", None):
        return Credentials(given.access_key_id, given.access_key_secret, given.security_token or "")
    key_id = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
    secret = os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    if not key_id or not secret:
        raise ConfigurationError(
            "no credentials: the context has none and ALIBABA_CLOUD_ACCESS_KEY_ID / "
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET are not set (give the service a RAM role)"
        )
    return Credentials(key_id, secret, os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN", ""))
