"""Cells of the CSV files a person may open in a spreadsheet (a backfill's failed.csv, CSV manifests),
written so no cell is read as a formula and read back exactly (pure).

OWASP's CSV-injection guidance: a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is
taken as a formula by spreadsheets; such a cell gets a leading single quote, which they show as text. A key
cell is URL-encoded already (the manifest format), which encodes every one of those but `-`: a leading `-`
is encoded too (`%2D`), so the line stays what OSS Batch Operations reads. Any other cell (a version id, an
outcome, a reason) starting with one of them, or with a single quote itself, gets one more single quote in
front; reading takes exactly one away, so a value that really starts with a quote comes back whole."""

from __future__ import annotations

from urllib.parse import quote, unquote

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_QUOTE = "'"


def key_cell(key: str) -> str:
    """A key as a manifest holds it: URL-encoded (`/` kept), never starting a formula."""
    encoded = quote(key, safe="/")
    return "%2D" + encoded[1:] if encoded.startswith("-") else encoded


def read_key_cell(cell: str) -> str:
    return unquote(cell)  # never unquote_plus: a `+` in a key stays a `+`


def text_cell(value: str) -> str:
    """Any other value: a single quote in front when it would start a formula or starts with a quote."""
    return _QUOTE + value if value.startswith((*FORMULA_STARTS, _QUOTE)) else value


def read_text_cell(cell: str) -> str:
    return cell[1:] if cell.startswith(_QUOTE) else cell
