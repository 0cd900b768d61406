"""Fan-out: one timer invocation splits the key space into shards and hands each to its own asynchronous
invocation of the same function, so FC runs the shards in parallel (each with its own checkpoint and
lease). `FunctionComputeDispatcher` invokes through aliyun-fc2, imported only here; `InProcessDispatcher`
runs the same shard events on local threads (the CLI, and tests before the local FC)."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Protocol

from ..bucket_gateway import BucketGateway
from ..sdk_logs import drop_root_records_from
from ..settings import Credentials
from ..timestamps import format_timestamp
from .request import ShardRange, SweepRequest, TimerEvent
from .sealing import NotBelieved, Place, seal, unseal
from .shards import plan_shards

MAX_BOUNDARY_PAGES = 10  # top-level entries considered for boundaries: up to 10,000


class Dispatcher(Protocol):
    def dispatch(self, events: list[bytes]) -> list[Any]: ...


def shard_events(event: TimerEvent, bucket: str, shards: list[ShardRange]) -> list[bytes]:
    """The timer events for each shard: same trigger time (the pass clock), one bucket, one range."""
    events = []
    for shard in shards:
        request = replace(event.request, buckets=(bucket,), shards=1, shard=shard, inventory=None)
        events.append(
            json.dumps(
                {
                    "triggerTime": format_timestamp(event.trigger_time),
                    "triggerName": event.trigger_name,
                    "payload": json.dumps(request.as_payload(), ensure_ascii=False),
                },
                ensure_ascii=False,
            ).encode()
        )
    return events


def listing_boundaries(gateway: BucketGateway, prefix: str, state_prefix: str) -> list[str]:
    """The top-level entries under `prefix` (keys and folders of one delimiter listing), the state's left
    out."""
    children = gateway.list_children(prefix, max_pages=MAX_BOUNDARY_PAGES)
    return [c for c in children if not c.startswith(state_prefix)]


def load_or_plan_shards(
    request: SweepRequest,
    plan_key: str,
    state: BucketGateway,
    boundaries: Callable[[], list[str]],
    secrets: tuple[str, ...] = (),
    warnings: list[str] | None = None,
) -> list[ShardRange]:
    """The shard plan stored (in the `state` bucket, sealed) for this prefix, shard count and inventory, or
    a new one cut at `boundaries()` (a listing's top-level entries, or keys from the inventory). Keeping it
    stable keeps each shard's checkpoint valid from one run to the next; a plan made another way (other
    shards, an inventory given or taken away) is made again, and so is one the system did not seal there
    (a plan steers which keys are swept: one with a gap would leave keys unswept), which is reported in
    `warnings`."""
    place = Place(state.bucket.bucket_name, plan_key)
    found = state.read_stamped(plan_key)
    if found is not None:
        try:
            document = unseal(found.data, place, found.last_modified, secrets)
        except NotBelieved as error:
            if warnings is not None:
                warnings.append(f"{plan_key}: not believed ({error}); a new plan replaces it")
        else:
            if document.get("count") == request.shards and document.get("inventory") == request.inventory:
                return [
                    ShardRange(i, len(document["ranges"]), s, e)
                    for i, (s, e) in enumerate(document["ranges"])
                ]
    shards = plan_shards(boundaries(), request.shards)
    plan: dict[str, Any] = {"count": request.shards, "ranges": [[s.start_at, s.end_before] for s in shards]}
    if request.inventory is not None:
        plan["inventory"] = request.inventory
    written = state.oss_now() or datetime.now(timezone.utc)
    if not state.write_object(plan_key, seal(plan, place, written, secrets), create_only=found is None):
        return load_or_plan_shards(
            request, plan_key, state, boundaries, secrets, warnings
        )  # another run was first
    return shards


def quiet_fc2() -> None:
    """aliyun-fc2's error lines carry the request's signature and security token: they never reach logs."""
    import fc2

    drop_root_records_from(fc2.__file__)


class FanOutError(RuntimeError):
    """FC refused or could not take a shard's invocation; the message names the call, never credentials."""


class FunctionComputeDispatcher:
    """Asynchronous invocations of this same function through aliyun-fc2 (`x-fc-invocation-type: Async`)."""

    def __init__(self, endpoint: str, credentials: Credentials, service: str, function: str) -> None:
        import fc2  # only the sweep's coordinator needs it; the upload path never imports it

        quiet_fc2()
        self.endpoint = endpoint
        self.client = fc2.Client(
            endpoint=endpoint,
            accessKeyID=credentials.access_key_id,
            accessKeySecret=credentials.access_key_secret,
            securityToken=credentials.security_token,
        )
        self.service, self.function = service, function

    def dispatch(self, events: list[bytes]) -> list[Any]:
        import fc2
        import requests

        receipts = []
        for number, event in enumerate(events, start=1):
            what = (
                f"the async invocation of {self.service}/{self.function} for shard {number} of {len(events)}"
            )
            try:
                response = self.client.invoke_function(
                    self.service, self.function, payload=event, headers={"x-fc-invocation-type": "Async"}
                )
            except fc2.fc_exceptions.FcError as error:
                raise FanOutError(
                    f"FC refused {what}: {error.err_code or 'error'} (HTTP {error.status_code}, "
                    f"request id {error.request_id or 'none'})"
                ) from None
            except requests.RequestException as error:
                raise FanOutError(f"{what} could not reach {self.endpoint}: {type(error).__name__}") from None
            receipts.append({"requestId": response.headers.get("x-fc-request-id", "")})
        return receipts


class InProcessDispatcher:
    """Runs shard events through `invoke` on local threads and returns what each returned."""

    def __init__(self, invoke: Callable[[bytes], Any], parallel: int = 4) -> None:
        self.invoke, self.parallel = invoke, parallel

    def dispatch(self, events: list[bytes]) -> list[Any]:
        with ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="shard") as pool:
            return list(pool.map(self.invoke, events))
