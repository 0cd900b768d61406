"""The functions' only conversation with OSS, through oss2: bounded, jittered retries of transient failures,
an optional cap on requests per second shared by every worker thread, and a count of the requests made
(the figure that matters on a bucket with millions of objects)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

import oss2

from .facts import user_meta_from_headers

T = TypeVar("T")
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "SymlinkTargetNotExist"})


class ObjectGone(Exception):
    """The object (or the version) no longer exists."""


class SymlinkTargetGone(ObjectGone):
    """The key is a symlink whose target does not exist: the link itself is there (HEAD follows links)."""


class TransientOssError(RuntimeError):
    """OSS kept failing with throttling, 5xx or connection errors after every retry."""


class TagsRejected(ValueError):
    """OSS refused the tag set (a 4xx other than not-found); retrying cannot help."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 2.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int) -> float:
        """Full jitter over an exponential ceiling: spreads retries from many instances apart."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


class RateLimiter:
    """A token bucket: at most `per_second` requests on average, bursts up to one second's worth. Shared
    by the worker threads of a sweep so the whole run stays under the QPS the bucket's owner allows."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self._clock = clock
        self._tokens = per_second
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.per_second, self._tokens + (now - self._updated) * self.per_second)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.per_second
            time.sleep(wait)


@dataclass(frozen=True)
class ObjectHead:
    size: int
    content_type: str | None
    user_meta: dict[str, str]
    last_modified: datetime
    tag_count: int
    etag: str
    object_type: str
    version_id: str | None


def _is_transient(error: Exception) -> bool:
    if isinstance(error, oss2.exceptions.RequestError):  # connection reset, timeout, refused
        return True
    return isinstance(error, oss2.exceptions.ServerError) and error.status in TRANSIENT_STATUSES


def _is_gone(error: Exception) -> bool:
    return (
        isinstance(error, oss2.exceptions.ServerError)
        and error.status == 404
        and (error.code in GONE_CODES or not error.code)
    )


@dataclass
class OssGateway:
    bucket: Any  # oss2.Bucket
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    limiter: RateLimiter | None = None
    requests: int = 0  # requests sent, retries included

    def __post_init__(self) -> None:
        self._count_lock = threading.Lock()

    def _call(self, what: str, call: Callable[[], T]) -> T:
        for attempt in range(self.retry.attempts):
            if self.limiter is not None:
                self.limiter.acquire()
            with self._count_lock:
                self.requests += 1
            try:
                return call()
            except oss2.exceptions.OssError as error:
                if _is_gone(error):
                    gone = SymlinkTargetGone if error.code == "SymlinkTargetNotExist" else ObjectGone
                    raise gone(f"{what}: {error.code or 'not found'}") from error
                if not _is_transient(error):
                    raise
                if attempt + 1 == self.retry.attempts:
                    raise TransientOssError(
                        f"{what} failed {self.retry.attempts} times; last: {error.status} "
                        f"{getattr(error, 'code', '') or type(error).__name__}"
                    ) from error
                self.retry.sleep(self.retry.delay(attempt))
        raise AssertionError("unreachable")

    @staticmethod
    def _params(version_id: str | None) -> dict[str, str] | None:
        return {"versionId": version_id} if version_id else None

    def head(self, key: str, version_id: str | None = None) -> ObjectHead:
        result = self._call(
            f"HeadObject {key!r}", lambda: self.bucket.head_object(key, params=self._params(version_id))
        )
        headers = result.headers
        return ObjectHead(
            size=result.content_length or 0,
            content_type=headers.get("Content-Type"),
            user_meta=user_meta_from_headers(headers),
            last_modified=datetime.fromtimestamp(result.last_modified, timezone.utc),
            tag_count=int(headers.get("x-oss-tagging-count") or 0),
            etag=result.etag or "",
            object_type=result.object_type or "Normal",
            version_id=result.versionid,
        )

    def get_tags(self, key: str, version_id: str | None = None) -> dict[str, str]:
        result = self._call(
            f"GetObjectTagging {key!r}",
            lambda: self.bucket.get_object_tagging(key, params=self._params(version_id)),
        )
        return dict(result.tag_set.tagging_rule)

    def put_tags(self, key: str, tags: dict[str, str], version_id: str | None = None) -> None:
        rule = oss2.models.TaggingRule()
        rule.tagging_rule.update(tags)  # already valid: planning sanitised what it added
        try:
            self._call(
                f"PutObjectTagging {key!r}",
                lambda: self.bucket.put_object_tagging(
                    key, oss2.models.Tagging(rule), params=self._params(version_id)
                ),
            )
        except oss2.exceptions.ServerError as error:
            if 400 <= error.status < 500:
                raise TagsRejected(
                    f"OSS refused the tags of {key!r}: {error.code}: {error.message}"
                ) from error
            raise
