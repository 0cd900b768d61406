"""`autotag backfill --cloud`, `backfill status` and `backfill cancel`: backfill as an
execution of one of template.yml's backfill flows (CloudFlow distributed Maps, docs/backfill.md), through
CloudFlow's official SDK. The engine holds the state: the command starts an execution and returns; status
reads the execution and its map run, and the completion report once it is written; cancel stops it. An
execution is named `<flow>/<execution>`.

Planning the execution's input and reading progress from the engine's counts are pure; only the functions
taking a client call CloudFlow."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from alibabacloud_fnf20190315 import models
from alibabacloud_fnf20190315.client import Client

from autotag.inventory import InventoryError, Location, parse_location

PREFIX_FLOW = "oss-autotag-backfill-prefix"
INVENTORY_FLOW = "oss-autotag-backfill-inventory"
MANIFEST_FLOW = "oss-autotag-backfill-manifest"
MAP_STATE = "Backfill"  # the Map state of each backfill flow: its map run's name


class CloudBackfillError(ValueError):
    """What the operator asked for cannot be started or found; the message says why in one line."""


@dataclass(frozen=True)
class Started:
    flow: str
    execution: str
    input: dict[str, Any]

    @property
    def reference(self) -> str:
        return f"{self.flow}/{self.execution}"


def plan_execution(
    bucket: str,
    prefix: str,
    inventory: str | None,
    manifest: str | None,
    report: str,
    concurrency: int,
    tolerated_percentage: float,
) -> tuple[str, dict[str, Any]]:
    """The flow to run and its input (pure). `inventory` is an oss:// manifest.json, `manifest` an oss://
    CSV, `report` an oss:// folder; CloudBackfillError names what is wrong."""
    source: dict[str, Any]
    if inventory and manifest:
        raise CloudBackfillError("--inventory and --manifest name the objects two ways: give one")
    if inventory or manifest:
        where = _location(str(inventory or manifest), "--inventory" if inventory else "--manifest")
        source = {"bucket": where.bucket, "object": where.key}
        flow = INVENTORY_FLOW if inventory else MANIFEST_FLOW
        if prefix:
            raise CloudBackfillError("--prefix is for a listing; an inventory or manifest names its objects")
    else:
        source, flow = {"prefix": prefix}, PREFIX_FLOW
    folder = _location(report if report.endswith("/") else report + "/", "--report-location")
    given = {
        "bucket": bucket,
        "source": source,
        "report": {"bucket": folder.bucket, "prefix": folder.key},
        "concurrency": concurrency,
        "toleratedFailurePercentage": tolerated_percentage,
    }
    return flow, given


def _location(text: str, option: str) -> Location:
    try:
        return parse_location(text, option)
    except InventoryError as error:
        raise CloudBackfillError(str(error)) from None


def execution_name(now: datetime) -> str:
    """A new execution's name: when it was started, and a random part (CloudFlow's naming rules)."""
    return f"bf-{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"


def split_reference(reference: str) -> tuple[str, str]:
    flow, slash, execution = reference.partition("/")
    if not slash or flow not in (PREFIX_FLOW, INVENTORY_FLOW, MANIFEST_FLOW) or not execution:
        raise CloudBackfillError(
            f"{reference[:200]!r} is not <flow>/<execution> of a backfill flow "
            f"({PREFIX_FLOW}, {INVENTORY_FLOW} or {MANIFEST_FLOW})"
        )
    return flow, execution


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None


def report_folder(execution: dict[str, Any]) -> tuple[str, str] | None:
    """(bucket, key prefix) of the execution's completion report, `<report prefix><execution>/report/`
    (docs/backfill.md#the-report); None when its input names no report location."""
    given = execution.get("Input") or {}
    report = given.get("report") if isinstance(given, dict) else None
    if not isinstance(report, dict) or not isinstance(report.get("bucket"), str):
        return None
    return report["bucket"], f"{report.get('prefix') or ''}{execution.get('Name', '')}/report/"


def progress(
    execution: dict[str, Any],
    map_run: dict[str, Any] | None,
    now: datetime,
    summary: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What `status` shows (pure): items done, failed and read so far, the rate, the ETA while items are
    still being read only as far as the count read so far goes, and where the results are. Once the
    completion report is written (`summary`, its report.json), the counts are the report's, per object:
    `failed` counts the objects whose outcome is failed or rejected, whatever their batch's status."""
    counts = (map_run or {}).get("ItemCounts") or {}
    total, succeeded, failed = (int(counts.get(k) or 0) for k in ("Total", "Succeed", "Failed"))
    outcomes = summary.get("counts") if isinstance(summary, dict) else None
    if isinstance(outcomes, dict):
        per_object = {str(k): int(v) for k, v in outcomes.items() if isinstance(v, int)}
        failed = per_object.get("failed", 0) + per_object.get("rejected", 0)
        succeeded = sum(per_object.values()) - failed
        total = max(total, succeeded + failed)
    done = succeeded + failed
    started = _time(execution.get("StartedTime"))
    ended = _time(execution.get("StoppedTime")) or now
    seconds = (ended - started).total_seconds() if started else 0.0
    rate = done / seconds if seconds > 0 else 0.0
    running = execution.get("Status") in ("Starting", "Running")
    eta = (total - done) / rate if running and rate > 0 and total > done else None
    given = execution.get("Input") or {}
    report = given.get("report") if isinstance(given, dict) else None
    folder = report_folder(execution)
    shown: dict[str, Any] = {
        "execution": f"{execution.get('FlowName', '')}/{execution.get('Name', '')}",
        "status": execution.get("Status", ""),
        "items": {"done": done, "succeeded": succeeded, "failed": failed, "read": total},
        "objectsPerSecond": round(rate, 2),
        "etaSeconds": round(eta) if eta is not None else None,
        "results": f"oss://{report['bucket']}/{report['prefix']}{execution.get('Name', '')}/{MAP_STATE}/"
        if isinstance(report, dict) and "bucket" in report
        else None,
        "report": None,
        "failedManifests": None,
        "objects": None,
    }
    if folder is not None and isinstance(outcomes, dict):
        bucket = folder[0]
        shown["report"] = f"oss://{bucket}/{folder[1]}report.json"
        listed = summary.get("failed") if isinstance(summary, dict) else None
        shown["failedManifests"] = [f"oss://{bucket}/{k}" for k in listed or [] if isinstance(k, str)]
        shown["objects"] = per_object
    return shown


# ---- calls --------------------------------------------------------------------------------------------


def start(client: Client, flow: str, given: dict[str, Any], now: datetime) -> Started:
    name = execution_name(now)
    client.start_execution(
        models.StartExecutionRequest(flow_name=flow, execution_name=name, input=json.dumps(given))
    )
    return Started(flow, name, given)


# (bucket, key) -> the object's bytes, or None when there is none: how status reads report.json
ReadObject = Callable[[str, str], "bytes | None"]


def read_summary(execution: dict[str, Any], read: ReadObject | None) -> dict[str, Any] | None:
    """The completion report's report.json once the execution has ended and the report is written."""
    folder = report_folder(execution)
    if read is None or folder is None or execution.get("Status") in ("Starting", "Running"):
        return None
    data = read(folder[0], f"{folder[1]}report.json")
    if data is None:
        return None
    try:
        summary = json.loads(data)
    except ValueError:
        return None
    return summary if isinstance(summary, dict) else None


def read_status(client: Client, reference: str, read: ReadObject | None = None) -> dict[str, Any]:
    from alibabacloud_tea_openapi.exceptions import ClientException

    flow, name = split_reference(reference)
    body = client.describe_execution(
        models.DescribeExecutionRequest(flow_name=flow, execution_name=name)
    ).body
    try:
        given = json.loads(body.input or "{}")
    except json.JSONDecodeError:
        given = {}
    execution = {
        "FlowName": flow,
        "Name": name,
        "Status": body.status,
        "StartedTime": body.started_time,
        "StoppedTime": body.stopped_time,
        "Input": given,
    }
    try:
        run = client.describe_map_run(
            models.DescribeMapRunRequest(flow_name=flow, execution_name=name, map_run_name=MAP_STATE)
        ).body
        map_run: dict[str, Any] | None = {
            "ItemCounts": {
                "Total": run.item_counts.total if run.item_counts else 0,
                "Succeed": run.item_counts.succeed if run.item_counts else 0,
                "Failed": run.item_counts.failed if run.item_counts else 0,
            }
        }
    except ClientException as error:
        if error.code != "MapRunNotExists":
            raise
        map_run = None  # not started yet
    shown = progress(execution, map_run, datetime.now(timezone.utc), read_summary(execution, read))
    shown["error"] = failure_of(body.status, body.output)
    return shown


def failure_of(status: str | None, output: str | None) -> dict[str, str] | None:
    """Why an execution Failed or TimedOut: the Error and Cause the engine gives as its output (pure)."""
    if status not in ("Failed", "TimedOut"):
        return None
    try:
        document = json.loads(output or "{}")
    except json.JSONDecodeError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    return {"code": str(document.get("Error") or status), "cause": str(document.get("Cause") or "")}


def stop(client: Client, reference: str) -> dict[str, Any]:
    flow, name = split_reference(reference)
    client.stop_execution(
        models.StopExecutionRequest(
            flow_name=flow, execution_name=name, error="Cancelled", cause="autotag backfill cancel"
        )
    )
    return {"execution": reference, "status": "Stopped"}
