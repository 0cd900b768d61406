"""Object tag sets as OSS validates them: ≤10 tags, unique keys of 1–128 characters, values of 0–256
characters, letters (any script), digits, space and `+ - = . _ : /` only."""

from __future__ import annotations

import re
from urllib.parse import unquote

from . import xmlin
from .errors import OssError, invalid_tag, malformed_xml

MAX_TAGS = 10
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256
_ALLOWED = re.compile(r"[\w +\-=.:/]*")  # \w: letters and digits of any script, and `_`


def validate(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The tag set for `pairs`, or the InvalidTag error OSS answers with (naming the offending tag)."""
    if len(pairs) > MAX_TAGS:
        raise invalid_tag(
            f"An object can have at most {MAX_TAGS} tags; {len(pairs)} were given.", "0010-00000217"
        )
    tags: dict[str, str] = {}
    for key, value in pairs:
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            raise invalid_tag(
                f"Tag key {key[:40]!r} is {len(key)} characters; keys are 1 to {MAX_KEY_LENGTH} characters.",
                "0010-00000209",
            )
        if len(value) > MAX_VALUE_LENGTH:
            raise invalid_tag(
                f"The value of tag {key!r} is {len(value)} characters; values are at most "
                f"{MAX_VALUE_LENGTH}.",
                "0010-00000209",
            )
        for what, text in (("key", key), ("value", value)):
            if not _ALLOWED.fullmatch(text):
                raise invalid_tag(
                    f"Tag {what} {text[:40]!r} has a character outside letters, digits, space "
                    "and + - = . _ : /.",
                    "0010-00000209",
                )
        if key in tags:
            raise invalid_tag(f"Tag key {key!r} appears more than once.", "0010-00000210")
        tags[key] = value
    return tags


def parse_header(header: str) -> dict[str, str]:
    """Parse `x-oss-tagging: k1=v1&k2=v2` (keys and values percent-encoded)."""
    if not header:
        return {}
    pairs = []
    for item in header.split("&"):
        key, sep, value = item.partition("=")
        if not sep or "=" in value:
            raise invalid_tag(f"x-oss-tagging item {item!r} is not key=value.", "0010-00000219")
        pairs.append((unquote(key), unquote(value)))
    return validate(pairs)


def parse_xml(body: bytes) -> dict[str, str]:
    """Parse a PutObjectTagging body `<Tagging><TagSet><Tag><Key/><Value/></Tag>...</TagSet></Tagging>`."""
    root, placeholders = xmlin.parse(body, "Tagging")
    if root.tag != "Tagging":
        raise malformed_xml(f"The root element is <{root.tag}>, not <Tagging>.")
    pairs = []
    for tag in root.iterfind("TagSet/Tag"):
        key, value = tag.find("Key"), tag.find("Value")
        if key is None or value is None:
            raise OssError(
                400, "MalformedXML", "Every <Tag> needs a <Key> and a <Value>.", ec="0010-00000107"
            )
        pairs.append((xmlin.text(key, placeholders), xmlin.text(value, placeholders)))
    return validate(pairs)
