"""Where the local CloudFlow keeps flows, executions and map-run progress: JSON files under a data
directory, each written whole (a temporary file renamed over it), so a restart finds every file either as
it was or as it became. Without a data directory nothing is kept across a restart; a temporary directory
still holds batch results until the run writes them out.

    <root>/flows/<flow>.json
    <root>/executions/<flow>/<execution>/execution.json
    <root>/executions/<flow>/<execution>/maprun-<state>/batch-<number>.json   one per finished batch"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def write_json(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        json.dump(document, file, ensure_ascii=False)
    os.replace(temporary, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root

    def save_flow(self, flow: dict[str, Any]) -> None:
        write_json(self.root / "flows" / f"{flow['Name']}.json", flow)

    def delete_flow(self, name: str) -> None:
        (self.root / "flows" / f"{name}.json").unlink(missing_ok=True)

    def flows(self) -> Iterator[dict[str, Any]]:
        for path in sorted((self.root / "flows").glob("*.json")):
            yield read_json(path)

    def execution_dir(self, flow: str, execution: str) -> Path:
        return self.root / "executions" / flow / execution

    def save_execution(self, record: dict[str, Any]) -> None:
        write_json(self.execution_dir(record["FlowName"], record["Name"]) / "execution.json", record)

    def executions(self) -> Iterator[dict[str, Any]]:
        for path in sorted((self.root / "executions").glob("*/*/execution.json")):
            yield read_json(path)

    def map_run_dir(self, flow: str, execution: str, state: str) -> Path:
        return self.execution_dir(flow, execution) / f"maprun-{state}"

    def save_batch(self, folder: Path, number: int, result: dict[str, Any]) -> None:
        write_json(folder / f"batch-{number}.json", result)

    def finished_batches(self, folder: Path) -> dict[int, dict[str, Any]]:
        return {int(p.stem.split("-", 1)[1]): read_json(p) for p in folder.glob("batch-*.json")}
