"""Backfill inside Function Compute: the handler of the backfill function, the processor of the backfill
flows (CloudFlow distributed Maps, docs/backfill.md).

`handler(event: bytes, context)` takes a batch of items from a flow's Map and returns one outcome per item
as JSON (map_items.py), logging one JSON line, or the flow's Report step's request and writes the
completion report (completion.py). A payload that is neither raises BatchError naming what is wrong: the
flow's Task then fails, and the engine counts the batch's items as failed."""

from __future__ import annotations

from typing import Any

from ..events import load_json
from ..map_batch import BatchError, is_map_batch
from ..output import to_json
from ..settings import Settings
from .completion import is_report_request, write_report
from .map_items import process_batch
from .rules_source import current_rules


def initialize(context: Any) -> None:
    settings = Settings.from_environment()
    settings.require_buckets()
    current_rules(settings, context)


def handler(event: bytes, context: Any) -> str:
    document = load_json(event, "the event", BatchError)
    if is_map_batch(document):  # a batch of a backfill flow's Map
        return to_json(process_batch(document, context))
    if is_report_request(document):  # the backfill flow's Report step
        return to_json(write_report(document, context))
    raise BatchError(
        "the event is neither a batch of a backfill flow's Map (an object with an Items list) nor its "
        "Report step's request (an object with CompletionReport)"
    )


__all__ = ["handler", "initialize"]
