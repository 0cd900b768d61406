"""The Bulk work page's readings: backfill runs, which are executions of template.yml's flows read through
CloudFlow's API with its official SDK (ListExecutions, DescribeMapRun; StopExecution cancels one), and
sweep passes, which are the expiry sweep's invocations in the invocation log with the counts its result
reports. `progress` and `sweep_counts` are pure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

MAP_STATE = "Backfill"  # the Map state of each backfill flow: its map run's name (docs/backfill.md)
RUNNING = ("Starting", "Running")
PER_FLOW = 20


@dataclass(frozen=True)
class Run:
    flow: str
    name: str
    status: str
    started: str
    stopped: str
    total: int  # items read so far
    succeeded: int
    failed: int
    rate: float  # items a second

    @property
    def done(self) -> int:
        return self.succeeded + self.failed

    @property
    def running(self) -> bool:
        return self.status in RUNNING


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
    except ValueError:
        return None


def progress(
    flow: str, name: str, status: str, started: str, stopped: str, counts: dict[str, int], now: datetime
) -> Run:
    total, succeeded, failed = (int(counts.get(k) or 0) for k in ("Total", "Succeed", "Failed"))
    begun, ended = _time(started), _time(stopped) or now
    seconds = (ended - begun).total_seconds() if begun else 0.0
    rate = (succeeded + failed) / seconds if seconds > 0 else 0.0
    return Run(flow, name, status, started, stopped, total, succeeded, failed, round(rate, 2))


def cloudflow_client(endpoint: str, region: str, key_id: str, secret: str) -> Any:
    """CloudFlow's official SDK client, pointed at the local CloudFlow's `host:port`."""
    from alibabacloud_fnf20190315.client import Client
    from alibabacloud_tea_openapi.utils_models import Config
    from darabonba.policy.retry import RetryOptions

    config = Config(access_key_id=key_id, access_key_secret=secret, region_id=region)
    config.endpoint, config.protocol = endpoint, "http"
    config.retry_options = RetryOptions({"retryable": False})  # a page reports; the user reloads
    return Client(config)


def backfill_runs(client: Any, flows: tuple[str, ...]) -> list[Run]:
    """The latest executions of each flow, newest first, with their map run's counts."""
    from alibabacloud_fnf20190315 import models
    from alibabacloud_tea_openapi.exceptions import ClientException

    runs = []
    now = datetime.now(timezone.utc)
    for flow in flows:
        listed = client.list_executions(models.ListExecutionsRequest(flow_name=flow, limit=PER_FLOW)).body
        for execution in listed.executions or []:
            counts: dict[str, int] = {}
            try:
                run = client.describe_map_run(
                    models.DescribeMapRunRequest(
                        flow_name=flow, execution_name=execution.name, map_run_name=MAP_STATE
                    )
                ).body
                if run.item_counts:
                    items = run.item_counts
                    counts = {
                        "Total": items.total or 0,
                        "Succeed": items.succeed or 0,
                        "Failed": items.failed or 0,
                    }
            except ClientException:
                pass  # no map run yet, or a flow without one
            runs.append(
                progress(
                    flow,
                    str(execution.name),
                    str(execution.status or ""),
                    str(execution.started_time or ""),
                    str(execution.stopped_time or ""),
                    counts,
                    now,
                )
            )
    return sorted(runs, key=lambda r: r.started, reverse=True)


def stop_run(client: Any, flow: str, name: str) -> None:
    from alibabacloud_fnf20190315 import models

    client.stop_execution(
        models.StopExecutionRequest(
            flow_name=flow, execution_name=name, error="Cancelled", cause="cancelled from the console"
        )
    )


def sweep_counts(result: str) -> list[str]:
    """Each sweep a run of the expiry function reports, as `bucket: name=value …` of its counts."""
    try:
        answer = json.loads(result)
    except ValueError:
        return []
    sweeps = answer.get("sweeps") if isinstance(answer, dict) else None
    lines = []
    for sweep in sweeps if isinstance(sweeps, list) else []:
        if not isinstance(sweep, dict):
            continue
        numbers = ", ".join(
            f"{k} {v}" for k, v in sweep.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        )
        flags = ", ".join(
            f"{k} {v}" for k, v in sweep.items() if isinstance(v, (str, bool)) and k != "bucket"
        )
        lines.append(f"{sweep.get('bucket', '?')}: {numbers}" + (f" ({flags})" if flags else ""))
    return lines
