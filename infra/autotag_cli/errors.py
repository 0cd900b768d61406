"""The CLI's one error boundary: whatever a command raises becomes one line,
`Error: <what> (<code>, HTTP <status>, request id <id>)`, naming the endpoint, bucket, key or function,
with exit code 1 (usage errors: 2). A traceback only with `--debug`. SDK errors are described from their
status, code and request id only: their own text can hold a string-to-sign with a security token."""

from __future__ import annotations

import json
from typing import Any

import click

DOING = "autotag.doing"  # ctx.meta: what the command is doing, e.g. "listing oss://b/p at http://..."
TARGET = "autotag.target"  # ctx.meta: the command's Target
DEBUG = "autotag.debug"


def doing(what: str) -> None:
    """Say what the command is about to do, so an error can name it."""
    context = click.get_current_context(silent=True)
    if context is not None:
        context.meta[DOING] = what


class AutotagGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort, KeyboardInterrupt):
            raise
        except Exception as error:
            if ctx.meta.get(DEBUG):
                raise
            raise click.ClickException(describe(error, ctx.meta)) from None


def _with_details(what: str, code: str, status: int | str, request_id: str) -> str:
    details = [
        part for part in (code, f"HTTP {status}" if status else "", f"request id {request_id}") if part
    ]
    if not request_id:
        details = details[:-1]
    return f"{what} ({', '.join(details)})" if details else what


def describe(error: BaseException, meta: dict[str, Any]) -> str:
    """One line saying what went wrong, for a user."""
    target = meta.get(TARGET)
    what = meta.get(DOING) or "the command"
    oss_at = f" at {target.oss_endpoint}" if target is not None else ""
    fc_at = f" at {target.fc_endpoint}" if target is not None else ""
    import oss2
    import requests

    if isinstance(error, oss2.exceptions.RequestError):
        return f"{what}: cannot reach OSS{oss_at} ({_connection_reason(error)})"
    if isinstance(error, oss2.exceptions.OssError):
        status, code = getattr(error, "status", 0), getattr(error, "code", "") or ""
        request_id = getattr(error, "request_id", "") or ""
        return _with_details(f"{what}: {_oss_reason(code, status, meta)}{oss_at}", code, status, request_id)
    fc_error = _fc_error(error)
    if fc_error is not None:
        return _with_details(f"{what}: FC{fc_at} answered {fc_error[0]}", *fc_error[1:])
    if isinstance(error, requests.RequestException):
        url = getattr(error.request, "url", "") or "the endpoint"
        return f"{what}: cannot reach {url} ({type(error).__name__})"
    if isinstance(error, OSError) and error.filename:
        return f"{error.filename}: {error.strerror or error}"
    message = str(error)
    if _is_own(error):
        return f"{what}: {message}" if meta.get(DOING) else message
    return (
        f"{what} failed unexpectedly: {type(error).__name__}: {message[:500]} "
        "(rerun with --debug to see where)"
    )


def _oss_reason(code: str, status: int, meta: dict[str, Any]) -> str:
    target = meta.get(TARGET)
    key_id = target.credentials.access_key_id if target is not None else "?"
    reasons = {
        "NoSuchBucket": "the bucket does not exist",
        "NoSuchKey": "the object does not exist",
        "InvalidAccessKeyId": f"OSS does not know AccessKey ID {key_id}",
        "SignatureDoesNotMatch": f"the AccessKey secret does not belong to AccessKey ID {key_id}",
        "InvalidSecurityToken": f"the security token is missing, expired or not that of {key_id}",
        "AccessDenied": f"AccessKey ID {key_id} is not allowed to",
        "RequestTimeTooSkewed": "this machine's clock is more than 15 minutes off OSS's",
    }
    return reasons.get(code, f"OSS refused the request ({status})" if code else f"OSS answered {status}")


def _fc_error(error: BaseException) -> tuple[str, str, int, str] | None:
    try:
        import fc2
    except ImportError:
        return None
    if not isinstance(error, fc2.fc_exceptions.FcError):
        return None
    try:
        body = json.loads(error.message)
        message = str(body.get("ErrorMessage") or body.get("errorMessage") or "")
    except (TypeError, ValueError):
        message = ""
    return (message or "an error", str(error.err_code or ""), error.status_code, str(error.request_id or ""))


def _connection_reason(error: Any) -> str:
    text = str(getattr(error, "exception", "") or error)
    for known in ("Connection refused", "Name or service not known", "timed out", "Connection reset"):
        if known.lower() in text.lower():
            return known.lower()
    return "connection failed"


def _is_own(error: BaseException) -> bool:
    """Errors of the product and its tools, whose messages are written for users."""
    module = type(error).__module__
    return module.startswith(("autotag", "localcloud", "deployer", "backfill", "autotag_cli"))
