"""The functions' only conversation with OSS, through oss2: bounded, jittered retries of transient failures,
an optional cap on requests per second shared by every worker thread, and a count of the requests made
(the figure that matters on a bucket with millions of objects)."""

from __future__ import annotations

import base64
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from xml.etree import ElementTree

import oss2

from .facts import user_meta_from_headers

T = TypeVar("T")
# Seconds to connect to OSS, and to wait for each read of an answer. oss2's default is 60 s for both, the
# upload function's whole timeout: a hung endpoint would use it up, and the gateway's retries with it. With
# these, the attempts of one call (RetryPolicy) end well within it, and the error names OSS and the endpoint.
CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 10.0
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
GONE_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "SymlinkTargetNotExist"})
# Refusals that say nothing about the object itself: the credentials or the RAM policy are wrong (or an
# STS token ran out). Retrying the event later, after the operator fixes them, can succeed.
AUTHORIZATION_CODES = frozenset(
    {
        "AccessDenied",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "SecurityTokenExpired",
        "InvalidSecurityToken",
    }
)


class OssFailure(Exception):
    """An OSS call that did not succeed. Its text carries only what is safe to log: the operation (with
    the key), the HTTP status, OSS's error code, the request id and OSS's message. Never oss2's `details`
    (OSS returns the string to sign in SignatureDoesNotMatch, which with V1 STS signing holds the security
    token) and never headers."""

    def __init__(
        self,
        operation: str,
        *,
        status: int = 0,
        code: str = "",
        request_id: str = "",
        message: str = "",
        attempts: int = 1,
    ) -> None:
        self.operation, self.status, self.code = operation, status, code
        self.request_id, self.message, self.attempts = request_id, message, attempts
        super().__init__(self.describe())

    def headline(self) -> str:
        """The operation, its attempts, the status, OSS's code and the request id."""
        head = f"{self.operation} failed {self.attempts} times; last" if self.attempts > 1 else self.operation
        parts = [*([str(self.status)] if self.status > 0 else []), *([self.code] if self.code else [])]
        text = f"{head}: {' '.join(parts)}" if parts else head  # describe() adds ": <message>"
        return f"{text} (request id {self.request_id})" if self.request_id else text

    def describe(self) -> str:
        text = self.headline()
        return f"{text}: {self.message}" if self.message else text


class ObjectGone(OssFailure):
    """The object (or the version) no longer exists."""


class SymlinkTargetGone(ObjectGone):
    """The key is a symlink whose target does not exist: the link itself is there (HEAD follows links)."""


class TransientOssError(OssFailure):
    """OSS kept failing (throttling, 5xx, connection errors) after every retry, or refused the credentials
    or the RAM policy (AccessRefused): retrying the event later, or after the operator fixes the role, can
    succeed."""

    def why(self) -> str:
        """What went wrong, in a few words, for a summary line."""
        return "OSS kept failing"


class AccessRefused(TransientOssError):
    """OSS refused the caller: a permission its RAM policy lacks (naming the action when OSS does, in the
    error's AccessDeniedDetail), or credentials that are wrong or ran out. Not a passing fault: it lasts
    until someone changes the role or the credentials."""

    def __init__(self, operation: str, *, action: str = "", explicit: bool = False, **fields: Any) -> None:
        self.action, self.explicit = action, explicit
        super().__init__(operation, **fields)

    def why(self) -> str:
        return "a RAM permission is missing" if self.code == "AccessDenied" else "OSS refused the credentials"

    def describe(self) -> str:
        if self.code != "AccessDenied":
            explained = "the credentials were refused"
        elif not self.action:
            explained = "permission denied: the caller's RAM policy does not allow this request"
        elif self.explicit:
            explained = (
                f"permission denied: a Deny statement in the caller's RAM policy refuses {self.action}"
            )
        else:
            explained = f"permission denied: the caller's RAM policy does not allow {self.action}"
        text = f"{self.headline()}: {explained}"
        return f"{text} (OSS: {self.message})" if self.message else text


class PermanentOssError(OssFailure):
    """OSS refused the request for a reason retrying cannot change (a missing bucket, an invalid name)."""


class TagsRejected(PermanentOssError):
    """OSS refused the tag set (a 4xx other than not-found); retrying cannot help."""


def _timeout_text(timeouts: Any) -> str:
    if isinstance(timeouts, tuple) and len(timeouts) == 2:
        return f"{timeouts[0]:g} s to connect / {timeouts[1]:g} s to read"
    return f"{timeouts:g} s" if isinstance(timeouts, (int, float)) else "the timeout"


def _one_line(text: str, limit: int) -> str:
    return " ".join(str(text).split())[:limit]


def _error_document(error: oss2.exceptions.OssError) -> ElementTree.Element | None:
    """OSS's `<Error>` document: the body, or for a HEAD (no body) the base64 copy in `x-oss-err`, which
    oss2 2.16.0 (FC's python3.10 runtime) does not read. Callers take only named fields from it, never the
    rest (the string to sign of a SignatureDoesNotMatch, say)."""
    body = getattr(error, "body", b"")
    if not isinstance(body, bytes) or not body.strip():
        encoded = (getattr(error, "headers", None) or {}).get("x-oss-err", "")
        if not encoded or len(encoded) > 8192:
            return None
        try:
            body = base64.b64decode(encoded, validate=True)
        except ValueError:
            return None
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None
    return root if root.tag == "Error" else None


def oss_code(error: oss2.exceptions.OssError) -> tuple[str, str]:
    """OSS's error code and message."""
    if error.code:
        return error.code, error.message or ""
    root = _error_document(error)
    if root is None:
        return "", error.message or ""
    return root.findtext("Code") or "", root.findtext("Message") or ""


def denied_action(error: oss2.exceptions.OssError) -> tuple[str, bool]:
    """The RAM action an AccessDenied names (its AccessDeniedDetail's AuthAction, "" when it names none),
    and whether a Deny statement refused it (else no statement allowed it)."""
    root = _error_document(error)
    detail = root.find("AccessDeniedDetail") if root is not None else None
    if detail is None:
        return "", False
    action = _one_line(detail.findtext("AuthAction") or "", 128)
    return action, (detail.findtext("NoPermissionType") or "") == "ExplicitDeny"


def failure(
    operation: str,
    error: BaseException,
    kind: type[OssFailure],
    attempts: int = 1,
    endpoint: str = "",
    timeouts: Any = None,
) -> OssFailure:
    """`kind` describing `error` (an oss2 error, or whatever else a call raised) with safe text only;
    `endpoint` names where OSS was asked, and `timeouts` (the client's: seconds, or (connect, read)) how
    long it waited, for a request that got no answer."""
    if isinstance(error, oss2.exceptions.RequestError):
        inner = getattr(error, "exception", None)
        reason = type(inner).__name__ if inner is not None else "connection error"
        if "timeout" in reason.lower() or "timed out" in str(inner).lower():
            reason = f"{reason}: no answer within {_timeout_text(timeouts)}"
        where = f" at {endpoint}" if endpoint else ""
        return kind(operation, message=f"could not reach OSS{where} ({reason})", attempts=attempts)
    if isinstance(error, oss2.exceptions.OssError):
        status = error.status if isinstance(error.status, int) and error.status > 0 else 0
        code, message = oss_code(error) if status else ("", "")
        if status and code in AUTHORIZATION_CODES:
            action, explicit = denied_action(error) if code == "AccessDenied" else ("", False)
            return AccessRefused(
                operation,
                action=action,
                explicit=explicit,
                status=status,
                code=_one_line(code, 64),
                request_id=_one_line(error.request_id or "", 64),
                message=_one_line(message, 300),
                attempts=attempts,
            )
        return kind(
            operation,
            status=status,
            code=_one_line(code, 64),
            request_id=_one_line(error.request_id or "", 64),
            message=_one_line(message, 300) if status else "the request could not be made",
            attempts=attempts,
        )
    return kind(
        operation, message=f"the request could not be made ({type(error).__name__})", attempts=attempts
    )


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 2.0
    sleep: Callable[[float], None] = time.sleep

    def delay(self, attempt: int) -> float:
        """Full jitter over an exponential ceiling: spreads retries from many instances apart."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


class OutOfTime(Exception):
    """Waiting for the rate limit would run past the run's deadline: the run must stop and checkpoint."""


class RateLimiter:
    """A token bucket: at most `per_second` requests on average, bursts up to one second's worth (at least
    one request). Shared by the worker threads of a sweep so the whole run stays under the QPS the bucket's
    owner allows. With a `deadline` (a `clock` time), a wait that would end after it raises OutOfTime
    instead of sleeping past the function's timeout."""

    def __init__(
        self,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        deadline: float | None = None,
    ) -> None:
        self.per_second = per_second
        self.deadline = deadline
        self._capacity = max(1.0, per_second)
        self._clock = clock
        self._tokens = self._capacity
        self._updated = clock()
        self._lock = threading.Lock()

    def take_now(self) -> None:
        """Count a request sent at once, into debt if need be: the next `acquire`s wait it off. For a tag
        write, which must follow the read it was planned from without a pause (OSS has no conditional
        PutObjectTagging, so a wait there would widen the window in which an uploader's change is lost);
        the average stays at `per_second`."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self.per_second)
            self._updated = now
            self._tokens -= 1

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self.per_second)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.per_second
                if self.deadline is not None and now + wait > self.deadline:
                    raise OutOfTime(
                        f"at {self.per_second:g} requests per second the next one waits {wait:.3g} s, "
                        "past the run's deadline"
                    )
            time.sleep(wait)


@dataclass(frozen=True)
class ObjectRead:
    """A version of an object as GetObject found it: its ETag, its bytes (None when they were not read),
    and the size its headers announced."""

    etag: str
    data: bytes | None
    size: int | None


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


def _classify(error: oss2.exceptions.OssError) -> type[OssFailure]:
    code = oss_code(error)[0] if isinstance(error, oss2.exceptions.ServerError) else ""
    if isinstance(error, oss2.exceptions.ServerError) and error.status == 404 and code in GONE_CODES | {""}:
        return SymlinkTargetGone if code == "SymlinkTargetNotExist" else ObjectGone
    if isinstance(error, oss2.exceptions.ServerError) and code in AUTHORIZATION_CODES:
        return AccessRefused
    if _is_transient(error):
        return TransientOssError
    return PermanentOssError


@dataclass
class OssGateway:
    bucket: Any  # oss2.Bucket
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    limiter: RateLimiter | None = None
    requests: int = 0  # requests sent, retries included

    def __post_init__(self) -> None:
        self._count_lock = threading.Lock()
        self._oss_date: tuple[datetime, float] | None = None  # the last response's Date, and when

    def oss_now(self) -> datetime | None:
        """OSS's clock: the `Date` of the latest response (whole seconds) plus the time since it came."""
        with self._count_lock:
            seen = self._oss_date
        if seen is None:
            return None
        date, received = seen
        return date + timedelta(seconds=time.monotonic() - received)

    def _note_date(self, result: Any) -> None:
        headers = getattr(result, "headers", None)
        text = headers.get("Date") if headers is not None else None
        if not text:
            return
        try:
            date = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return
        if date.tzinfo is None:
            date = date.replace(tzinfo=timezone.utc)
        with self._count_lock:
            self._oss_date = (date, time.monotonic())

    def _call(self, what: str, call: Callable[[], T], *, tag_write: bool = False) -> T:
        """`call`, retried on transient failures. Raises only OssFailure kinds, never an oss2 exception
        (whose text carries the error's details), and chains none (a traceback would print it). A
        `tag_write` is never held back by the rate limiter (see RateLimiter.take_now)."""
        attempts = self.retry.attempts
        for attempt in range(attempts):
            if self.limiter is not None:
                if tag_write:
                    self.limiter.take_now()
                else:
                    self.limiter.acquire()
            with self._count_lock:
                self.requests += 1
            try:
                result = call()
                self._note_date(result)
                return result
            except oss2.exceptions.OssError as error:
                if _is_transient(error) and attempt + 1 < attempts:
                    problem = None
                else:
                    tries = attempt + 1 if _is_transient(error) else 1
                    endpoint = str(getattr(self.bucket, "endpoint", "") or "")
                    timeouts = getattr(self.bucket, "timeout", None)
                    problem = failure(what, error, _classify(error), tries, endpoint, timeouts)
            except (UnicodeError, ValueError) as error:  # oss2 could not build the request
                problem = failure(what, error, PermanentOssError)
            if problem is not None:
                raise problem from None
            self.retry.sleep(self.retry.delay(attempt))
        raise AssertionError("unreachable")

    @staticmethod
    def _params(version_id: str | None) -> dict[str, str] | None:
        return {"versionId": version_id} if version_id else None

    def exists(self, key: str) -> bool:
        """Whether an object has `key` (a bare HEAD: a 404 of any kind means no)."""
        try:
            self._call(f"HeadObject {key!r}", lambda: self.bucket.head_object(key))
        except ObjectGone:
            return False
        return True

    def head(self, key: str, version_id: str | None = None) -> ObjectHead:
        try:
            result = self._call(
                f"HeadObject {key!r}", lambda: self.bucket.head_object(key, params=self._params(version_id))
            )
        except OssFailure as failed:
            if failed.code or failed.status not in (403, 404):
                raise
            raise self._explained(failed, key, version_id) from None
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

    def _explained(self, failed: OssFailure, key: str, version_id: str | None) -> OssFailure:
        """A HEAD refusal with its code. A HEAD answer has no body, and oss2 2.16.0 (FC's python3.10 runtime)
        does not read the `x-oss-err` header that carries the error document, so a 403 or 404 comes without
        a code: is the object gone, the bucket missing, or the signature refused? One GetObjectTagging,
        only on this path, answers with a body that says."""
        try:
            self.get_tags(key, version_id)
        except OssFailure as probe:
            return type(probe)(
                failed.operation,
                status=failed.status,
                code=probe.code,
                request_id=failed.request_id,
                message=probe.message,
            )
        if failed.status == 404:  # the key is there, what it points to is not: a dangling symlink
            return SymlinkTargetGone(
                failed.operation, status=404, code="SymlinkTargetNotExist", request_id=failed.request_id
            )
        return AccessRefused(failed.operation, status=403, code="AccessDenied", request_id=failed.request_id)

    def read_if_changed(
        self, key: str, etag: str | None, *, limit: int, skip: frozenset[str] = frozenset()
    ) -> ObjectRead | None:
        """GetObject, conditional on `etag` (If-None-Match): the version OSS holds when it is not `etag`,
        or None when it still is (OSS answers 304 and sends nothing). The body is read only when the
        response's headers allow it: not for an ETag in `skip` (a version already looked at) nor for a
        Content-Length over `limit`; and never more than `limit` + 1 bytes, whatever the headers said."""
        headers = {"If-None-Match": f'"{etag}"'} if etag else None

        def read() -> ObjectRead | None:
            try:
                answer = self.bucket.get_object(key, headers=headers)
            except oss2.exceptions.NotModified:
                return None
            found, size = answer.etag or "", answer.content_length
            try:
                if found in skip or (size is not None and size > limit):
                    return ObjectRead(found, None, size)
                chunks: list[bytes] = []
                received = 0
                while received <= limit:
                    chunk = answer.read(min(64 * 1024, limit + 1 - received))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    received += len(chunk)
                return ObjectRead(found, b"".join(chunks), size)
            finally:  # what is left unread is not downloaded: the connection is dropped instead
                answer.resp.response.close()

        return self._call(f"GetObject {key!r}", read)

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
                tag_write=True,
            )
        except PermanentOssError as refused:
            if 400 <= refused.status < 500:
                raise TagsRejected(
                    refused.operation,
                    status=refused.status,
                    code=refused.code,
                    request_id=refused.request_id,
                    message=f"OSS refused the tags: {refused.message}",
                ) from None
            raise
