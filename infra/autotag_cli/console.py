"""The console the commands print their tables on. What they show comes from OSS and FC (object keys, tag
values, error messages, role ARNs such as `acs:ram::…`), so it is printed as it is: never read as rich
markup (`[red]`) or emoji codes (`:ram:`)."""

from __future__ import annotations

from rich.console import Console


def plain_console(*, stderr: bool = False) -> Console:
    return Console(stderr=stderr, markup=False, emoji=False, highlight=False)


def counted(amount: int, one: str, many: str = "") -> str:
    """`1 object`, `2 objects`: the amount, with the word in the number it takes."""
    return f"{amount:,} {one if amount == 1 else many or one + 's'}"
