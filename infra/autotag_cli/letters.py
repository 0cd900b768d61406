"""Which dead letters `autotag replay` re-drives: a template function's spec handed to the pure rules of
cloudformats/letter_replay.py (what each function's letters may be, and why a forged one is refused)."""

from __future__ import annotations

from cloudformats.letter_replay import refusal as _refusal
from localcloud.fc import DeadLetter, FunctionSpec


def refusal(letter: DeadLetter, spec: FunctionSpec) -> str:
    """Why `letter` is not replayed into `spec` ("" when it is): cloudformats/letter_replay.py judges it
    from the function's handler and its timer triggers' payloads."""
    timers = [t.payload for t in spec.triggers if t.type == "Timer" and t.payload]
    return _refusal(letter, spec.handler, timers)
