"""A backfill flow's completion report, from its Map's result files (pure): every object with its outcome,
in CSV parts of at most `part_rows` rows, the failed objects again as a CSV manifest (`bucket,key
[,versionId]`, what `autotag backfill --manifest` and OSS Batch Operations read), and a summary.

A result entry (the ResultWriter's, docs/cloudflow.md) is one batch: a succeeded one carries the
processor's outcomes (map_items.py, one per item, in order); a failed one (its invocation failed after the
Task's retries) carries only its input, so each of its items is reported `failed` with the engine's error;
an entry with no input is an item the Map could not read (a bad manifest line), reported `rejected`, never
in the failed manifest, since running it again cannot help.

Layout under `<report prefix><execution>/report/`:

    part-00000.csv, part-00001.csv, ...   bucket,key,versionId,outcome,reason (header line first)
    failed.csv                            every failed object, when they fit one part, or else
    failed-00000.csv, failed-00001.csv    one manifest per part
    report.json                           counts per outcome, the parts, the failed manifests; last

Keys are URL-encoded and no cell starts a formula (csv_cells.py)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .csv_cells import key_cell, text_cell
from .inventory import manifest_line
from .map_batch import BatchError, parse_map_batch

REPORT_HEADER = ("bucket", "key", "versionId", "outcome", "reason")
DEFAULT_PART_ROWS = 500_000  # ~50 MB a part at ~100 bytes a row: one PutObject, held in memory once
MAX_PART_ROWS = 5_000_000
FAILED, REJECTED = "failed", "rejected"
OUTCOMES = ("tagged", "unchanged", "skipped", FAILED, REJECTED)


class ReportError(ValueError):
    """The request or a result file is not what the report is made from; the message names it."""


@dataclass(frozen=True)
class Row:
    bucket: str
    key: str
    version_id: str | None
    outcome: str
    reason: str = ""


@dataclass(frozen=True)
class ReportRequest:
    results_bucket: str
    manifest_key: str  # the ResultWriter's manifest.json
    report_bucket: str
    report_prefix: str  # <report prefix><execution>/report/
    part_rows: int
    execution: str


def _text(document: dict[str, Any], name: str, where: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise ReportError(f"{where}.{name}: must be a non-empty string")
    return value


def parse_request(document: Any) -> ReportRequest:
    """The Report Task's payload: `{"CompletionReport": {"ResultWriterDetails": {"Bucket", "ManifestKey"},
    "Report": {"bucket", "prefix"}, "Execution", "PartRows"}}` (PartRows may be null: the default); after
    a Map that failed, `"MapRun": <its state's name>` in place of ResultWriterDetails."""
    body = document.get("CompletionReport") if isinstance(document, dict) else None
    if not isinstance(body, dict):
        raise ReportError("CompletionReport: must be an object")
    report = body.get("Report")
    if not isinstance(report, dict):
        raise ReportError("CompletionReport.Report: must be an object {bucket, prefix}")
    execution = _text(body, "Execution", "CompletionReport")
    prefix = report.get("prefix", "")
    if not isinstance(prefix, str):
        raise ReportError("CompletionReport.Report.prefix: must be a string")
    details = body.get("ResultWriterDetails")
    if details is None and isinstance(body.get("MapRun"), str):
        # A Map that failed past its tolerance has no output: its results are where its ResultWriter
        # puts them, <prefix><execution>/<map state>/manifest.json (docs/cloudflow.md).
        manifest = f"{prefix}{execution}/{body['MapRun']}/manifest.json"
        details = {"Bucket": report.get("bucket"), "ManifestKey": manifest}
    if not isinstance(details, dict):
        raise ReportError(
            "CompletionReport.ResultWriterDetails: must be an object (the Map has no ResultWriter?)"
        )
    part_rows = body.get("PartRows")
    if part_rows is None:
        part_rows = DEFAULT_PART_ROWS
    if isinstance(part_rows, bool) or not isinstance(part_rows, int) or not 1 <= part_rows <= MAX_PART_ROWS:
        raise ReportError(f"CompletionReport.PartRows: must be a whole number from 1 to {MAX_PART_ROWS}")
    return ReportRequest(
        results_bucket=_text(details, "Bucket", "CompletionReport.ResultWriterDetails"),
        manifest_key=_text(details, "ManifestKey", "CompletionReport.ResultWriterDetails"),
        report_bucket=_text(report, "bucket", "CompletionReport.Report"),
        report_prefix=f"{prefix}{execution}/report/",
        part_rows=part_rows,
        execution=execution,
    )


def result_file_keys(manifest: bytes, where: str) -> list[str]:
    """The result files the ResultWriter's manifest.json lists, succeeded first, in order."""
    try:
        document = json.loads(manifest)
        listed = document["ResultFiles"]
        keys = [*listed.get("SUCCEEDED", []), *listed.get("FAILED", [])]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ReportError(f"{where} is not a ResultWriter manifest (ResultFiles)") from None
    if not all(isinstance(k, str) for k in keys):
        raise ReportError(f"{where}: ResultFiles must list keys")
    return keys


def result_entries(data: bytes, where: str) -> list[Any]:
    try:
        entries = json.loads(data)
    except ValueError:
        raise ReportError(f"{where} is not JSON") from None
    if not isinstance(entries, list):
        raise ReportError(f"{where} is not a list of results")
    return entries


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def rows_of(entry: Any) -> Iterator[Row]:
    """The rows of one result entry: one per object of its batch."""
    if not isinstance(entry, dict):
        yield Row("", "", None, REJECTED, "a result that is not an object")
        return
    given = entry.get("Input")
    if given is None:  # an item the Map could not read: it names no object to retry
        yield Row("", "", None, REJECTED, _one_line(f"{entry.get('Error', '')}: {entry.get('Cause', '')}"))
        return
    try:
        items = parse_map_batch(given)
    except BatchError as error:
        yield Row("", "", None, REJECTED, f"a batch the report cannot read: {error}")
        return
    if entry.get("Status") != "SUCCEEDED":
        why = _one_line(f"{entry.get('Error', '')}: {entry.get('Cause', '')}")
        for item in items:
            yield Row(item.bucket, item.key, item.version_id, FAILED, why)
        return
    output = entry.get("Output")
    results = output.get("Results") if isinstance(output, dict) else None
    if not isinstance(results, list):
        results = []
    for position, item in enumerate(items):
        result = results[position] if position < len(results) else None
        outcome = result.get("Outcome") if isinstance(result, dict) else None
        if outcome not in OUTCOMES:  # the processor said nothing usable of it: it may not be tagged
            why = "the batch's output has no outcome for it"
            yield Row(item.bucket, item.key, item.version_id, FAILED, why)
            continue
        assert isinstance(result, dict)
        reason = result.get("Reason", "")
        yield Row(item.bucket, item.key, item.version_id, str(outcome), _one_line(str(reason or "")))


def report_line(row: Row) -> str:
    cells = [
        text_cell(row.bucket),
        key_cell(row.key) if row.key else "",
        text_cell(row.version_id or ""),
        text_cell(row.outcome),
        text_cell(row.reason),
    ]
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow(cells)
    return text.getvalue()


def _header() -> str:
    return ",".join(REPORT_HEADER) + "\n"


@dataclass
class ReportParts:
    """Rows in, finished parts out: a part is handed back as soon as it is full, so what is held is at most
    one report part and one failed manifest. The failed manifest is named failed.csv while it is the only
    one; once a second is needed the first becomes failed-00000.csv."""

    prefix: str
    part_rows: int
    counts: dict[str, int] = field(default_factory=dict)
    parts: list[str] = field(default_factory=list)
    failed_parts: list[str] = field(default_factory=list)
    failed_rows: int = 0
    _lines: list[str] = field(default_factory=list)
    _failed: list[str] = field(default_factory=list)
    _held_failed: list[str] | None = None  # a full failed manifest, named once it is known if it is alone

    def add(self, row: Row) -> list[tuple[str, bytes]]:
        done: list[tuple[str, bytes]] = []
        self.counts[row.outcome] = self.counts.get(row.outcome, 0) + 1
        self._lines.append(report_line(row))
        if len(self._lines) >= self.part_rows:
            done.append(self._report_part())
        if row.outcome == FAILED and row.key:
            self.failed_rows += 1
            if len(self._failed) >= self.part_rows:
                done.extend(self._failed_part())
            self._failed.append(manifest_line(row.bucket, row.key, row.version_id))
        return done

    def _report_part(self) -> tuple[str, bytes]:
        key = f"{self.prefix}part-{len(self.parts):05d}.csv"
        data = (_header() + "".join(self._lines)).encode()
        self.parts.append(key)
        self._lines = []
        return key, data

    def _failed_part(self) -> list[tuple[str, bytes]]:
        """The full failed manifest set aside; the one set aside before it written under its number."""
        done: list[tuple[str, bytes]] = []
        if self._held_failed is not None:
            done.append(self._numbered_failed(self._held_failed))
        self._held_failed, self._failed = self._failed, []
        return done

    def _numbered_failed(self, lines: list[str]) -> tuple[str, bytes]:
        key = f"{self.prefix}failed-{len(self.failed_parts):05d}.csv"
        self.failed_parts.append(key)
        return key, "".join(lines).encode()

    def finish(self, execution: str, source: str) -> list[tuple[str, bytes]]:
        """The last parts, then report.json (always last: finding it means every file it names is there)."""
        done: list[tuple[str, bytes]] = []
        if self._lines or not self.parts:
            done.append(self._report_part())
        if self._held_failed is None:
            key = f"{self.prefix}failed.csv"
            self.failed_parts.append(key)
            done.append((key, "".join(self._failed).encode()))
        else:
            done.append(self._numbered_failed(self._held_failed))
            if self._failed:
                done.append(self._numbered_failed(self._failed))
        self._held_failed, self._failed = None, []
        summary = {
            "execution": execution,
            "results": source,
            "objects": sum(self.counts.values()),
            "counts": dict(sorted(self.counts.items())),
            "partRows": self.part_rows,
            "parts": self.parts,
            "failedObjects": self.failed_rows,
            "failed": self.failed_parts,
        }
        done.append((f"{self.prefix}report.json", json.dumps(summary, indent=1).encode()))
        return done
