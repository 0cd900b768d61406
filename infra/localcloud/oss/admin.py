"""The admin API under `/_admin/` (a path no bucket can have: bucket names cannot contain `_`):
request counters, injected latency and faults, event subscriptions, the clock's offset and running a bucket
inventory now, for tests and benchmarks that drive a server in another process. Every request must carry
`Authorization: Bearer <token>`, the token the server prints when it starts (`LocalOSS.admin_token` from
Python), unless it was started without one."""

from __future__ import annotations

import json
from typing import Any, Protocol

from ..clock import Clock, DurationError, format_duration, parse_duration
from .errors import OssError
from .events import Notifier
from .faults import Conditions, FaultRule
from .inventory import DEFAULT_ROWS_PER_FILE, InventoryRun

PREFIX = "/_admin/"
MAX_BODY_BYTES = 64 * 1024


class Administered(Protocol):
    """What the admin API reads and steers: the server (LocalOSS), which hands itself to `handle`."""

    clock: Clock
    conditions: Conditions
    notifier: Notifier

    def stats(self) -> dict[str, object]: ...

    def run_inventory(self, bucket: str, inventory_id: str, rows_per_file: int = ...) -> InventoryRun: ...


def handle(oss: Administered, method: str, path: str, body: bytes) -> tuple[int, Any]:
    """(status, JSON-able answer) for an admin request."""
    try:
        payload = json.loads(body) if body.strip() else {}
    except json.JSONDecodeError as exc:
        return 400, {"error": f"body is not JSON: {exc}"}
    route = path[len(PREFIX) :].rstrip("/")
    try:
        if route == "stats" and method == "GET":
            return 200, oss.stats()
        if route == "stats/reset" and method == "POST":
            oss.conditions.reset_counters()
            return 200, oss.stats()
        if route == "conditions" and method == "PUT":
            rules = [
                FaultRule(r["kind"], float(r["rate"]), frozenset(r.get("apis", [])))
                for r in payload.get("faults", [])
            ]
            oss.conditions.latency_seconds = float(payload.get("latency_ms", 0)) / 1000
            oss.conditions.set_faults(rules, payload.get("seed"))
            return 200, oss.stats()
        if route == "clock" and method == "GET":
            return 200, _clock(oss)
        if route == "clock" and method == "PUT":  # {"offset": "8d"}: the local OSS's time, shifted
            oss.clock.offset = parse_duration(str(payload["offset"]))
            return 200, _clock(oss)
        if route == "subscriptions" and method == "GET":
            return 200, [
                {
                    "id": s.id,
                    "bucket": s.bucket,
                    "events": list(s.events),
                    "prefix": s.prefix,
                    "suffix": s.suffix,
                    "url": s.target if isinstance(s.target, str) else None,
                }
                for s in oss.notifier.subscriptions()
            ]
        if route == "subscriptions" and method == "POST":
            subscription = oss.notifier.subscribe(
                payload["bucket"],
                payload["events"],
                payload["url"],
                payload.get("prefix", ""),
                payload.get("suffix", ""),
            )
            return 201, {"id": subscription.id}
        if route.startswith("subscriptions/") and method == "DELETE":
            found = oss.notifier.unsubscribe(route.split("/", 1)[1])
            return (204, None) if found else (404, {"error": "no such subscription"})
        if route == "inventory" and method == "POST":  # {"bucket", "id", "rowsPerFile"}: run it now
            run = oss.run_inventory(
                str(payload["bucket"]),
                str(payload["id"]),
                int(payload.get("rowsPerFile", DEFAULT_ROWS_PER_FILE)),
            )
            return 200, run.as_json()
        if route == "drain" and method == "POST":
            return 200, {"drained": oss.notifier.drain(float(payload.get("timeout", 10)))}
    except DurationError as exc:
        return 400, {"error": str(exc)}
    except OssError as exc:
        return exc.status, {"error": f"{exc.code}: {exc.message}"}
    except KeyError as exc:
        return 400, {"error": f"bad admin request: the body has no {exc.args[0]!r}"}
    except (TypeError, ValueError) as exc:
        return 400, {"error": f"bad admin request: {exc}"}
    return 404, {"error": f"no admin route {method} {path}"}


def _clock(oss: Administered) -> dict[str, Any]:
    return {"offset": format_duration(oss.clock.offset), "now": oss.clock.now().isoformat()}
