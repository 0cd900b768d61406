"""The console the commands print their tables on. What they show comes from OSS and FC (object keys, tag
values, error messages, role ARNs such as `acs:ram::…`), so it is printed as it is: never read as rich
markup (`[red]`) or emoji codes (`:ram:`)."""

from __future__ import annotations

from rich.console import Console


def plain_console(*, stderr: bool = False) -> Console:
    return Console(stderr=stderr, markup=False, emoji=False, highlight=False)
