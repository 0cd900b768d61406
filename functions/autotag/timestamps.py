"""ISO-8601 timestamps as OSS and FC write them (`2026-11-21T09:10:30.000Z`), parsed without surprises."""

from __future__ import annotations

from datetime import datetime, timezone


def parse_timestamp(text: str) -> datetime | None:
    """An aware UTC datetime, or None for empty or unparseable text (Python 3.10 rejects a bare `Z`)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def format_timestamp(moment: datetime) -> str:
    """`2026-11-21T09:10:30.000Z`; years below 1000 keep four digits (`strftime("%Y")` would write `999`,
    which parse_timestamp, like every ISO-8601 reader, refuses)."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
