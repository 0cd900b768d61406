"""The CLI's one error boundary: whatever a command raises becomes one line,
`Error: <what> (<code>, HTTP <status>, request id <id>)`, naming the endpoint, bucket, key or function,
with an exit code saying what kind of failure it was, the same for every command (docs/cli.md's table):
1 the work failed, 2 bad input, 3 cannot reach or not allowed, 4 not found, 130 interrupted (a long
command says then how to resume it), 141 the output's reader went away (quietly). `--debug` prints the
traceback first, then the same line. SDK errors
are described from their status, code and request id only: their own text can hold a string-to-sign with a
security token (OSS sends it back in SignatureDoesNotMatch, and oss2 puts it in the exception's text), so
the traceback is rendered from the frames and from that safe description, never from the exception's
text, and whatever else it prints is scrubbed of credentials."""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
from typing import Any, NoReturn

import click

from .console import shown

DOING = "autotag.doing"  # ctx.meta: what the command is doing, e.g. "listing oss://b/p at http://..."
TARGET = "autotag.target"  # ctx.meta: the command's Target
DEBUG = "autotag.debug"
VERBOSE = "autotag.verbose"  # ctx.meta: -v or --debug: show what is otherwise left out
RESUME = "autotag.resume"  # ctx.meta: how to resume the command when it is interrupted
ARGUMENTS = "autotag.arguments"  # ctx.meta: the command line's arguments, as given

# Exit codes, by kind of failure, whatever the command (docs/cli.md has the table).
OK = 0
FAILED = 1  # the work failed: the function raised, objects failed, a run stopped before its end
BAD_INPUT = 2  # the command, an option or a file it names is wrong (click's usage errors exit 2 too)
UNREACHABLE = 3  # an endpoint does not answer as its API does, or it refuses the credentials or the call
NOT_FOUND = 4  # what the command names does not exist: a bucket, an object, a function, a job
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)
CLOSED_PIPE = 141  # the output's reader went away (128 + SIGPIPE, as a filter killed by it reports)

# Options whose values are never printed back, not even in a command to run again.
_SECRET_OPTIONS = ("--access-key-secret", "--security-token")


class CliError(click.ClickException):
    """One line for the user, and the exit code of its kind of failure."""

    def __init__(self, message: str, exit_code: int = FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class; each error has its own


class BadInput(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, BAD_INPUT)


class Unreachable(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, UNREACHABLE)


class NotFound(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, NOT_FOUND)


def doing(what: str) -> None:
    """Say what the command is about to do, so an error can name it."""
    context = click.get_current_context(silent=True)
    if context is not None:
        context.meta[DOING] = what


def resumable(how: str) -> None:
    """Say how the command resumes if it is interrupted (the boundary prints it on Ctrl-C)."""
    context = click.get_current_context(silent=True)
    if context is not None:
        context.meta[RESUME] = how


def command_line(drop: tuple[str, ...] = ()) -> str:
    """The command as it was run (`autotag ...`), without the flags in `drop` and with no secret shown:
    what to run again to resume it."""
    import shlex

    context = click.get_current_context(silent=True)
    given: list[str] = list(context.meta.get(ARGUMENTS, [])) if context is not None else []
    words: list[str] = []
    hide_next = False
    for word in given:
        name = word.split("=", 1)[0]
        if hide_next:
            words.append("<secret>")
            hide_next = False
        elif name in _SECRET_OPTIONS:
            words.append(f"{name}=<secret>" if "=" in word else word)
            hide_next = "=" not in word
        elif name not in drop:
            words.append(word)
    return shlex.join(["autotag", *words])


class AutotagGroup(click.Group):
    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        arguments = list(args)
        context = super().make_context(info_name, args, parent, **extra)
        context.meta.setdefault(ARGUMENTS, arguments)  # the outermost group's: the whole command line
        return context

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.ClickException as error:  # its one line may quote a key: never a control raw
            error.message = shown(error.message)
            raise
        except (click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            _reader_gone()
        except KeyboardInterrupt:
            how = ctx.meta.get(RESUME)
            click.echo(f"\nInterrupted. {how}" if how else "\nInterrupted.", err=True)
            raise click.exceptions.Exit(INTERRUPTED) from None
        except Exception as error:
            if ctx.meta.get(DEBUG):
                click.echo(safe_traceback(error, ctx.meta), err=True, nl=False)
            raise CliError(shown(describe(error, ctx.meta)), exit_code(error)) from None


def _reader_gone() -> NoReturn:
    """What reads the output went away (`| head -1`, `| grep -q`): nothing failed that the user would want
    to hear of. End as a Unix filter killed by SIGPIPE does, quietly and with 128 + SIGPIPE, with standard
    output pointed at /dev/null so that the interpreter's last flush into the closed pipe says nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise click.exceptions.Exit(CLOSED_PIPE)


def exit_code(error: BaseException) -> int:
    """The exit code of an error the commands did not describe themselves, by its kind."""
    import oss2
    import requests

    if isinstance(error, click.ClickException):
        return error.exit_code
    if isinstance(error, oss2.exceptions.RequestError):
        return UNREACHABLE
    if isinstance(error, oss2.exceptions.OssError):
        return _status_kind(int(getattr(error, "status", 0) or 0), getattr(error, "code", "") or "")
    fc_error = _fc_error(error)
    if fc_error is not None:
        return FAILED if fc_error[2] == 200 else _status_kind(fc_error[2], fc_error[1])
    tea = _tea_error(error)
    if tea is not None:
        return _status_kind(tea[2], tea[0])
    if _not_the_apis_answer(error):
        return UNREACHABLE
    if isinstance(error, requests.RequestException):  # no answer, or one that is not the API's
        return UNREACHABLE
    if isinstance(error, OSError) and error.filename:
        return BAD_INPUT  # a file the command names
    return FAILED


def _tea_error(error: BaseException) -> tuple[str, str, int, str] | None:
    """(code, message, HTTP status, request id) of an error the Alibaba Cloud Tea SDKs raised."""
    try:
        from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
    except ImportError:
        return None
    if not isinstance(error, AlibabaCloudException):
        return None
    message = re.split(r"(?i)string ?to ?sign", str(error.message or ""), maxsplit=1)[0].rstrip(" :")
    code, request_id = (_given(value) for value in (error.code, error.request_id))
    return code, message, int(error.status_code or 0), request_id


def _given(value: object) -> str:
    """A field the Tea SDKs filled in, "" when they had none (they write None as the text "None")."""
    text = str(value or "")
    return "" if text == "None" else text


def _not_the_apis_answer(error: BaseException) -> bool:
    """Whether a Tea SDK got an answer that is not its API's: not JSON (another service at the endpoint)."""
    try:
        from Tea.exceptions import UnretryableException
    except ImportError:
        return False
    return isinstance(error, UnretryableException) and "parse the value as json" in str(error)


def _status_kind(status: int, code: str) -> int:
    if status == 404 or code.startswith("NoSuch") or code.endswith("NotFound"):
        return NOT_FOUND
    if status in (401, 403) or status >= 500:
        return UNREACHABLE
    if status in (400, 409, 411, 413) or code.startswith("Invalid"):
        return BAD_INPUT
    return FAILED


def failure(error: BaseException, meta: dict[str, Any]) -> tuple[str, int]:
    """(one line, exit code) for an error, as the boundary shows it: for commands that go on past one."""
    if isinstance(error, click.ClickException):
        return shown(error.format_message()), error.exit_code
    return shown(describe(error, meta)), exit_code(error)


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
    if fc_error is not None and fc_error[2] == 200:  # FC ran the function, which raised
        return _with_details(f"{what}: the function failed: {fc_error[0]}", "", 0, fc_error[3])
    if fc_error is not None:
        return _with_details(f"{what}: FC{fc_at} answered {fc_error[0]}", *fc_error[1:])
    tea = _tea_error(error)
    if tea is not None and not tea[0] and not tea[3]:  # an HTTP error without the API's code or request id
        return (
            f"{what}: the answer is not CloudFlow's (HTTP {tea[2]}, no error code, no request id): is the "
            "CloudFlow endpoint right?"
        )
    if tea is not None:  # CloudFlow's SDK: the API's code and message, never the string it signed
        code, message, status, request_id = tea
        return _with_details(
            f"{what}: CloudFlow answered {scrub(message, _secrets(meta))[:300]}", code, status, request_id
        )
    if _not_the_apis_answer(error):
        return f"{what}: the answer is not CloudFlow's (not JSON): is the CloudFlow endpoint right?"
    if isinstance(error, requests.exceptions.JSONDecodeError):  # an SDK read an answer that is not its API's
        where = f"FC{fc_at}" if "FC" in what or fc_error is not None else "the endpoint"
        return f"{what}: {where} answered, but not as the API does (not JSON): is the endpoint right?"
    if isinstance(error, requests.RequestException):
        url = getattr(error.request, "url", "") or "the endpoint"
        return f"{what}: cannot reach {url} ({type(error).__name__})"
    if isinstance(error, OSError) and error.filename:
        return f"{error.filename}: {error.strerror or error}"
    message = scrub(str(error), _secrets(meta))
    if _is_own(error):
        return f"{what}: {message}" if meta.get(DOING) else message
    return (
        f"{what} failed unexpectedly: {type(error).__name__}: {message[:500]} "
        "(rerun with --debug to see where)"
    )


# ---- --debug: the traceback, without credentials -------------------------------------------------------

# Credentials however an SDK, a URL or a header dump spells them: the name stays, the value goes.
_CREDENTIAL_TEXT = [
    # a string-to-sign (OSS's SignatureDoesNotMatch details) holds the security token: all of it goes
    re.compile(
        r"""(?is)['"]?string\s*-?to\s*-?sign['"]?\s*[:=]\s*(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S+)"""
    ),
    re.compile(r"""(?i)((?:x-(?:oss|fc|acs)-)?security-?token['"]?\s*[:=]\s*['"]?)[^\s'"&,;}\\]+"""),
    re.compile(
        r"""(?i)((?:authorization|signature|accesskeysecret|access_key_secret)['"]?\s*[:=]\s*['"]?)[^'"&\n]+"""
    ),
]


def scrub(text: str, secrets: list[str]) -> str:
    """`text` without the given secrets and without anything spelled like a credential."""
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
    for pattern in _CREDENTIAL_TEXT:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "<redacted>", text)
    return text


def _secrets(meta: dict[str, Any]) -> list[str]:
    target = meta.get(TARGET)
    found = [os.environ.get(f"ALIBABA_CLOUD_{name}", "") for name in ("ACCESS_KEY_SECRET", "SECURITY_TOKEN")]
    if target is not None:
        found += [target.credentials.access_key_secret, target.credentials.security_token]
    return [s for s in found if len(s) >= 4]


def _safe_text(error: BaseException, meta: dict[str, Any]) -> str:
    """What an exception says, from the fields that cannot carry credentials when an SDK raised it."""
    import oss2

    if isinstance(error, oss2.exceptions.OssError):
        code = getattr(error, "code", "") or ""
        request_id = getattr(error, "request_id", "") or ""
        message = " ".join(str(getattr(error, "message", "") or "").split())[:300]
        text = _with_details(f"HTTP {getattr(error, 'status', 0)}", code, "", request_id)
        if isinstance(error, oss2.exceptions.RequestError):
            text = f"cannot reach OSS ({_connection_reason(error)})"
        return scrub(f"{text}: {message}" if message else text, _secrets(meta))
    fc_error = _fc_error(error)
    if fc_error is not None:
        return scrub(_with_details(f"FC answered {fc_error[0]}", *fc_error[1:]), _secrets(meta))
    return scrub(str(error), _secrets(meta))


def safe_traceback(error: BaseException, meta: dict[str, Any]) -> str:
    """Python's traceback of `error` and of the errors it arose from, each exception's text replaced by
    _safe_text: the frames (file, line, code) say where, and no SDK's text says more than it may."""
    chain: list[tuple[BaseException, str]] = []
    current: BaseException | None = error
    link = ""
    while current is not None and all(current is not seen for seen, _ in chain):
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = (
                current.__cause__,
                "The above exception was the direct cause of the following exception:",
            )
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = (
                current.__context__,
                "During handling of the above exception, another exception occurred:",
            )
        else:
            current = None
    parts: list[str] = []
    for position, (exception, _) in enumerate(reversed(chain)):
        if position:
            parts.append(f"\n{chain[len(chain) - position][1]}\n\n")
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(exception.__traceback__))
        kind = type(exception)
        name = (
            kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
        )
        parts.append(f"{name}: {_safe_text(exception, meta)}\n")
    return scrub("".join(parts), _secrets(meta))


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
