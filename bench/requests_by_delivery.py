"""Tag on upload: OSS requests per object for each delivery shape, on an unversioned and a versioned bucket,
for new objects with and without uploader tags, and for the same deliveries again once tagged.

Delivery shapes: the native OSS trigger, EventBridge one CloudEvent per invocation, EventBridge batches
from the queue (template.yml's `oss-events-batched`, 10 to a batch), and `autotag replay` re-driving native
events that were dead-lettered before they were tagged (each marked with its provenance). Each runs
template.yml with that delivery chosen in the local FC, under the function's role, against the local OSS;
the figures are the function's own per-object counts (`ossRequests` in its summaries), which the server's
counters match. "Again" is every delivery pushed once more after its objects were tagged: a duplicate, or
a replay of something that had already succeeded."""

from __future__ import annotations

import argparse
import json
import tempfile
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import oss2
from rich.console import Console
from rich.table import Table

from autotag_cli.replay import with_provenance
from localcloud.fc import DeadLetter, DeadLetterStore, LocalFC, load_template, role_credentials
from localcloud.fc.runtime import DONE
from localcloud.fc.variants import delivery_variant
from localcloud.oss import DEFAULT_CREDENTIALS, LocalOSS

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "autotag-demo"  # what template.yml's triggers and patterns name
FUNCTION = "tag-on-upload"
SHAPES = {
    "native OSS trigger": {"delivery": "native"},
    "EventBridge, one CloudEvent": {"delivery": "eventbridge"},
    "EventBridge batch from the queue": {"delivery": "batched", "count": 10, "seconds": 1.0},
    "replay of dead-lettered native events": {"delivery": "native", "replay": True},
}
CASES = ("untagged", "uploader-tagged")


def _bucket(oss: LocalOSS, versioned: bool) -> oss2.Bucket:
    sts = DEFAULT_CREDENTIALS[1]
    bucket = oss2.Bucket(
        oss2.StsAuth(sts.access_key_id, sts.access_key_secret, sts.security_token or ""),
        oss.endpoint,
        BUCKET,
    )
    bucket.create_bucket()
    if versioned:
        config = oss2.models.BucketVersioningConfig()
        config.status = "Enabled"
        bucket.put_bucket_versioning(config)
    return bucket


def _purge(bucket: oss2.Bucket) -> None:
    """Every version and delete marker, then the bucket: the next measurement finds it new."""
    while True:
        page = bucket.list_object_versions(max_keys=1000)
        entries = [*page.versions, *page.delete_marker]
        if not entries:
            break
        for entry in entries:
            bucket.delete_object(entry.key, params={"versionId": entry.versionid})
    bucket.delete_bucket()


def _results(payloads: list[str]) -> list[dict[str, Any]]:
    return [result for text in payloads for result in json.loads(text)["results"]]


def _per_object(results: list[dict[str, Any]]) -> dict[str, float]:
    """Requests per created object, by case (the key's first folder)."""
    counts: dict[str, list[int]] = defaultdict(list)
    for result in results:
        counts[result["key"].split("/", 1)[0]].append(result["ossRequests"])
    return {case: sum(values) / len(values) for case, values in counts.items()}


def _upload(bucket: oss2.Bucket, objects: int, run: str) -> None:
    for number in range(objects):
        bucket.put_object(f"untagged/{run}-{number:04d}.jpg", b"x")
        bucket.put_object(
            f"uploader-tagged/{run}-{number:04d}.jpg", b"x", headers={"x-oss-tagging": "team=a"}
        )


def measure(
    oss: LocalOSS, template: Path, shape: dict[str, Any], versioned: bool, objects: int
) -> dict[str, dict[str, float]]:
    """Requests per object of the first deliveries and of the same deliveries again, by case."""
    bucket = _bucket(oss, versioned)
    fc = LocalFC(
        load_template(template),
        environment={"AUTOTAG_OSS_ENDPOINT": oss.endpoint},
        dead_letters=DeadLetterStore(),
        retry_base_seconds=0.01,
    )
    delivered: list[bytes] = []
    fc.observers.append(
        lambda record: (
            delivered.append(record.event) if record.kind == DONE and record.function == FUNCTION else None
        )
    )
    run = uuid.uuid4().hex[:8]
    try:
        with fc:
            if shape.get("replay"):
                # The events as the trigger would have delivered them, dead-lettered without a run.
                captured: list[bytes] = []
                subscription = oss.subscribe(BUCKET, ["oss:ObjectCreated:*"], captured.append)
                _upload(bucket, objects, run)
                assert oss.notifier.drain(60)
                oss.notifier.unsubscribe(subscription.id)
                letters = [
                    DeadLetter(
                        str(n),
                        f"acs:fc:::services/oss-autotag/functions/{FUNCTION}",
                        str(n),
                        payload.decode(),
                        "UnhandledInvocationError",
                        "",
                        4,
                        "",
                    )
                    for n, payload in enumerate(captured)
                ]
                first = [fc.invoke(FUNCTION, with_provenance(letter)) for letter in letters]
                again = [fc.invoke(FUNCTION, with_provenance(letter)) for letter in letters]
            else:
                fc.wire_oss(oss)
                _upload(bucket, objects, run)
                assert oss.notifier.drain(60) and fc.drain(120)
                first = list(fc.results)
                again = [fc.invoke(FUNCTION, event) for event in list(delivered)]
        failed = [r.error_message for r in [*first, *again] if not r.ok]
        assert not failed, failed[0]
        return {
            "first": _per_object(_results([r.payload or "{}" for r in first])),
            "again": _per_object(_results([r.payload or "{}" for r in again])),
        }
    finally:
        _purge(bucket)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--objects", type=int, default=20, help="objects per case (untagged, uploader-tagged)"
    )
    args = parser.parse_args()
    roles = role_credentials(load_template(ROOT / "template.yml").roles.values())
    table = Table(
        title=f"tag on upload: OSS requests per object by delivery ({args.objects} objects per case)"
    )
    for column in (
        "delivery",
        "bucket",
        *(f"new, {case}" for case in CASES),
        *(f"again, {c}" for c in CASES),
    ):
        table.add_column(column, justify="left" if column in ("delivery", "bucket") else "right")
    with LocalOSS(credentials=[*DEFAULT_CREDENTIALS, *roles]) as oss, tempfile.TemporaryDirectory() as folder:
        for name, shape in SHAPES.items():
            way = {k: v for k, v in shape.items() if k != "replay"}
            template = delivery_variant(ROOT / "template.yml", ROOT / "functions", Path(folder), **way)
            for versioned in (False, True):
                figures = measure(oss, template, shape, versioned, args.objects)
                table.add_row(
                    name,
                    "versioned" if versioned else "unversioned",
                    *(f"{figures['first'][case]:.2f}" for case in CASES),
                    *(f"{figures['again'][case]:.2f}" for case in CASES),
                )
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
