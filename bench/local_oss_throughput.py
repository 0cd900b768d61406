"""Requests per second the local OSS sustains for HeadObject and PutObjectTagging.

The server runs in its own process (`autotag local oss`), so client and server do not share a GIL; clients
are real oss2 Buckets on threads (one connection pool each). Every run is a fixed number of requests."""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import oss2
from rich.console import Console
from rich.table import Table

from localcloud.oss.process import spawn

ACCESS_KEY_ID, ACCESS_KEY_SECRET = "bench-key", "bench-secret"


def measure(call: Callable[[oss2.Bucket, int], object], buckets: list[oss2.Bucket], requests: int) -> float:
    """Requests per second for `requests` calls spread over one thread per client."""
    per_client = requests // len(buckets)

    def run(client: oss2.Bucket) -> None:
        for i in range(per_client):
            call(client, i)

    started = time.perf_counter()
    with ThreadPoolExecutor(len(buckets)) as pool:
        list(pool.map(run, buckets))
    return per_client * len(buckets) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="requests per measurement")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    server, endpoint, _admin_token = spawn(f"{ACCESS_KEY_ID}:{ACCESS_KEY_SECRET}")
    try:
        auth = oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET)
        setup = oss2.Bucket(auth, endpoint, "bench")
        setup.create_bucket()
        keys = [f"objects/{i:05d}.jpg" for i in range(64)]
        for key in keys:
            setup.put_object(key, b"x" * 1024)
        rule = oss2.models.TaggingRule()
        for name, value in {"team": "media", "stage": "raw", "autotag": "ext=jpg"}.items():
            rule.add(name, value)
        tagging = oss2.models.Tagging(rule)
        operations: dict[str, Callable[[oss2.Bucket, int], object]] = {
            "HeadObject": lambda b, i: b.head_object(keys[i % len(keys)]),
            "PutObjectTagging": lambda b, i: b.put_object_tagging(keys[i % len(keys)], tagging),
        }
        table = Table(title=f"local OSS throughput ({args.requests} requests per cell, oss2 V1 clients)")
        table.add_column("API")
        for clients in args.clients:
            table.add_column(f"{clients} client(s), req/s", justify="right")
        for api, call in operations.items():
            measure(call, [oss2.Bucket(auth, endpoint, "bench")], 200)  # warm up
            rates = []
            for clients in args.clients:
                buckets = [oss2.Bucket(auth, endpoint, "bench") for _ in range(clients)]
                rates.append(f"{measure(call, buckets, args.requests):,.0f}")
            table.add_row(api, *rates)
        console = Console()
        console.print(table)
        console.print(
            f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}"
        )
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
