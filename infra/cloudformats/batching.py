"""How a distributed Map cuts its items into sub-workflow inputs (pure).

Without an ItemBatcher each item is one sub-workflow's input. With one, consecutive items are grouped while
the group stays within MaxItemsPerBatch and MaxInputBytesPerBatch (the items' JSON size), and the input is
`{"Items": [...]}` plus `"BatchInput"` when the batcher constructs one. Items that could not be read are
never batched: they fail on their own. Batches are numbered in reading order from `first` (0, or past the
numbers a resumed map run has already used)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from flowspec.definition import ItemBatcher

from .items import Item


@dataclass(frozen=True)
class Batch:
    number: int
    items: tuple[Item, ...]


def _size(item: Item) -> int:
    return len(json.dumps(item.value, ensure_ascii=False).encode())


def batches(items: Iterable[Item], batcher: ItemBatcher | None, first: int = 0) -> Iterator[Batch | Item]:
    """Batches of readable items, and each unreadable item as it comes."""
    max_items = 1 if batcher is None else batcher.max_items or 2**31
    max_bytes = None if batcher is None else batcher.max_bytes
    number, size = first, 0
    group: list[Item] = []
    for item in items:
        if not item.ok:
            yield item
            continue
        grown = size + _size(item)
        if group and (len(group) >= max_items or (max_bytes is not None and grown > max_bytes)):
            yield Batch(number, tuple(group))
            number, group, grown = number + 1, [], _size(item)
        group.append(item)
        size = grown
    if group:
        yield Batch(number, tuple(group))


def item_identity(value: Any) -> str:
    """What tells an item from another across readings: its value as canonical JSON."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def batch_items(batch_input_value: Any, batcher: ItemBatcher | None) -> list[Any]:
    """The item values a sub-workflow's input (as `batch_input` made it) holds."""
    if batcher is None:
        return [batch_input_value]
    return list(batch_input_value.get("Items", [])) if isinstance(batch_input_value, dict) else []


def batch_input(batch: Batch, batcher: ItemBatcher | None, extra: dict[str, Any] | None) -> Any:
    """The sub-workflow's input for `batch`: the item itself, or {"Items": [...], "BatchInput": ...}."""
    if batcher is None:
        return batch.items[0].value
    document: dict[str, Any] = {"Items": [item.value for item in batch.items]}
    if extra is not None:
        document["BatchInput"] = extra
    return document
