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

from dataclasses import replace

from autotag.sweep.request import SweepRequest, SweepRequestError, parse_sweep_payload, parse_timer_event
from localcloud.fc import DeadLetter, FunctionSpec


def refusal(letter: DeadLetter, spec: FunctionSpec) -> str:
    """Why `letter` is not replayed into `spec` ("" when it is)."""
    module = spec.handler.rpartition(".")[0]
    if module == "tag_expiry":
        return _sweep_refusal(letter.payload, spec)
    if module == "tag_backfill":
        return (
            "the backfill function is invoked only synchronously, by its flows, and never leaves a letter: "
            "whoever may send to the queue wrote it"
        )
    return ""


def _sweep_refusal(payload: str, spec: FunctionSpec) -> str:
    try:
        request = parse_timer_event(payload).request
    except SweepRequestError as error:
        return f"not a timer event ({error})"
    timers = [parse_sweep_payload(t.payload) for t in spec.triggers if t.type == "Timer" and t.payload]
    if any(_is_or_shards(request, timer) for timer in timers):
        return ""
    return (
        "its payload is neither the template's timer payload nor one shard of it: whoever may send to "
        "the queue wrote it (invoke the sweep yourself if you did)"
    )


def _is_or_shards(request: SweepRequest, timer: SweepRequest) -> bool:
    """Whether `request` is the timer's own, or a shard event the fan-out made of it (fanout.shard_events:
    one of its buckets, one range, no inventory)."""
    if request == timer:
        return True
    if request.shard is None or len(request.buckets) != 1 or request.buckets[0] not in timer.buckets:
        return False
    shard_of_timer = replace(timer, buckets=request.buckets, shards=1, shard=request.shard, inventory=None)
    return bool(request == shard_of_timer)
