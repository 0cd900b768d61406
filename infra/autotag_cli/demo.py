"""`autotag demo`: the main job, end to end on the local cloud.

A local OSS with an OSS trigger wired to the tag-on-upload function (loaded from its CodeUri, invoked
asynchronously with an FC-shaped STS context for every delivered event). Objects are uploaded through
every upload path, with and without uploader tags; the demo then shows each object's tags, what the
function did for each event, and how many OSS requests it spent."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import click
import oss2
import requests
from rich.console import Console
from rich.table import Table

from localcloud.fc import fc_context, load_handler
from localcloud.oss import DEFAULT_CREDENTIALS, LocalOSS
from localcloud.oss.postform import signed_form

BUCKET = "autotag-demo"
CODE_URI = Path(__file__).resolve().parents[2] / "functions"
CREATED_EVENTS = [
    "oss:ObjectCreated:PutObject",
    "oss:ObjectCreated:PostObject",
    "oss:ObjectCreated:CopyObject",
    "oss:ObjectCreated:AppendObject",
    "oss:ObjectCreated:CompleteMultipartUpload",
    "oss:ObjectCreated:PutSymlink",
]


def _tags(bucket: oss2.Bucket, key: str) -> str:
    rule = bucket.get_object_tagging(key).tag_set.tagging_rule
    return ", ".join(f"{k}={v}" for k, v in rule.items()) or "—"


def _upload_everything(bucket: oss2.Bucket, endpoint: str, workdir: Path) -> dict[str, str]:
    """One object per upload path; returns key -> how it was uploaded (with the uploader's own tags)."""
    paths = {}
    bucket.put_object(
        "projects/apollo/photo 1+2.jpg",
        b"j" * 2048,
        headers={"x-oss-tagging": "team=media", "x-oss-meta-owner": "ann"},
    )
    paths["projects/apollo/photo 1+2.jpg"] = "PutObject, uploader tag team=media, meta owner=ann"
    form = signed_form(DEFAULT_CREDENTIALS[1], "incoming/${filename}")
    requests.post(
        f"{endpoint}/{BUCKET}/",
        data=form,
        files={"file": ("scan.pdf", b"%PDF", "application/pdf")},
        timeout=30,
    ).raise_for_status()
    paths["incoming/scan.pdf"] = "PostObject (browser form)"
    bucket.copy_object(BUCKET, "projects/apollo/photo 1+2.jpg", "archive/photo.jpg")
    paths["archive/photo.jpg"] = "CopyObject, tags copied (COPY)"
    bucket.copy_object(
        BUCKET,
        "projects/apollo/photo 1+2.jpg",
        "archive/photo-v2.jpg",
        headers={"x-oss-tagging-directive": "REPLACE", "x-oss-tagging": "stage=final"},
    )
    paths["archive/photo-v2.jpg"] = "CopyObject, REPLACE with stage=final"
    bucket.append_object("logs/app.log", 0, b"line 1\n", headers={"x-oss-tagging": "kind=applog"})
    bucket.append_object("logs/app.log", 7, b"line 2\n")
    paths["logs/app.log"] = "AppendObject x2, first append tagged kind=applog"
    upload = bucket.init_multipart_upload("video/clip.mp4")
    part = bucket.upload_part("video/clip.mp4", upload.upload_id, 1, b"v" * 4096)
    bucket.complete_multipart_upload("video/clip.mp4", upload.upload_id, [oss2.models.PartInfo(1, part.etag)])
    paths["video/clip.mp4"] = "multipart (initiate, part, complete)"
    big = workdir / "dataset.csv"
    big.write_bytes(b"a,b\n" * 60_000)
    oss2.resumable_upload(
        bucket,
        "tmp/dataset.csv",
        str(big),
        multipart_threshold=100 * 1024,
        part_size=100 * 1024,
        store=oss2.ResumableStore(root=str(workdir)),
    )
    paths["tmp/dataset.csv"] = "resumable upload (3 parts)"
    bucket.put_symlink("projects/apollo/photo 1+2.jpg", "latest.jpg")
    paths["latest.jpg"] = "PutSymlink (the link is tagged)"
    return paths


@click.command()
def demo() -> None:
    """Run the end-to-end demo on an in-process local cloud."""
    console = Console()
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    lock = threading.Lock()
    with LocalOSS() as server, tempfile.TemporaryDirectory() as workdir:
        os.environ["AUTOTAG_OSS_ENDPOINT"] = server.endpoint
        handler = load_handler(CODE_URI, "tag_on_upload.handler")

        def invoke(payload: bytes) -> None:  # what FC does for each event of the OSS trigger
            try:
                summary = json.loads(handler(payload, fc_context()))
                with lock:
                    results.extend(summary["results"])
            except Exception as error:  # shown below; FC would retry and then dead-letter it
                with lock:
                    failures.append(f"{type(error).__name__}: {error}")

        credential = DEFAULT_CREDENTIALS[1]
        auth = oss2.StsAuth(
            credential.access_key_id, credential.access_key_secret, credential.security_token or ""
        )
        bucket = oss2.Bucket(auth, server.endpoint, BUCKET)
        bucket.create_bucket()
        server.subscribe(BUCKET, CREATED_EVENTS, invoke)
        console.print(
            f"[bold]local OSS[/] at {server.endpoint}; OSS trigger → tag-on-upload "
            f"(functions/tag_on_upload.py, shipped rules)"
        )
        paths = _upload_everything(bucket, server.endpoint, Path(workdir))
        server.notifier.drain(60)

        objects = Table(title="objects after upload: tags read back through oss2")
        for column in ("key", "uploaded by", "tags"):
            objects.add_column(column)
        for key, how in paths.items():
            objects.add_row(key, how, _tags(bucket, key))
        console.print(objects)

        events = Table(title="what tag-on-upload did, per event")
        for column in ("event", "key", "outcome", "tags added", "requests"):
            events.add_column(column)
        notes = []
        for result in sorted(results, key=lambda r: (r["key"], r["eventName"])):
            events.add_row(
                result["eventName"].split(":")[1],
                result["key"],
                result["outcome"],
                ", ".join(f"{k}={v}" for k, v in result["added"].items()) or "—",
                str(result["ossRequests"]),
            )
            notes += [
                f"{result['key']}: {d['key']}={d['value']} not applied: {d['reason']}"
                for d in result["dropped"]
            ]
        console.print(events)
        for note in dict.fromkeys(notes):
            console.print(f"  {note}")
        tagged = [r for r in results if r["outcome"] == "tagged"]
        spent = sum(r["ossRequests"] for r in results)
        console.print(
            f"{len(results)} events, {len(tagged)} objects tagged, {spent} OSS requests "
            f"({spent / max(len(paths), 1):.2f} per object); failures: {len(failures)}"
        )
        _expire_later(console, bucket, paths)
        for failure in failures:
            console.print(f"[red]{failure}[/]")
        if failures:
            raise SystemExit(1)


def _expire_later(console: Console, bucket: oss2.Bucket, paths: dict[str, str]) -> None:
    """Fire the expiry timer as if it were 8 days later: the 7-day `lifecycle` tag of tmp/ objects goes."""
    sweep = load_handler(CODE_URI, "tag_expiry.handler")
    later = datetime.now(timezone.utc) + timedelta(days=8)
    event = {
        "triggerTime": later.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "triggerName": "nightly-expiry",
        "payload": json.dumps({"buckets": [BUCKET]}),
    }
    context = fc_context(function="tag-expiry", handler="tag_expiry.handler", timeout=600)
    (report,) = json.loads(sweep(json.dumps(event).encode(), context))["sweeps"]
    console.print(
        f"[bold]timer → tag-expiry[/] at triggerTime {event['triggerTime']} ({report['mode']} pass): "
        f"{report['listed']} objects listed, {report['candidates']} read, {report['tagsRemoved']} stale tags "
        f"removed, {report['ossRequests']} OSS requests"
    )
    removed = Table(title="stale tags removed by the sweep")
    for column in ("key", "removed", "why", "tags now"):
        removed.add_column(column)
    for result in report["objects"]:
        removed.add_row(
            result["key"],
            ", ".join(f"{r['key']}={r['value']}" for r in result["removed"]),
            "; ".join(r["reason"] for r in result["removed"]),
            _tags(bucket, result["key"]),
        )
    console.print(removed)
    untouched = [k for k in paths if k not in {r["key"] for r in report["objects"]}]
    console.print(f"{len(untouched)} other objects untouched")
