"""The console the commands print their tables on, and how what they show is made safe to show. What they
show comes from OSS and FC (object keys, tag values, error messages, role ARNs such as `acs:ram::…`), so it
is printed as it is: never read as rich markup (`[red]`) or emoji codes (`:ram:`), and never with a
control character raw. A key is anyone's: an ESC in it could clear the terminal or retitle it, a CR or LF
overwrite or forge a line, a bidi override reorder what is read. `shown` escapes each visibly (`\\x1b`,
`\\r`, `\\n`, `\\t`, `\\u202e`; a backslash doubled, so every escape is unambiguous), and `Table` applies
it to every cell and its title. JSON output (`--json`, `to_json`) is for programs and keeps every value
exact."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table as RichTable

# C0 and C1 controls, DEL, the backslash itself, line and paragraph separators, bidi embeddings, overrides
# and isolates, and lone surrogates (what a JSON `\ud800` decodes to; unprintable).
_UNSAFE = re.compile("[\\x00-\\x1f\\x7f-\\x9f\\\\\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


class Shown(str):
    """Text already made safe to show (`shown`): escaping it again would change it."""


def _escape(match: re.Match[str]) -> str:
    character = match.group()
    if character in _NAMED:
        return _NAMED[character]
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(text: object) -> Shown:
    """`text` (made a string) with every control character visibly escaped."""
    if isinstance(text, Shown):
        return text
    return Shown(_UNSAFE.sub(_escape, str(text)))


def shown_as_written(text: object) -> Shown:
    """`text` with its control characters visibly escaped but its backslashes as they are: a pattern or a
    value as the rules file writes it (`\\.txt$`), where doubling them would show another pattern."""
    return Shown(_UNSAFE.sub(lambda m: m.group() if m.group() == "\\" else _escape(m), str(text)))


def shown_lines(items: Iterable[object]) -> Shown:
    """A cell of several lines: each item escaped (its own newlines included), one per line."""
    return Shown("\n".join(shown(item) for item in items))


class Table(RichTable):
    """A rich table whose title, caption and text cells are `shown`: what comes from OSS never reaches the
    terminal raw. A cell of several lines is made with `shown_lines`."""

    def __init__(self, *headers: Any, title: object = None, caption: object = None, **options: Any) -> None:
        super().__init__(
            *headers,
            title=None if title is None else shown(title),
            caption=None if caption is None else shown(caption),
            **options,
        )

    def add_row(self, *renderables: Any, **options: Any) -> None:
        super().add_row(*(shown(r) if isinstance(r, str) else r for r in renderables), **options)


def plain_console(*, stderr: bool = False) -> Console:
    return Console(stderr=stderr, markup=False, emoji=False, highlight=False)


def counted(amount: int, one: str, many: str = "") -> str:
    """`1 object`, `2 objects`: the amount, with the word in the number it takes."""
    return f"{amount:,} {one if amount == 1 else many or one + 's'}"
