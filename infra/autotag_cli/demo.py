"""`autotag demo`: the main job on the local cloud.

Until the tagger lands, it shows the local OSS doing what the tagger relies on: uploads through every
path with uploader tags, the OSS trigger events they publish, tag reads and writes, and request counts."""

from __future__ import annotations

import json
import threading

import click
import oss2
import requests
from rich.console import Console
from rich.table import Table

from localcloud.oss import DEFAULT_CREDENTIALS, LocalOSS
from localcloud.oss.postform import signed_form

BUCKET = "autotag-demo"


def _tags(bucket: oss2.Bucket, key: str) -> str:
    rule = bucket.get_object_tagging(key).tag_set.tagging_rule
    return ", ".join(f"{k}={v}" for k, v in rule.items()) or "—"


@click.command()
def demo() -> None:
    """Run the end-to-end demo on an in-process local cloud."""
    console = Console()
    events: list[dict[str, object]] = []
    lock = threading.Lock()

    def on_event(payload: bytes) -> None:
        with lock:
            events.extend(json.loads(payload)["events"])

    with LocalOSS() as server:
        credential = DEFAULT_CREDENTIALS[1]  # STS, as Function Compute hands out
        auth = oss2.StsAuth(
            credential.access_key_id, credential.access_key_secret, credential.security_token or ""
        )
        bucket = oss2.Bucket(auth, server.endpoint, BUCKET)
        bucket.create_bucket()
        server.subscribe(BUCKET, ["oss:ObjectCreated:*", "oss:ObjectRemoved:*"], on_event)
        console.print(f"[bold]local OSS[/] at {server.endpoint}, bucket [cyan]{BUCKET}[/]")

        tagging = {"x-oss-tagging": "team=media&stage=raw"}
        bucket.put_object("incoming/photo 1+2.jpg", b"jpeg bytes", headers=tagging)
        bucket.copy_object(
            BUCKET,
            "incoming/photo 1+2.jpg",
            "archive/photo.jpg",
            headers={"x-oss-tagging-directive": "REPLACE", "x-oss-tagging": "stage=archived"},
        )
        bucket.append_object("logs/app.log", 0, b"line 1\n", headers={"x-oss-tagging": "kind=log"})
        bucket.append_object("logs/app.log", 7, b"line 2\n")
        upload = bucket.init_multipart_upload("video/clip.mp4", headers={"x-oss-tagging": "kind=video"})
        part = bucket.upload_part("video/clip.mp4", upload.upload_id, 1, b"x" * 1024)
        bucket.complete_multipart_upload(
            "video/clip.mp4", upload.upload_id, [oss2.models.PartInfo(1, part.etag)]
        )
        bucket.put_symlink("incoming/photo 1+2.jpg", "latest.jpg", headers={"x-oss-tagging": "kind=link"})
        form = signed_form(credential, "browser/${filename}")
        requests.post(
            f"{server.endpoint}/{BUCKET}/",
            data=form,
            files={"file": ("upload.png", b"png", "image/png")},
            timeout=30,
        ).raise_for_status()
        rule = oss2.models.TaggingRule()
        rule.add("stage", "archived")
        rule.add("reviewed", "yes")
        bucket.put_object_tagging("archive/photo.jpg", oss2.models.Tagging(rule))
        server.notifier.drain()

        objects = Table(title="objects and their tags (read back through oss2)")
        for column in ("key", "type", "size", "tags"):
            objects.add_column(column)
        for info in oss2.ObjectIterator(bucket):
            objects.add_row(info.key, info.type, str(info.size), _tags(bucket, info.key))
        console.print(objects)

        table = Table(title="OSS trigger events published (PutObjectTagging publishes none)")
        for column in ("eventName", "key", "size", "deltaSize"):
            table.add_column(column)
        for record in events:
            obj = record["oss"]["object"]  # type: ignore[index]
            table.add_row(str(record["eventName"]), obj["key"], str(obj["size"]), str(obj["deltaSize"]))
        console.print(table)

        counts = Table(title="requests served, by OSS API")
        counts.add_column("API")
        counts.add_column("requests", justify="right")
        for api, count in sorted(server.conditions.requests.items()):
            counts.add_row(api, str(count))
        console.print(counts)
