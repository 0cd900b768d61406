"""OSS object tags as plain data: the service's limits and the `x-oss-tagging` header codec.

OSS accepts at most 10 tags per object, keys of 1-128 characters, values of 0-256 characters, made of
letters (any script), digits, space and `+ - = . _ : /`. The header form is `k1=v1&k2=v2` with keys and
values percent-encoded, which is how uploaders attach tags on PutObject, CopyObject (REPLACE),
AppendObject (first append), InitiateMultipartUpload and PutSymlink."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

MAX_TAGS = 10
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256
_ALLOWED_TEXT = re.compile(r"[\w +\-=.:/]*")

TagSet = dict[str, str]


class TaggingHeaderError(ValueError):
    """An `x-oss-tagging` value that is not `k=v&k=v`; the message names the offending item."""


def decode_tagging_header(header: str) -> TagSet:
    """The tags of an `x-oss-tagging` header value, in header order."""
    tags: TagSet = {}
    if not header:
        return tags
    for item in header.split("&"):
        key, sep, value = item.partition("=")
        if not sep or "=" in value:
            raise TaggingHeaderError(f"x-oss-tagging item {item!r} is not key=value")
        key, value = unquote(key), unquote(value)
        if key in tags:
            raise TaggingHeaderError(f"x-oss-tagging names key {key!r} twice")
        tags[key] = value
    return tags


def encode_tagging_header(tags: TagSet) -> str:
    """The `x-oss-tagging` value for `tags` (the inverse of decode_tagging_header)."""
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in tags.items())


def tag_violations(tags: TagSet) -> list[str]:
    """Why OSS would refuse this tag set, one sentence per problem naming the tag and the limit."""
    problems = []
    if len(tags) > MAX_TAGS:
        problems.append(f"{len(tags)} tags exceed the OSS limit of {MAX_TAGS} per object")
    for key, value in tags.items():
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            problems.append(
                f"tag key {key[:40]!r} is {len(key)} characters; OSS allows 1 to {MAX_KEY_LENGTH}"
            )
        if len(value) > MAX_VALUE_LENGTH:
            problems.append(
                f"value of tag {key[:40]!r} is {len(value)} characters; OSS allows at most {MAX_VALUE_LENGTH}"
            )
        for what, text in (("key", key), ("value", value)):
            if not _ALLOWED_TEXT.fullmatch(text):
                problems.append(
                    f"tag {what} {text[:40]!r} has characters outside letters, digits, space "
                    "and + - = . _ : /"
                )
    return problems
