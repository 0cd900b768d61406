"""The backfill flows' completion report, its pure core on one core: result files of the local CloudFlow's
shape (1,000 batches of 50 objects each, as the flows' ItemBatcher cuts them) turned into report parts and
failed manifests. Prints bytes of result file and of report per object, and objects per second (parsing the
JSON included, OSS's transfer not). Results in docs/backfill.md ("The report").

    .venv/bin/python bench/completion_report.py [files]"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "functions"))

from autotag.completion_report import DEFAULT_PART_ROWS, ReportParts, result_entries, rows_of

BATCHES, PER_BATCH = 1000, 50
KEY = "projects/alpha/2026/11/30/camera-07/IMG_{:09d}.jpg"  # 53 bytes: a typical key


def result_file(start: int) -> bytes:
    entries = []
    for batch in range(BATCHES):
        keys = [KEY.format(start + batch * PER_BATCH + n) for n in range(PER_BATCH)]
        results = [{"Bucket": "autotag-demo", "Key": k, "Outcome": "tagged"} for k in keys]
        if batch % 1000 == 999:  # one object in 50,000 failed
            results[0] = {
                **results[0],
                "Outcome": "failed",
                "Reason": "OSS kept failing: 503 after 6 attempts",
            }
        entries.append(
            {
                "Status": "SUCCEEDED",
                "Input": {"Items": [{"Key": k} for k in keys], "BatchInput": {"Bucket": "autotag-demo"}},
                "Output": {"Results": results, "Counts": {"tagged": PER_BATCH}},
            }
        )
    return json.dumps(entries).encode()


def main() -> None:
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    data = [result_file(n * BATCHES * PER_BATCH) for n in range(files)]
    objects = files * BATCHES * PER_BATCH
    parts = ReportParts("r/x/report/", DEFAULT_PART_ROWS)
    written = 0
    began = time.process_time()
    for number, chunk in enumerate(data):
        for entry in result_entries(chunk, f"file {number}"):
            for row in rows_of(entry):
                written += sum(len(part) for _, part in parts.add(row))
    written += sum(len(part) for _, part in parts.finish("x", "m"))
    seconds = time.process_time() - began
    read = sum(len(chunk) for chunk in data)
    print(f"objects: {objects:,} in {files} result files of {BATCHES * PER_BATCH:,}")
    print(f"result file bytes per object: {read / objects:.0f}")
    print(f"report bytes per object (parts, failed manifests, report.json): {written / objects:.1f}")
    print(f"CPU seconds: {seconds:.2f}; objects per CPU second: {objects / seconds:,.0f}")


if __name__ == "__main__":
    main()
