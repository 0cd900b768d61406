"""What `autotag local up` prints about CloudFlow executions (pure): a line when an execution's status or
counts change, none when nothing moved, nothing for what had ended before it watched."""

from __future__ import annotations

from typing import Any

from autotag_cli.local_flows_log import progress_lines


def record(name: str, status: str, total: int, succeeded: int, failed: int = 0) -> dict[str, Any]:
    counts = {"Total": total, "Succeed": succeeded, "Failed": failed}
    return {"FlowName": "f", "Name": name, "Status": status, "MapRuns": {"Backfill": {"ItemCounts": counts}}}


def test_a_line_per_change_and_none_without_one() -> None:
    old = record("old", "Succeeded", 5, 5)
    seen = progress_lines({}, [old], "")[1]  # what had ended before local up watched: not news
    lines, seen = progress_lines(seen, [old, record("a", "Running", 100, 0)], "10:00:00")
    assert lines == ["10:00:00 CloudFlow f/a: Running, 0 of 100 items read so far done, 0 failed"]
    lines, seen = progress_lines(seen, [old, record("a", "Running", 100, 0)], "10:00:05")
    assert lines == []
    lines, seen = progress_lines(seen, [record("a", "Running", 250, 140, 10)], "10:00:10")
    assert lines == ["10:00:10 CloudFlow f/a: Running, 150 of 250 items read so far done, 10 failed"]
    lines, _ = progress_lines(seen, [record("a", "Succeeded", 250, 240, 10)], "10:00:15")
    assert lines == ["10:00:15 CloudFlow f/a: Succeeded, 250 of 250 items read so far done, 10 failed"]
    lines, _ = progress_lines(seen, [record("b", "Succeeded", 3, 3)], "10:00:20")  # began and ended between
    assert lines == ["10:00:20 CloudFlow f/b: Succeeded, 3 of 3 items read so far done, 0 failed"]
