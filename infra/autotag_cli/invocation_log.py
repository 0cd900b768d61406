"""One line per invocation for `autotag local up`: when, which function, the event and its object (for
an EventBridge batch, how many elements, and what became of them by outcome), what the function did, how
long it took and the OSS requests it spent; and a line for each retry and each dead letter with the
reason; and which invocations were the system's own state writes, ignored. Built from the event and the
function's own JSON summary (pure)."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from localcloud.fc.runtime import DEAD_LETTER, DONE, RETRY, UNDELIVERED, InvocationRecord

from .console import shown


def _event_subject(event: bytes) -> tuple[str, str]:
    """(what happened, to what) for an OSS or timer event."""
    try:
        document = json.loads(event)
    except ValueError:
        return "event", "(not JSON)"
    if isinstance(document, dict) and isinstance(document.get("events"), list) and document["events"]:
        first = document["events"][0]
        try:
            name = str(first["eventName"]).split(":", 1)[-1]
            keys = [str(r["oss"]["object"]["key"]) for r in document["events"]]
        except (KeyError, TypeError):
            return "OSS event", "(malformed)"
        subject = keys[0] if len(keys) == 1 else f"{keys[0]} and {len(keys) - 1} more"
        return name, subject
    if isinstance(document, dict) and "triggerTime" in document:
        return "timer", f"{document.get('triggerName', '?')} at {document.get('triggerTime')}"
    if isinstance(document, list):  # an event-streaming trigger's push: its outcome counts the objects
        return "EventBridge", f"batch of {len(document)}"
    if isinstance(document, dict) and ("specversion" in document or "eventName" in document):
        # one CloudEvent, or (RawData) the OSS record it carries
        record: Any = document.get("data") if "specversion" in document else document
        try:
            name = str(record["eventName"]).split(":", 1)[-1]
            return f"EventBridge {name}", str(record["oss"]["object"]["key"])
        except (KeyError, TypeError):
            return "EventBridge event", "(malformed)"
    if isinstance(document, dict) and isinstance(document.get("Items"), list):  # a backfill flow's batch
        extra = document.get("BatchInput")
        bucket = extra.get("Bucket") if isinstance(extra, dict) else None
        return "backfill batch", f"{len(document['Items'])} items" + (f" of oss://{bucket}" if bucket else "")
    if isinstance(document, dict) and isinstance(document.get("CompletionReport"), dict):  # the Report step
        execution = document["CompletionReport"].get("Execution")
        return "completion report", f"of {execution}" if execution else "(no execution named)"
    return "event", "(unknown shape)"


def _outcome(payload: str | None) -> tuple[str, int | None]:
    """(what the function did, OSS requests) from its summary."""
    try:
        summary: Any = json.loads(payload or "")
    except ValueError:
        return "returned a non-JSON answer", None
    if not isinstance(summary, dict):
        return "returned", None
    if isinstance(summary.get("results"), list):
        results = summary["results"]
        outcomes = [str(r.get("outcome")) for r in results]
        spent = sum(int(r.get("ossRequests") or 0) for r in results)
        reasons = [
            str(r.get("reason")) for r in results if r.get("outcome") in ("rejected", "failed", "skipped")
        ]
        text = ", ".join(dict.fromkeys(outcomes)) or "no objects"
        if summary.get("delivery") == "eventbridge-batch":
            refused: list[Any] = summary.get("refused") or []
            counts = {"tagged": 0, "unchanged": 0} | Counter(outcomes)
            text = ", ".join(f"{n} {outcome}" for outcome, n in counts.items()) + f", {len(refused)} refused"
            reasons += [str(r.get("reason")) for r in refused if isinstance(r, dict)]
        return (f"{text}: {reasons[0]}" if reasons else text), spent
    if isinstance(summary.get("sweeps"), list) or summary.get("dispatched"):
        sweeps = summary.get("sweeps") or []
        dispatched = summary.get("dispatched") or []
        parts = [
            f"swept oss://{s.get('bucket')}/{s.get('prefix', '')} ({s.get('mode')}): "
            f"{s.get('listed')} listed, "
            f"{s.get('tagsRemoved')} tags removed"
            + (f"; stopped: {s['stopped']}" if s.get("stopped") else "")
            for s in sweeps
        ]
        parts += [f"dispatched {len(d.get('shards', []))} shards of {d.get('bucket')}" for d in dispatched]
        spent = sum(int(s.get("ossRequests") or 0) for s in sweeps)
        return "; ".join(parts) or "nothing to sweep", spent
    if isinstance(summary.get("Counts"), dict) and isinstance(summary.get("Results"), list):  # a batch's
        counts = summary["Counts"]
        text = ", ".join(f"{n} {outcome}" for outcome, n in counts.items()) or "no items"
        results = [r for r in summary["Results"] if isinstance(r, dict)]
        reasons = [str(r["Reason"]) for r in results if r.get("Reason")]
        return (f"{text}: {reasons[0]}" if reasons else text), None
    if isinstance(summary.get("Report"), str) and isinstance(summary.get("Counts"), dict):  # a report's
        counts = ", ".join(f"{n} {outcome}" for outcome, n in summary["Counts"].items()) or "nothing"
        return f"{summary.get('Objects', '?')} objects: {counts}; {summary['Report']}", None
    return "returned", None


def is_ignored_state_write(record: InvocationRecord, state_prefix: str) -> bool:
    """Whether the invocation was the upload function ignoring objects of the system's own state (the
    sweep's checkpoints, leases and plans under `state_prefix`, whose uploads fire the trigger too)."""
    result = record.result
    if record.kind != DONE or result is None or not result.ok:
        return False
    try:
        summary: Any = json.loads(result.payload or "")
    except ValueError:
        return False
    if not isinstance(summary, dict) or summary.get("refused"):
        return False
    results = summary.get("results")
    return (
        isinstance(results, list)
        and bool(results)
        and bool(state_prefix)
        and all(
            isinstance(r, dict)
            and r.get("outcome") == "ignored"
            and str(r.get("key", "")).startswith(state_prefix)
            for r in results
        )
    )


def format_record(record: InvocationRecord, now: float | None = None) -> str:
    """One line for the terminal: whatever an event or an error carries is shown escaped (console.py)."""
    return shown(_record_line(record, now))


def _record_line(record: InvocationRecord, now: float | None) -> str:
    moment = time.strftime("%H:%M:%S", time.localtime(now if now is not None else time.time()))
    happened, subject = _event_subject(record.event)
    head = f"{moment} {record.function} {happened} {subject}"
    result = record.result
    if record.kind == DONE and result is not None:
        attempt = f" (attempt {record.attempt})" if record.attempt > 1 else ""
        if not result.ok:
            return f"{head}: failed{attempt}: {result.error_message} [{record.seconds * 1000:.0f} ms]"
        outcome, spent = _outcome(result.payload)
        requests = f", {spent} OSS requests" if spent is not None else ""
        return f"{head}: {outcome}{attempt} [{record.seconds * 1000:.0f} ms{requests}]"
    if record.kind == RETRY:
        return f"{head}: {record.note}"
    if record.kind == DEAD_LETTER:
        error = result.error_message if result is not None else ""
        return f"{head}: dead letter {record.note}: {error}"
    if record.kind == UNDELIVERED:
        return f"{head}: failed for good; dead letter NOT delivered: {record.note}"
    return f"{head}: {record.kind}"
