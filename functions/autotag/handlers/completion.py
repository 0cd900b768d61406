"""The backfill flows' Report step: the completion report of an execution, written by the backfill function.

`write_report(document, context)` takes the Report Task's payload (completion_report.py), reads the
ResultWriter's manifest.json and each result file it lists (one GetObject each), and writes the report's
parts, failed manifests and report.json (one PutObject each): O(result files + parts) requests, nothing per
object. Writing again gives the same files, so a retried Report step is harmless. It returns a small
summary (the Task's output is at most 64 KiB): where report.json is, the counts per outcome, how many parts
and failed manifests there are and the first of those."""

from __future__ import annotations

import logging
from typing import Any

from ..completion_report import (
    ReportError,
    ReportParts,
    parse_request,
    result_entries,
    result_file_keys,
    rows_of,
)
from ..gateway import RetryPolicy
from ..object_gateway import ObjectGateway
from ..output import to_json
from ..settings import Settings, credentials_from
from .clients import open_bucket, oss_auth

log = logging.getLogger("autotag.backfill")
REPORT_RETRIES = RetryPolicy(attempts=6, base_delay=0.5, max_delay=8.0)


def is_report_request(document: Any) -> bool:
    return isinstance(document, dict) and "CompletionReport" in document


def write_report(document: Any, context: Any) -> dict[str, Any]:
    request = parse_request(document)
    settings = Settings.from_environment()
    auth = oss_auth(credentials_from(context))
    endpoint = settings.endpoint_for(getattr(context, "region", "") or "cn-hangzhou")
    results = ObjectGateway(open_bucket(auth, endpoint, request.results_bucket), retry=REPORT_RETRIES)
    report = (
        results
        if request.report_bucket == request.results_bucket
        else ObjectGateway(open_bucket(auth, endpoint, request.report_bucket), retry=REPORT_RETRIES)
    )
    source = f"oss://{request.results_bucket}/{request.manifest_key}"
    manifest = results.read_object(request.manifest_key)
    if manifest is None:
        raise ReportError(f"{source}: no such object (the Map's ResultWriter wrote no manifest there)")
    parts = ReportParts(request.report_prefix, request.part_rows)
    for key in result_file_keys(manifest, source):
        data = results.read_object(key)
        if data is None:
            raise ReportError(f"oss://{request.results_bucket}/{key}: listed in {source} but not there")
        for entry in result_entries(data, f"oss://{request.results_bucket}/{key}"):
            for row in rows_of(entry):
                for part_key, part in parts.add(row):
                    report.write_object(part_key, part)
    for part_key, part in parts.finish(request.execution, source):
        report.write_object(part_key, part)
    where = f"oss://{request.report_bucket}/{request.report_prefix}"
    summary = {
        "Report": f"{where}report.json",
        "Objects": sum(parts.counts.values()),
        "Counts": dict(sorted(parts.counts.items())),
        "Parts": len(parts.parts),
        "FirstPart": f"oss://{request.report_bucket}/{parts.parts[0]}",
        "FailedObjects": parts.failed_rows,
        "FailedManifests": len(parts.failed_parts),
        "Failed": f"oss://{request.report_bucket}/{parts.failed_parts[0]}",
    }
    log.info(to_json({"requestId": getattr(context, "request_id", ""), **summary}))
    return summary
