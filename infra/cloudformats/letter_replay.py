"""Re-driving a dead letter, the pure parts `autotag replay` and the console share: which letters are
re-driven (`refusal`), the event a replay sends (`with_provenance`), and whether the function's result says
the replay is done (`not_done`).

A letter names the function it is for and carries the event to send it, and anyone allowed
`mns:SendMessage` on the dead-letter queue can write one: the queue does not say who sent a message. A
replay runs with the operator's credentials, so it re-drives only what the functions' own failures put
there, whose effect is bounded by what the function believes anyway:

- tag on upload: any OSS event (the function reads every fact from OSS and acts only on AUTOTAG_BUCKETS);
- the expiry sweep: a timer event carrying the payload of one of the function's timer triggers in the
  template, or one shard of it as the sweep's fan-out writes it (not another prefix, `full`, rate, worker
  count or inventory of the sender's choosing);
- a backfill: nothing; its flows invoke the backfill function synchronously, so it never leaves a letter.

Any other function's letters are re-driven as before.

A replayed OSS event carries its provenance (`autotagReplay`; on an EventBridge delivery's CloudEvents,
the `autotagreplay` attribute), which the function echoes as `replayOf`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone

from autotag.events import EventError, parse_delivery
from autotag.output import to_json
from autotag.sweep.request import SweepRequest, SweepRequestError, parse_sweep_payload, parse_timer_event

from .dead_letters import DeadLetter


def refusal(letter: DeadLetter, handler: str, timer_payloads: Sequence[str]) -> str:
    """Why `letter` is not replayed into the function of `handler`, whose timer triggers carry
    `timer_payloads` ("" when it is)."""
    module = handler.rpartition(".")[0]
    if module == "tag_expiry":
        return _sweep_refusal(letter.payload, timer_payloads)
    if module == "tag_backfill":
        return (
            "the backfill function is invoked only synchronously, by its flows, and never leaves a letter: "
            "whoever may send to the queue wrote it"
        )
    return ""


def _sweep_refusal(payload: str, timer_payloads: Sequence[str]) -> str:
    try:
        request = parse_timer_event(payload).request
    except SweepRequestError as error:
        return f"not a timer event ({error})"
    timers = [parse_sweep_payload(payload) for payload in timer_payloads]
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


def with_provenance(letter: DeadLetter) -> bytes:
    """The original event, plus where it came from when it is an OSS event: `autotagReplay` on an OSS
    trigger's event, the `autotagreplay` extension attribute on each CloudEvent of an EventBridge delivery
    (a RawData element has no envelope to carry it). Timer events are replayed as they were: their
    payload is the sweep's own input."""
    try:
        document = json.loads(letter.payload)
    except json.JSONDecodeError:
        return letter.payload.encode()
    if isinstance(document, dict) and "events" in document:
        document["autotagReplay"] = {
            "originalRequestId": letter.request_id,
            "deadLetterId": letter.id,
            "attempts": letter.attempts,
            "replayedAt": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    for element in document if isinstance(document, list) else [document]:
        if isinstance(element, dict) and "specversion" in element:
            element["autotagreplay"] = letter.request_id
    return str(to_json(document)).encode()


# What a record of the upload function's summary may end in for its replay to be done: OSS answered and
# the object is as it should be, or is gone or replaced (its own event tags the newer one).
DONE_OUTCOMES = frozenset({"tagged", "unchanged", "skipped", "ignored"})
NOT_DONE = "ReplayNotDone"  # a letter's error type once its replay's result said a record was not done


def not_done(returned: str | None) -> list[str]:
    """Each record the function's returned summary does not report done, as `bucket/key: outcome: reason`
    (OSS's words, its code among them), and each batch element it refused. A result that is no upload
    summary (the sweep's, a backfill's) is the function's own word that it finished: nothing."""
    try:
        summary = json.loads(returned or "")
    except json.JSONDecodeError:
        return []
    if not isinstance(summary, dict) or not isinstance(summary.get("results"), list):
        return []
    reasons = [
        f"{r.get('bucket')}/{r.get('key')}: {r.get('outcome')}: {r.get('reason', '')}"
        for r in summary["results"]
        if not isinstance(r, dict) or r.get("outcome") not in DONE_OUTCOMES
    ]
    reasons += [
        f"element {r.get('element')}: refused: {r.get('reason', '')}" for r in summary.get("refused") or []
    ]
    return reasons


def subject(letter: DeadLetter) -> str:
    if '"triggerTime"' in letter.payload:
        return "timer"
    try:
        delivery = parse_delivery(letter.payload)
    except EventError:
        return "?"
    return ", ".join(f"{event.bucket}/{event.key}" for event in delivery.events) or "?"
