"""Which dead letters `autotag replay` re-drives (pure).

A letter names the function it is for and carries the event to send it, and anyone allowed
`mns:SendMessage` on the dead-letter queue can write one: the queue does not say who sent a message. A
replay runs with the operator's credentials, so it re-drives only what the functions' own failures put
there, whose effect is bounded by what the function believes anyway:

- tag on upload: any OSS event (the function reads every fact from OSS and acts only on AUTOTAG_BUCKETS);
- the expiry sweep: a timer event carrying the payload of one of the function's timer triggers in the
  template, or one shard of it as the sweep's fan-out writes it (not another prefix, `full`, rate, worker
  count or inventory of the sender's choosing);
- the backfill function: nothing. Only its flows invoke it, synchronously, so none of its failures is ever
  a letter: whoever may send to the queue wrote one.

Any other function's letters are re-driven as before."""

from __future__ import annotations

from cloudformats.letter_replay import refusal as _refusal
from localcloud.fc import DeadLetter, FunctionSpec


def refusal(letter: DeadLetter, spec: FunctionSpec) -> str:
    """Why `letter` is not replayed into `spec` ("" when it is): cloudformats/letter_replay.py judges it
    from the function's handler and its timer triggers' payloads."""
    timers = [t.payload for t in spec.triggers if t.type == "Timer" and t.payload]
    return _refusal(letter, spec.handler, timers)
