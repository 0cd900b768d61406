"""The Dead letters page's work: the local FC's dead-letter store read, each letter judged replayable or
not by the same rules as `autotag replay` (cloudformats/letter_replay.py), and the store rewritten after a
replay: a letter leaves only when its replay succeeded; otherwise it stays with why its replay failed.

The store is the JSON-lines file `autotag local up` names on its ready line (and `autotag replay` reads);
the rewrite re-reads it just before writing, so letters that arrived during a replay are kept."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from cloudformats.dead_letters import DeadLetter, DeadLetterError, read_dead_letters
from cloudformats.letter_replay import NOT_DONE, not_done, refusal, subject

from .fc_calls import Invoked
from .functions import FunctionInfo


@dataclass(frozen=True)
class Letter:
    letter: DeadLetter
    objects: str  # the keys its event names, or "timer"
    refused: str  # why it is not replayed ("" when it is)


def read_letters(path: Path, functions: dict[str, FunctionInfo]) -> list[Letter]:
    letters = read_dead_letters(path) if path.exists() else []
    return [Letter(d, subject(d), refused(d, functions)) for d in letters]


def refused(letter: DeadLetter, functions: dict[str, FunctionInfo]) -> str:
    """Why `letter` is not replayed, as `autotag replay` words it ("" when it is)."""
    function = functions.get(letter.function)
    if function is None:
        return f"no function {letter.function!r} in the template"
    if letter.service and letter.service != function.service:
        return f"no function {letter.function!r} in service {letter.service!r} of the template"
    why = refusal(letter, function.handler, function.timer_payloads)
    return f"refused: {why}" if why else ""


@dataclass(frozen=True)
class Settled:
    done: bool
    outcome: str  # for the page: "replayed (<request id>)", or why not
    renewal: tuple[str, str] | None  # the letter's new error type and message when it stays


def settle(invoked: Invoked) -> Settled:
    """What a replay's answer makes of its letter, as `autotag replay` judges it: done only when the
    function returned and its result reports every record done."""
    if invoked.unreachable:
        return Settled(False, invoked.unreachable, None)
    if invoked.error_type:
        message = invoked.error_message
        return Settled(False, f"failed again: {message}", (invoked.error_type, message))
    left = not_done(invoked.answer)
    if left:
        reasons = "; ".join(left)
        return Settled(False, f"not done ({invoked.request_id}): {reasons}", (NOT_DONE, reasons))
    return Settled(True, f"replayed ({invoked.request_id})", None)


def rewrite(path: Path, removed: set[str], renewed: dict[str, tuple[str, str]]) -> None:
    """The store without the `removed` letters and with the `renewed` ones' new reasons."""
    if not path.exists() or not (removed or renewed):
        return
    try:
        letters = read_dead_letters(path)
    except DeadLetterError:
        return  # someone else's edit broke it: leave it as it is, the page says why it cannot be read
    kept = []
    for letter in letters:
        if letter.id in removed:
            continue
        if letter.id in renewed:
            error_type, message = renewed[letter.id]
            letter = replace(letter, error_type=error_type, error_message=message)
        kept.append(letter)
    text = "".join(json.dumps(d.message(), ensure_ascii=False) + "\n" for d in kept)
    path.write_text(text, encoding="utf-8")
