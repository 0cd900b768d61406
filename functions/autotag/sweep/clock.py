"""The sweep's clock against OSS's own (pure).

A sweep judges expiry at its clock (the timer's triggerTime). A clock ahead of time would remove TTL tags
early, and a completed pass recorded in the future would make every later pass look done, so:

- a triggerTime outside 2000-01-01 .. 2999-12-31 is refused outright (no timer fires then);
- a run that writes (not a dry run) may be at most CLOCK_TOLERANCE ahead of OSS's clock, the `Date` of
  its responses: OSS itself refuses requests whose Date is 15 minutes off, so a clock further ahead is a
  typo or a forgery, not skew;
- state claiming a time beyond OSS's clock (a completed pass, an unfinished pass, a lease written "later")
  is implausible: it is ignored and reported, never obeyed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

CLOCK_TOLERANCE = timedelta(minutes=5)
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(3000, 1, 1, tzinfo=timezone.utc)


def absurd(moment: datetime) -> str:
    """Why no timer would ever fire at `moment` ("" when one could)."""
    if moment < EARLIEST:
        return "is before 2000-01-01"
    if moment >= LATEST:
        return "is after 2999-12-31"
    return ""


def ahead_of(moment: datetime, oss_now: datetime) -> bool:
    """Whether `moment` is further ahead of OSS's clock than the tolerance."""
    return moment > oss_now + CLOCK_TOLERANCE


def describe_ahead(what: str, moment: datetime, oss_now: datetime) -> str:
    minutes = CLOCK_TOLERANCE.total_seconds() / 60
    return (
        f"{what} {moment.isoformat()} is ahead of OSS's clock ({oss_now.isoformat(timespec='seconds')}) "
        f"by more than {minutes:g} minutes"
    )
