"""The files a distributed Map's ResultWriter leaves in OSS (pure): the sub-workflows' results in JSON
files of at most RESULTS_PER_FILE entries, succeeded and failed apart, then manifest.json listing them
with the counts. manifest.json is written last, so a reader that finds it finds every file it lists.

    <Prefix><execution>/<map run>/succeeded_0.json, succeeded_1.json, ...
    <Prefix><execution>/<map run>/failed_0.json, ...
    <Prefix><execution>/<map run>/manifest.json

Each entry: {"Status", "Input", "Output"} or {"Status", "Input", "Error", "Cause"}. The layout is the local
CloudFlow's (docs/cloudflow.md says what of it the documentation confirms)."""

from __future__ import annotations

import json
from typing import Any

RESULTS_PER_FILE = 1000


def result_files(base: str, results: list[dict[str, Any]]) -> list[tuple[str, bytes]]:
    files: list[tuple[str, bytes]] = []
    listed: dict[str, list[str]] = {"SUCCEEDED": [], "FAILED": []}
    counts = {"SUCCEEDED": 0, "FAILED": 0}
    for status, stem in (("SUCCEEDED", "succeeded"), ("FAILED", "failed")):
        chosen = [
            {k: v for k, v in r.items() if k in ("Status", "Input", "Output", "Error", "Cause")}
            for r in results
            if r["Status"] == status
        ]
        counts[status] = sum(int(r.get("Items", 1)) for r in results if r["Status"] == status)
        for number, start in enumerate(range(0, len(chosen), RESULTS_PER_FILE)):
            key = f"{base}{stem}_{number}.json"
            files.append(
                (key, json.dumps(chosen[start : start + RESULTS_PER_FILE], ensure_ascii=False).encode())
            )
            listed[status].append(key)
    manifest = {"ResultFiles": listed, "ItemCounts": counts}
    files.append((f"{base}manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1).encode()))
    return files
