"""Planning a backfill execution on CloudFlow and reading its progress (pure): which flow, what input,
and what `status` makes of the engine's counts."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from autotag_cli.backfill_cloud import CloudBackfillError, plan_execution, progress, split_reference

REPORT = "oss://autotag-demo-state/backfill/reports"


def test_each_source_picks_its_flow_and_the_input_names_bucket_source_report_and_limits() -> None:
    flow, given = plan_execution("b", "photos/", None, None, REPORT, 16, 50.0)
    assert flow == "oss-autotag-backfill-prefix"
    assert given == {
        "bucket": "b",
        "source": {"prefix": "photos/"},
        "report": {"bucket": "autotag-demo-state", "prefix": "backfill/reports/"},
        "concurrency": 16,
        "toleratedFailurePercentage": 50.0,
    }
    flow, given = plan_execution("b", "", "oss://inv/b/daily/manifest.json", None, REPORT, 4, 0)
    assert (flow, given["source"]) == (
        "oss-autotag-backfill-inventory",
        {"bucket": "inv", "object": "b/daily/manifest.json"},
    )
    flow, given = plan_execution("b", "", None, "oss://s/backfill/manifests/m.csv", REPORT, 4, 0)
    assert (flow, given["source"]) == (
        "oss-autotag-backfill-manifest",
        {"bucket": "s", "object": "backfill/manifests/m.csv"},
    )


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        (("b", "", "oss://i/m.json", "oss://s/m.csv", REPORT), "give one"),
        (("b", "p/", "oss://i/m.json", None, REPORT), "--prefix is for a listing"),
        (("b", "", "inv/m.json", None, REPORT), "--inventory 'inv/m.json' is not oss://"),
        (("b", "", None, None, "reports/"), "--report-location"),
    ],
)
def test_what_cannot_be_started_is_named(
    arguments: tuple[str, str, str | None, str | None, str], error: str
) -> None:
    with pytest.raises(CloudBackfillError, match=error):
        plan_execution(*arguments, 4, 0)


def test_progress_reads_rate_and_eta_from_the_engines_counts() -> None:
    execution = {
        "FlowName": "oss-autotag-backfill-prefix",
        "Name": "bf-1",
        "Status": "Running",
        "StartedTime": "2026-12-07T08:00:00Z",
        "Input": {"report": {"bucket": "s", "prefix": "backfill/reports/"}},
    }
    counts = {"ItemCounts": {"Total": 1000, "Succeed": 380, "Failed": 20}}
    shown = progress(execution, counts, datetime(2026, 12, 7, 8, 0, 40, tzinfo=timezone.utc))
    assert shown["items"] == {"done": 400, "succeeded": 380, "failed": 20, "read": 1000}
    assert shown["objectsPerSecond"] == 10.0 and shown["etaSeconds"] == 60
    assert shown["results"] == "oss://s/backfill/reports/bf-1/Backfill/" and shown["report"] is None
    ended = progress(
        {**execution, "Status": "Succeeded"}, counts, datetime(2026, 12, 7, 9, tzinfo=timezone.utc)
    )
    assert ended["etaSeconds"] is None
    assert (
        progress(execution, None, datetime(2026, 12, 7, 8, 0, 1, tzinfo=timezone.utc))["items"]["done"] == 0
    )


def test_once_the_report_is_written_the_counts_are_per_object() -> None:
    """The engine counts a batch's items as succeeded when its invocation did, whatever each object's
    outcome; the report's counts are the objects' own."""
    execution = {
        "FlowName": "oss-autotag-backfill-prefix",
        "Name": "bf-1",
        "Status": "Succeeded",
        "StartedTime": "2026-12-07T08:00:00Z",
        "StoppedTime": "2026-12-07T08:01:00Z",
        "Input": {"report": {"bucket": "s", "prefix": "backfill/reports/"}},
    }
    counts = {"ItemCounts": {"Total": 100, "Succeed": 100, "Failed": 0}}
    summary = {
        "counts": {"tagged": 90, "failed": 7, "rejected": 3},
        "failed": ["backfill/reports/bf-1/report/failed.csv"],
    }
    shown = progress(execution, counts, datetime(2026, 12, 7, 9, tzinfo=timezone.utc), summary)
    assert shown["items"] == {"done": 100, "succeeded": 90, "failed": 10, "read": 100}
    assert shown["report"] == "oss://s/backfill/reports/bf-1/report/report.json"
    assert shown["failedManifests"] == ["oss://s/backfill/reports/bf-1/report/failed.csv"]
    assert shown["objects"] == {"tagged": 90, "failed": 7, "rejected": 3}


def test_a_reference_names_a_backfill_flow_and_an_execution() -> None:
    assert split_reference("oss-autotag-backfill-prefix/bf-1") == ("oss-autotag-backfill-prefix", "bf-1")
    for wrong in ("bf-1", "other-flow/bf-1", "oss-autotag-backfill-prefix/"):
        with pytest.raises(CloudBackfillError, match="is not <flow>/<execution>"):
            split_reference(wrong)
