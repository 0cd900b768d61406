"""The completion report from a Map's result entries (pure): one row per object whatever its batch's fate
(a failed batch's objects are `failed` with the engine's error, an unreadable item `rejected`), parts of at
most `part_rows` rows, failed objects in manifests `autotag backfill --manifest` reads back exactly (hostile
keys and version ids included), failed.csv when they fit one part, and report.json last."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from autotag.completion_report import (
    ReportError,
    ReportParts,
    parse_request,
    result_file_keys,
    rows_of,
)
from autotag.csv_cells import read_key_cell, read_text_cell
from autotag.inventory import manifest_rows

HOSTILE_KEYS = ["=cmd|' /C calc'!A0", "-1+1.jpg", 'a,b\n"c".txt', "plain/ü 100%.jpg", "'quoted"]


def succeeded(items: list[dict[str, Any]], outcomes: list[str]) -> dict[str, Any]:
    results = [
        {"Bucket": i.get("Bucket", "b"), "Key": i["Key"], "Outcome": o, "Reason": f"why {o}"}
        for i, o in zip(items, outcomes, strict=True)
    ]
    return {
        "Status": "SUCCEEDED",
        "Input": {"Items": items, "BatchInput": {"Bucket": "b"}},
        "Output": {"Results": results},
    }


def run(entries: list[Any], part_rows: int) -> dict[str, bytes]:
    parts = ReportParts("r/x/report/", part_rows)
    files: dict[str, bytes] = {}
    for entry in entries:
        for row in rows_of(entry):
            for key, data in parts.add(row):
                assert key not in files
                files[key] = data
    for key, data in parts.finish("x", "oss://s/m.json"):
        files[key] = data
    assert list(files)[-1] == "r/x/report/report.json"
    return files


def report_rows(files: dict[str, bytes]) -> list[list[str]]:
    rows: list[list[str]] = []
    for key in json.loads(files["r/x/report/report.json"])["parts"]:
        lines = list(csv.reader(io.StringIO(files[key].decode(), newline="")))
        assert lines[0] == ["bucket", "key", "versionId", "outcome", "reason"]
        rows += lines[1:]
    return rows


def test_every_object_has_one_row_whatever_its_batch_did() -> None:
    entries = [
        succeeded([{"Key": "a"}, {"Key": "b"}], ["tagged", "failed"]),
        {
            "Status": "FAILED",
            "Input": {
                "Items": [{"Key": "c%2Bd", "VersionId": "v1"}],
                "BatchInput": {"Bucket": "b", "KeyEncoding": "url"},
            },
            "Error": "FC.Unknown",
            "Cause": "the execution's rules changed\nafter it started",
        },
        {
            "Status": "FAILED",
            "Input": None,
            "Error": "FnF.ItemReaderFailed",
            "Cause": "m.csv line 4: 4 fields",
        },
    ]
    files = run(entries, 100)
    rows = report_rows(files)
    assert [(r[1], r[3]) for r in rows] == [
        ("a", "tagged"),
        ("b", "failed"),
        ("c%2Bd", "failed"),
        ("", "rejected"),
    ]
    assert rows[2][2] == "v1" and rows[2][4] == "FC.Unknown: the execution's rules changed after it started"
    summary = json.loads(files["r/x/report/report.json"])
    assert summary["counts"] == {"failed": 2, "rejected": 1, "tagged": 1} and summary["objects"] == 4
    assert summary["failed"] == ["r/x/report/failed.csv"] and summary["failedObjects"] == 2
    failed = [row for _, row in manifest_rows(io.StringIO(files["r/x/report/failed.csv"].decode()), "f")]
    assert [(r.bucket, r.key, r.version_id) for r in failed] == [("b", "b", None), ("b", "c+d", "v1")]


def test_parts_split_at_part_rows_and_failed_manifests_read_back_exactly() -> None:
    keys = [f"{HOSTILE_KEYS[n % len(HOSTILE_KEYS)]}-{n}" for n in range(23)]
    items = [{"Key": k} for k in keys]
    entries = [succeeded(items[i : i + 5], ["failed"] * len(items[i : i + 5])) for i in range(0, 23, 5)]
    files = run(entries, 7)
    summary = json.loads(files["r/x/report/report.json"])
    assert summary["parts"] == [f"r/x/report/part-0000{n}.csv" for n in range(4)]
    assert summary["failed"] == [f"r/x/report/failed-0000{n}.csv" for n in range(4)]
    rows = report_rows(files)
    assert [read_key_cell(r[1]) for r in rows] == keys
    assert all(not r[c].startswith(("=", "+", "-", "@")) for r in rows for c in range(5))
    back = [
        row.key
        for key in summary["failed"]
        for _, row in manifest_rows(io.StringIO(files[key].decode(), newline=""), key)
    ]
    assert back == keys


def test_failed_manifest_of_exactly_one_part_is_failed_csv() -> None:
    files = run([succeeded([{"Key": f"k{n}"} for n in range(7)], ["failed"] * 7)], 7)
    assert json.loads(files["r/x/report/report.json"])["failed"] == ["r/x/report/failed.csv"]
    assert files["r/x/report/failed.csv"].count(b"\n") == 7


def test_a_batch_whose_output_lacks_an_outcome_reports_the_object_failed() -> None:
    entry = succeeded([{"Key": "a"}, {"Key": "b"}], ["tagged", "tagged"])
    entry["Output"]["Results"] = entry["Output"]["Results"][:1]
    rows = list(rows_of(entry))
    assert [(r.key, r.outcome) for r in rows] == [("a", "tagged"), ("b", "failed")]


def test_version_ids_and_reasons_never_start_a_formula() -> None:
    rows = report_rows(run([succeeded([{"Key": "k", "VersionId": "=v"}], ["failed"])], 10))
    assert rows[0][2] == "'=v" and read_text_cell(rows[0][2]) == "=v"


@pytest.mark.parametrize(
    ("document", "wrong"),
    [
        ({}, "CompletionReport"),
        ({"CompletionReport": {"Report": {"bucket": "s"}, "Execution": "x"}}, "ResultWriterDetails"),
        (
            {
                "CompletionReport": {
                    "ResultWriterDetails": {"Bucket": "s", "ManifestKey": "m"},
                    "Report": {"bucket": "s", "prefix": "p/"},
                    "Execution": "x",
                    "PartRows": 0,
                }
            },
            "PartRows",
        ),
    ],
)
def test_a_bad_request_is_one_line_naming_the_field(document: Any, wrong: str) -> None:
    with pytest.raises(ReportError, match=wrong):
        parse_request(document)


def test_the_request_places_the_report_beside_the_results() -> None:
    request = parse_request(
        {
            "CompletionReport": {
                "ResultWriterDetails": {"Bucket": "s", "ManifestKey": "p/x/Backfill/manifest.json"},
                "Report": {"bucket": "s", "prefix": "p/"},
                "Execution": "x",
                "PartRows": None,
            }
        }
    )
    assert request.report_prefix == "p/x/report/" and request.part_rows > 1000
    manifest = json.dumps({"ResultFiles": {"SUCCEEDED": ["s0"], "FAILED": ["f0"]}}).encode()
    assert result_file_keys(manifest, "m") == ["s0", "f0"]
    with pytest.raises(ReportError, match="not a ResultWriter manifest"):
        result_file_keys(b"[]", "m")
