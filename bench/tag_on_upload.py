"""Tag on upload: OSS requests per created object for each upload path, handler CPU per event, and the
cold import time of the upload handler.

The local OSS runs in its own process; its notifications are captured here and each event is passed to
the handler (loaded from its CodeUri, FC-shaped STS context). Request counts come from the server."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import oss2
import requests
from rich.console import Console
from rich.table import Table

from localcloud.fc import fc_context, load_handler
from localcloud.oss.postform import signed_form
from localcloud.oss.process import spawn

ROOT = Path(__file__).resolve().parents[1]
CODE_URI = ROOT / "functions"
STS = ("STS.bench", "bench-secret", "bench-token")
TAGGER_APIS = ("HeadObject", "GetObjectTagging", "PutObjectTagging")
NOT_YET_OBJECTS = {"InitiateMultipartUpload", "UploadPart", "UploadPartCopy"}


class EventSink:
    """An HTTP endpoint the local OSS delivers events to."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                sink.payloads.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"


def upload_paths(bucket: oss2.Bucket, endpoint: str, workdir: Path) -> dict[str, Callable[[int, bool], None]]:
    def put(i: int, tagged: bool) -> None:
        bucket.put_object(f"put/{i}.jpg", b"x" * 100, headers={"x-oss-tagging": "team=a"} if tagged else None)

    def post(i: int, tagged: bool) -> None:
        form = signed_form(oss2_credential(), f"post/{i}.png")
        requests.post(
            f"{endpoint}/{bucket.bucket_name}/", data=form, files={"file": ("f.png", b"png")}, timeout=30
        ).raise_for_status()

    def copy(i: int, tagged: bool) -> None:
        bucket.put_object(f"src/{i}.mp4", b"v", headers={"x-oss-tagging": "team=a"} if tagged else None)
        bucket.copy_object(bucket.bucket_name, f"src/{i}.mp4", f"copy/{i}.mp4")

    def append(i: int, tagged: bool) -> None:
        bucket.append_object(
            f"append/{i}.log", 0, b"a", headers={"x-oss-tagging": "team=a"} if tagged else None
        )
        bucket.append_object(f"append/{i}.log", 1, b"b")

    def multipart(i: int, tagged: bool) -> None:
        key = f"multipart/{i}.zip"
        upload = bucket.init_multipart_upload(key, headers={"x-oss-tagging": "team=a"} if tagged else None)
        parts = [
            oss2.models.PartInfo(n, bucket.upload_part(key, upload.upload_id, n, b"p" * 100).etag)
            for n in (1, 2)
        ]
        bucket.complete_multipart_upload(key, upload.upload_id, parts)

    def symlink(i: int, tagged: bool) -> None:
        bucket.put_symlink(
            "put/0.jpg", f"link/{i}.txt", headers={"x-oss-tagging": "team=a"} if tagged else None
        )

    return {
        "PutObject": put,
        "PostObject": post,
        "CopyObject": copy,
        "AppendObject (2 appends)": append,
        "CompleteMultipartUpload (2 parts)": multipart,
        "PutSymlink": symlink,
    }


def oss2_credential():  # type: ignore[no-untyped-def]
    from localcloud.oss import Credential

    return Credential(*STS)


ADMIN_HEADERS: dict[str, str] = {}  # the spawned server's admin token, set once it is ready


def admin(endpoint: str, method: str, path: str, body: object = None) -> dict:  # type: ignore[type-arg]
    return requests.request(  # type: ignore[no-any-return]
        method, f"{endpoint}/_admin/{path}", json=body, headers=ADMIN_HEADERS, timeout=60
    ).json()


def cold_import_seconds(runs: int = 5) -> tuple[float, bool]:
    """Median time for a fresh interpreter to import the upload handler, minus a bare interpreter start."""
    code = (
        "import sys, time; t = time.perf_counter(); import tag_on_upload; "
        "print(time.perf_counter() - t, 'fc2' in sys.modules)"
    )
    samples, fc2_loaded = [], False
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=CODE_URI,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(CODE_URI)},
        ).stdout.split()
        samples.append(float(out[0]))
        fc2_loaded |= out[1] == "True"
    return statistics.median(samples), fc2_loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=50, help="objects per upload path and variant")
    args = parser.parse_args()
    server, endpoint, admin_token = spawn(":".join(STS))
    ADMIN_HEADERS["Authorization"] = f"Bearer {admin_token}"
    sink = EventSink()
    console = Console(width=170)
    try:
        os.environ["AUTOTAG_OSS_ENDPOINT"] = endpoint
        os.environ["AUTOTAG_BUCKETS"] = "bench-upload"  # the one bucket this function acts on
        handler = load_handler(CODE_URI, "tag_on_upload.handler")
        context = fc_context()
        context = context.__class__(
            **{**context.__dict__, "credentials": context.credentials.__class__(*STS)}
        )
        bucket = oss2.Bucket(oss2.StsAuth(*STS), endpoint, "bench-upload")
        bucket.create_bucket()
        admin(
            endpoint,
            "POST",
            "subscriptions",
            {"bucket": "bench-upload", "events": ["oss:ObjectCreated:*"], "url": sink.url},
        )
        table = Table(
            title=f"tag on upload: OSS requests per created object ({args.objects} objects per cell)"
        )
        for column in (
            "upload path",
            "uploader tags",
            "events",
            "tagger requests / object",
            "HEAD",
            "GET tagging",
            "PUT tagging",
            "replay requests / object",
            "handler CPU / event",
        ):
            table.add_column(column, justify="right" if column != "upload path" else "left")
        with tempfile.TemporaryDirectory() as workdir:
            for path, upload in upload_paths(bucket, endpoint, Path(workdir)).items():
                for tagged in (False, True):
                    sink.payloads.clear()
                    for i in range(args.objects):
                        upload(i + (args.objects if tagged else 0), tagged)
                    admin(endpoint, "POST", "drain", {})
                    payloads = list(sink.payloads)
                    created = {
                        record["oss"]["object"]["key"]
                        for payload in payloads
                        for record in json.loads(payload)["events"]
                        if record["eventName"].split(":")[1] not in NOT_YET_OBJECTS
                    }
                    admin(endpoint, "POST", "stats/reset")
                    cpu = time.process_time()
                    for payload in payloads:
                        handler(payload, context)
                    cpu_per_event = (time.process_time() - cpu) / len(payloads)
                    counts = admin(endpoint, "GET", "stats")["requests"]
                    admin(endpoint, "POST", "stats/reset")
                    for payload in payloads:  # duplicate delivery / replay
                        handler(payload, context)
                    replay = sum(admin(endpoint, "GET", "stats")["requests"].values())
                    objects = len(created)
                    per_object = sum(counts.get(api, 0) for api in TAGGER_APIS) / objects
                    table.add_row(
                        path,
                        "yes" if tagged else "no",
                        f"{len(payloads)} / {objects}",
                        f"{per_object:.2f}",
                        *(f"{counts.get(api, 0) / objects:.2f}" for api in TAGGER_APIS),
                        f"{replay / objects:.2f}",
                        f"{cpu_per_event * 1000:.2f} ms",
                    )
        console.print(table)
        seconds, fc2_loaded = cold_import_seconds()
        console.print(
            f"cold import of tag_on_upload: {seconds * 1000:.0f} ms (median of 5), fc2 imported: {fc2_loaded}"
        )
        console.print(json.dumps({"python": sys.version.split()[0], "objects": args.objects}))
    finally:
        server.terminate()
        server.wait(10)
        sink.server.shutdown()


if __name__ == "__main__":
    main()
