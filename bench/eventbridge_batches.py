"""Tag on upload under a burst: invocations per object, handler wall time per object and OSS requests per
object, for the native OSS trigger against EventBridge delivery (one CloudEvent per invocation, and
batches of 1, 10 and 100 from a queue), in one run.

Each way runs template.yml with that delivery chosen (as docs/tag-on-upload.md says: the native trigger
deleted, the EventBridge trigger and rule enabled) in the local FC, under the function's role, against a
local OSS in its own process (so its work does not share this interpreter's lock) that answers every
request after `--latency-ms` (a same-region OSS round trip), its notifications delivered here over HTTP.
A burst of `--objects` untagged uploads lands at once from 16 threads; the figures count every
invocation FC made and every request the function sent."""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import oss2
import requests
from rich.console import Console
from rich.table import Table

from localcloud.fc import DeadLetterStore, LocalFC, load_template, role_credentials
from localcloud.fc.runtime import DONE, InvocationRecord
from localcloud.fc.variants import delivery_variant
from localcloud.oss import DEFAULT_CREDENTIALS
from localcloud.oss.process import spawn

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "autotag-demo"  # what template.yml's triggers and patterns name
TAGGER_APIS = ("HeadObject", "GetObjectTagging", "PutObjectTagging")
WAYS: dict[str, dict[str, Any]] = {
    "native OSS trigger": {"delivery": "native"},
    "EventBridge, one CloudEvent": {"delivery": "eventbridge"},
    "EventBridge batch of 1": {"delivery": "batched", "count": 1, "seconds": 2.0},
    "EventBridge batch of 10": {"delivery": "batched", "count": 10, "seconds": 2.0},
    "EventBridge batch of 100": {"delivery": "batched", "count": 100, "seconds": 2.0},
}


class SpawnedOSS:
    """A local OSS in another process, as the local FC wires it: its admin API subscribes an HTTP sink
    here, which hands each notification to the subscriber."""

    def __init__(self, credentials: list[str]) -> None:
        self.process, self.endpoint, token = spawn(*credentials)
        self.headers = {"Authorization": f"Bearer {token}"}
        self.targets: dict[str, Callable[[bytes], None]] = {}
        self.notifier = self
        spawned = self

        class Sink(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                payload = self.rfile.read(int(self.headers["Content-Length"]))
                spawned.targets[self.path.strip("/")](payload)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
        threading.Thread(target=self.sink.serve_forever, daemon=True).start()

    def admin(self, method: str, route: str, body: object = None) -> Any:
        answer = requests.request(
            method, f"{self.endpoint}/_admin/{route}", json=body, headers=self.headers, timeout=600
        )
        return answer.json() if answer.content else None

    def add_credentials(self, credentials: object) -> None:
        """The roles' credentials were given at the start."""

    def subscribe(
        self,
        bucket: str,
        events: list[str],
        target: Callable[[bytes], None],
        prefix: str = "",
        suffix: str = "",
    ) -> Any:
        name = uuid.uuid4().hex
        self.targets[name] = target
        url = f"http://127.0.0.1:{self.sink.server_address[1]}/{name}"
        body = {"bucket": bucket, "events": events, "url": url, "prefix": prefix, "suffix": suffix}
        return type("Subscription", (), {"id": self.admin("POST", "subscriptions", body)["id"]})

    def unsubscribe(self, subscription: str) -> None:
        self.admin("DELETE", f"subscriptions/{subscription}")

    def drain(self, timeout: float) -> bool:
        return bool(self.admin("POST", "drain", {"timeout": timeout})["drained"])

    def close(self) -> None:
        self.sink.shutdown()
        self.process.terminate()
        self.process.wait(10)


def run_way(oss: SpawnedOSS, template: Path, objects: int, latency_ms: float) -> dict[str, float]:
    bucket = oss2.Bucket(oss2.StsAuth(*_sts()), oss.endpoint, BUCKET)
    bucket.create_bucket()
    fc = LocalFC(
        load_template(template),
        environment={"AUTOTAG_OSS_ENDPOINT": oss.endpoint},
        dead_letters=DeadLetterStore(),
        retry_base_seconds=0.05,
    )
    handled: list[InvocationRecord] = []
    fc.observers.append(lambda record: handled.append(record) if record.kind == DONE else None)
    run = uuid.uuid4().hex[:8]
    with fc:
        fc.wire_oss(oss)
        oss.admin("PUT", "conditions", {"latency_ms": latency_ms})
        oss.admin("POST", "stats/reset")
        started = time.monotonic()
        with ThreadPoolExecutor(16) as uploaders:
            list(uploaders.map(lambda n: bucket.put_object(f"burst/{run}/{n:05d}.jpg", b"x"), range(objects)))
        assert oss.drain(600) and fc.drain(600)
        elapsed = time.monotonic() - started
        counts = oss.admin("GET", "stats")["requests"]
        oss.admin("PUT", "conditions", {"latency_ms": 0})
    failed = [r for r in fc.results if not r.ok]
    assert not failed, failed[0].error_message
    tagged = sum(1 for n in range(objects) if "autotag" in _tags(bucket, f"burst/{run}/{n:05d}.jpg"))
    assert tagged == objects, f"{tagged} of {objects} tagged"
    uploads = [r for r in handled if r.function == "tag-on-upload"]
    return {
        "invocations": len(uploads),
        "invocations per object": len(uploads) / objects,
        "handler wall ms per object": 1000 * sum(r.seconds for r in uploads) / objects,
        "requests per object": sum(counts.get(api, 0) for api in TAGGER_APIS) / objects,
        "burst to last tag s": elapsed,
    }


def _tags(bucket: oss2.Bucket, key: str) -> dict[str, str]:
    return dict(bucket.get_object_tagging(key).tag_set.tagging_rule)


def _sts() -> tuple[str, str, str]:
    sts = DEFAULT_CREDENTIALS[1]
    return sts.access_key_id, sts.access_key_secret, sts.security_token or ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, default=1000, help="uploads in the burst")
    parser.add_argument("--latency-ms", type=float, default=5.0, help="the local OSS's answer delay")
    args = parser.parse_args()
    roles = [
        f"{c.access_key_id}:{c.access_key_secret}:{c.security_token}"
        for c in role_credentials(load_template(ROOT / "template.yml").roles.values())
    ]
    sts = ":".join(_sts())
    table = Table(
        title=f"tag on upload: a burst of {args.objects} untagged uploads, OSS latency {args.latency_ms:g} ms"
    )
    columns = (
        "invocations",
        "invocations per object",
        "handler wall ms per object",
        "requests per object",
        "burst to last tag s",
    )
    table.add_column("delivery")
    for column in columns:
        table.add_column(column, justify="right")
    oss = SpawnedOSS([sts, *roles])
    try:
        folder = tempfile.mkdtemp()
        for name, way in WAYS.items():
            figures = run_way(
                oss,
                delivery_variant(ROOT / "template.yml", ROOT / "functions", Path(folder), **way),
                args.objects,
                args.latency_ms,
            )
            table.add_row(
                name,
                f"{figures['invocations']:.0f}",
                f"{figures['invocations per object']:.3f}",
                f"{figures['handler wall ms per object']:.2f}",
                f"{figures['requests per object']:.2f}",
                f"{figures['burst to last tag s']:.1f}",
            )
    finally:
        oss.close()
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
