"""When timer triggers fire: FC's 6-field cron (second minute hour day month weekday), optionally with a
`CRON_TZ=<zone>` prefix, or `@every <duration>` (e.g. `@every 90s`, `@every 1h30m`). Cron matching is
croniter's; this module only maps FC's forms onto it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

_EVERY = re.compile(r"@every\s+(?=\d)(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


class ScheduleError(ValueError):
    """A CronExpression FC would not accept; the message says why."""


@dataclass(frozen=True)
class Schedule:
    expression: str
    cron: str = ""
    zone: ZoneInfo | timezone = timezone.utc
    every: timedelta | None = None

    def next_after(self, moment: datetime) -> datetime:
        """The first firing strictly after `moment` (aware), in UTC."""
        if self.every is not None:
            return moment + self.every
        local = moment.astimezone(self.zone)
        following = croniter(self.cron, local, second_at_beginning=True).get_next(datetime)
        return following.astimezone(timezone.utc)  # type: ignore[no-any-return]


def parse_schedule(expression: str) -> Schedule:
    text = expression.strip()
    zone: ZoneInfo | timezone = timezone.utc
    if text.startswith("CRON_TZ="):
        name, _, text = text[len("CRON_TZ=") :].partition(" ")
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ScheduleError(f"{expression!r}: unknown time zone {name!r}") from exc
        text = text.strip()
    if text.startswith("@every"):
        match = _EVERY.match(text)
        if not match or not any(match.groups()):
            raise ScheduleError(f"{expression!r}: `@every` takes a duration such as 90s, 5m or 1h30m")
        hours, minutes, seconds = (int(g or 0) for g in match.groups())
        every = timedelta(hours=hours, minutes=minutes, seconds=seconds)
        if every < timedelta(minutes=1):
            raise ScheduleError(f"{expression!r}: FC timers fire at most once a minute")
        return Schedule(expression, every=every)
    fields = len(text.split())
    if fields != 6:
        raise ScheduleError(
            f"{expression!r}: FC cron has 6 fields (second minute hour day month weekday), not {fields}"
        )
    if not croniter.is_valid(text, second_at_beginning=True):
        raise ScheduleError(f"{expression!r}: not a valid cron expression")
    return Schedule(expression, cron=text, zone=zone)
