"""Splitting a prefix's key space into contiguous shards for parallel sweeps (pure): where to cut, from the
top-level entries of a listing or from keys sampled out of a bucket inventory."""

from __future__ import annotations

from collections.abc import Sequence

from .request import ShardRange


def plan_shards(boundaries: list[str], count: int) -> list[ShardRange]:
    """Up to `count` ranges covering every key, cut at evenly spaced entries of the sorted `boundaries`
    (the top-level folders and keys under the prefix, as a delimiter listing gives them, or keys sampled
    from an inventory)."""
    points = sorted(set(boundaries))
    if count <= 1 or len(points) < 2:
        return [ShardRange(0, 1, "", None)]
    count = min(count, len(points))
    cuts = [points[(len(points) * i) // count] for i in range(1, count)]
    starts = ["", *cuts]
    ends: list[str | None] = [*cuts, None]
    return [ShardRange(i, count, start, end) for i, (start, end) in enumerate(zip(starts, ends, strict=True))]


def sampled_boundaries(files: Sequence[Sequence[str]], prefix: str, excluded: str, limit: int) -> list[str]:
    """Boundaries from the keys read at the start of each data file of an inventory: those under `prefix`
    and not under `excluded` (the sweep's state), at most `limit` in all, the same number (evenly spaced)
    from each file so that every file — a like share of the objects — weighs alike in the cuts."""
    per_file = max(1, limit // max(1, len(files)))
    chosen: list[str] = []
    for keys in files:
        kept = [k for k in keys if k.startswith(prefix) and not (excluded and k.startswith(excluded))]
        if len(kept) > per_file:
            kept = [kept[(len(kept) * i) // per_file] for i in range(per_file)]
        chosen += kept
    return chosen
