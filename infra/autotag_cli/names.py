"""OSS's bucket naming rules, checked before any request: 3 to 63 characters, only lowercase letters,
digits and hyphens, starting and ending with a letter or a digit
(https://www.alibabacloud.com/help/en/oss/user-guide/bucket-naming-conventions). A name OSS would refuse
is named with the rule it breaks, in one line (oss2 otherwise raises a client error that reads as
"OSS answered -1")."""

from __future__ import annotations

import re
import string
from typing import Any

import click

_ALLOWED = frozenset(string.ascii_lowercase + string.digits + "-")
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


def bucket_name_problem(name: str) -> str:
    """Which of OSS's bucket naming rules `name` breaks ("" when it breaks none)."""
    if _NAME.fullmatch(name):
        return ""
    shown = f"bucket name {name[:80]!r}"
    if not 3 <= len(name) <= 63:
        return f"{shown} is {len(name)} characters long; OSS's bucket names have 3 to 63 characters"
    wrong = sorted(set(name) - _ALLOWED)
    if wrong:
        held = ", ".join(repr(c) for c in wrong[:5])
        return f"{shown} holds {held}; a bucket name has only lowercase letters, digits and hyphens"
    return f"{shown}: a bucket name starts and ends with a lowercase letter or a digit"


class BucketName(click.ParamType):  # type: ignore[type-arg]  # generic in click 8.2+ stubs
    """A --bucket option's value, refused (exit code 2) when OSS would refuse the name."""

    name = "bucket"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value:  # "" is an option's "not given"
            problem = bucket_name_problem(value)
            if problem:
                self.fail(problem, param, ctx)
        return value


BUCKET = BucketName()
