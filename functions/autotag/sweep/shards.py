"""Splitting a prefix's key space into contiguous shards for parallel sweeps (pure)."""

from __future__ import annotations

from .request import ShardRange


def plan_shards(boundaries: list[str], count: int) -> list[ShardRange]:
    """Up to `count` ranges covering every key, cut at evenly spaced entries of the sorted `boundaries`
    (the top-level folders and keys under the prefix, as a delimiter listing gives them)."""
    points = sorted(set(boundaries))
    if count <= 1 or len(points) < 2:
        return [ShardRange(0, 1, "", None)]
    count = min(count, len(points))
    cuts = [points[(len(points) * i) // count] for i in range(1, count)]
    starts = ["", *cuts]
    ends: list[str | None] = [*cuts, None]
    return [ShardRange(i, count, start, end) for i, (start, end) in enumerate(zip(starts, ends, strict=True))]
