"""Making hostile text showable in a page (pure). Keys, metadata and event contents are anyone's: HTML
escaping (the templates' autoescape) keeps markup inert, and `shown` makes control characters, bidi
overrides and line breaks visible as escapes (`\\x1b`, `\\n`, `\\u202e`; a backslash doubled), so what a
page shows is what the text holds, in one line."""

from __future__ import annotations

import re

_UNSAFE = re.compile("[\\x00-\\x1f\\x7f-\\x9f\\\\\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _escape(match: re.Match[str]) -> str:
    character = match.group()
    if character in _NAMED:
        return _NAMED[character]
    code = ord(character)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def shown(text: object) -> str:
    """`text` with every control character and bidi control escaped visibly."""
    return _UNSAFE.sub(_escape, str(text))
