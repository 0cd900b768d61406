"""Whether the rules a sweep judges by are still the rules in force, asked before each write (pure apart
from the `confirm` it is handed: RulesCache.confirm, one conditional GET of the rules object).

A sweep runs for up to the function's timeout with the rules it read when it began. Meanwhile the upload
function, which revalidates rules kept in OSS on its own schedule, may tag objects under a newer version.
Judged by the older rules, such an object's newer tags look stale, and removing them loses them for good:
nothing derives them again. So before it removes anything, the sweep asks which rules are in force, with a
check *sent after it read the object's tags*: the upload function read the rules it tagged with before it
wrote the tags, and OSS answers every read with what was written before it, so a tag written under newer
rules always shows up as a change of rules. The sweep then writes nothing by the old rules and starts a full
pass with the new ones.

One check answers every worker whose tags were read before the check was sent: a worker takes a ticket after
its read and waits for a check numbered above it — the one in flight when that was sent later, else a new
one. A pass with many writes asks about once per round of its workers; a sparse incremental pass about once
per object it writes to."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..gateway import TransientOssError
from ..rules import RuleSet
from ..rules.loader import RulesError


class RulesUnconfirmed(TransientOssError):
    """The rules in force could not be read: nothing is written, and the window is done again later."""

    def why(self) -> str:
        return "the rules in force could not be read"


class RulesWatch:
    def __init__(self, confirm: Callable[[], RuleSet]) -> None:
        self._confirm = confirm
        self._changed = threading.Condition()
        self._sent = 0  # checks sent so far; each is numbered by the count when it was sent
        self._in_flight = 0  # the number of the check being made (0: none)
        self._answered = 0  # the number of the newest check answered
        self._answer: RuleSet | None = None
        self._failed: tuple[int, RulesUnconfirmed] | None = None  # the newest check that failed
        self.checks = 0  # requests made (each check is one conditional GET)

    @property
    def latest(self) -> RuleSet | None:
        """The rules in force at the newest check answered."""
        with self._changed:
            return self._answer

    def ticket(self) -> int:
        """Taken after a read: only a check numbered above it was sent after the read."""
        with self._changed:
            return self._sent

    def in_force(self, ticket: int) -> RuleSet:
        """The rules in force by a check sent after `ticket` was taken; RulesUnconfirmed when that check
        failed."""
        with self._changed:
            while True:
                failed = self._failed[0] if self._failed is not None else 0
                if self._answered > max(ticket, failed) and self._answer is not None:
                    return self._answer
                if self._failed is not None and failed > ticket:
                    raise self._failed[1]
                if not self._in_flight:
                    break
                self._changed.wait()
            self._sent += 1
            number = self._in_flight = self._sent
        try:
            self.checks += 1
            answer = self._confirm()
        except RulesError as error:
            failure = RulesUnconfirmed("reading the rules in force", message=str(error)[:300])
            with self._changed:
                self._failed, self._in_flight = (number, failure), 0
                self._changed.notify_all()
            raise failure from None
        except BaseException:
            with self._changed:
                self._in_flight = 0
                self._changed.notify_all()
            raise
        with self._changed:
            self._answer, self._answered, self._in_flight = answer, number, 0
            self._changed.notify_all()
        return answer
