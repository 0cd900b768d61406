"""The console `autotag local up` serves on 127.0.0.1: server-rendered pages over the local cloud, for a
browser. Today: Buckets (objects by prefix, an object's tags with their owner, its metadata, its plan, and
"Tag again") and Invocations (a live list, and each one's event, result and log lines).

It reads what it shows only as any other client would: OSS through oss2 over HTTP, the functions through
the FC API, and the invocation log `autotag local up` writes (docs/console.md). It imports nothing of the
local cloud's code (tests/test_layers.py checks it)."""

from .server import Console, ConsoleConfig

__all__ = ["Console", "ConsoleConfig"]
