"""The local CloudFlow's execution engine: runs executions of flows on threads.

An execution walks its states from StartAt: Pass passes its (constructed) input on, Task invokes a
function through FC's API as the flow's role (Retry, then Catch, on the error's code), Succeed and Fail
end it, and a distributed Map reads its items from OSS, cuts them into batches and runs the Processor's
states for each batch on up to MaxConcurrency threads (capped locally by `max_threads`). Failed items are
counted against ToleratedFailureCount / ToleratedFailurePercentage (none tolerated when neither is set);
past the tolerance the Map fails, its cause naming the first failed items. At the end, failed or not, the
ResultWriter's files go to OSS (so that a Catch can report on the finished batches).

Everything an execution needs to go on is in the Store: its record (status, the state it is in and that
state's input) and one file per finished batch, holding the batch's input. `resume` restarts an execution
that was running when the process stopped, from the state it was in; a Map reads its items again and
skips each item a finished batch held (by its value, so objects added or deleted meanwhile shift
nothing), counting it with that batch's outcome, and batches the rest anew; a batch in flight at the stop
runs again. A state before it is never run again, the state it was in may be (once more, at least once).
StopExecution marks the record Stopped, and its running map run Aborted, at once; the threads notice
within moments and end, abandoning what they were doing: no batch starts after it."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from cloudformats.batching import Batch, batch_input, batch_items, batches, item_identity
from cloudformats.items import MAX_INFLATED_BYTES, Item, SourceError, read_items
from flowspec.definition import DefinitionError, MapSpec, State, States, parse_definition, resolve_map
from flowspec.expressions import construct, evaluate

from .gateways import Gateways, ServiceError
from .results import result_files
from .store import Store

log = logging.getLogger("localcloud.cloudflow")
MAX_EVENTS = 5000  # CloudFlow: at most 5,000 events in one execution's history
MAX_STATE_IO_BYTES = 64 * 1024  # a state's input and output: at most 64 KiB
SAVE_EVERY_SECONDS = 0.5  # how often a map run's counts are written while it runs


MAP_RUN_FAILED = "FnF.MapRunFailed"
FIRST_FAILURES = 3  # how many failed items a Map's failure names
MAX_FAILURE_TEXT = 500  # each cut to this many characters: an execution's Cause stays short


def _with_first_failures(cause: str, finished: dict[int, dict[str, Any]], unreadable: list[Item]) -> str:
    """`cause` followed by the first items that could not be read and the first failed batches."""
    named = [f"{i.where}: {i.error}" for i in unreadable[:FIRST_FAILURES]]
    named += [
        f"batch {number}: {result.get('Error', '')}: {result.get('Cause', '')}"
        for number, result in sorted(finished.items())
        if result.get("Status") == "FAILED"
    ][: FIRST_FAILURES - len(named)]
    if not named:
        return cause
    return f"{cause}; first: " + "; ".join(text[:MAX_FAILURE_TEXT] for text in named)


def now_text() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Stopped(Exception):
    pass


class StateFailed(Exception):
    def __init__(self, code: str, cause: str) -> None:
        super().__init__(f"{code}: {cause}")
        self.code, self.cause = code, cause


@dataclass
class _Run:
    record: dict[str, Any]
    gateways: Gateways
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_save: float = 0.0


def _matches(errors: tuple[str, ...], code: str) -> bool:
    return "FnF.ALL" in errors or code in errors


def _io_checked(value: Any, what: str) -> Any:
    if len(json.dumps(value, ensure_ascii=False).encode()) > MAX_STATE_IO_BYTES:
        raise StateFailed("FnF.DataSizeLimitExceeded", f"{what} is over {MAX_STATE_IO_BYTES} bytes")
    return value


class Engine:
    def __init__(
        self,
        store: Store,
        gateways: Callable[[str], Gateways],
        max_threads: int = 8,
        time_scale: float = 1.0,
        max_inflated_bytes: int = MAX_INFLATED_BYTES,
    ) -> None:
        self.store = store
        self.gateways = gateways  # role ARN -> what calls OSS and FC as that role
        self.max_threads = max_threads
        self.time_scale = time_scale  # Retry intervals are multiplied by this (tests shorten them)
        self.max_inflated_bytes = max_inflated_bytes  # what one inventory data file may inflate to
        self.runs: dict[tuple[str, str], _Run] = {}
        self.lock = threading.Lock()

    # -- the execution's life ------------------------------------------------------------------------
    def start(self, record: dict[str, Any]) -> None:
        """Run the execution `record` (Status Running, CurrentState set) on a thread of its own."""
        run = _Run(record, self.gateways(record.get("RoleArn", "")))
        with self.lock:
            self.runs[(record["FlowName"], record["Name"])] = run
        self._save(run, force=True)
        threading.Thread(
            target=self._run, args=(run,), daemon=True, name=f"cloudflow {record['Name']}"
        ).start()

    def stop(self, flow: str, name: str, error: str, cause: str) -> dict[str, Any] | None:
        with self.lock:
            run = self.runs.get((flow, name))
        if run is None:
            return None
        with run.lock:
            if run.record["Status"] == "Running":
                moment = now_text()
                run.record.update(Status="Stopped", StoppedTime=moment, Error=error, Cause=cause)
                self._event(run, "ExecutionStopped", "", {"Error": error, "Cause": cause})
                for map_run in run.record.get("MapRuns", {}).values():  # DescribeMapRun's status for it
                    if map_run.get("Status") == "Running":
                        map_run.update(Status="Aborted", StoppedTime=moment)
        run.stop.set()
        self._save(run, force=True)
        return run.record

    def _finish(self, run: _Run, status: str, **fields: Any) -> None:
        with run.lock:
            if run.record["Status"] != "Running":  # stopped meanwhile: that stands
                return
            run.record.update(Status=status, StoppedTime=now_text(), **fields)
            self._event(run, f"Execution{status}", "", fields)
        self._save(run, force=True)

    def _save(self, run: _Run, force: bool = False) -> None:
        moment = time.monotonic()
        if force or moment - run.last_save >= SAVE_EVERY_SECONDS:
            run.last_save = moment
            with run.lock:
                snapshot = json.loads(json.dumps(run.record))
            self.store.save_execution(snapshot)

    def _event(self, run: _Run, kind: str, step: str, detail: Any) -> None:
        events = run.record.setdefault("Events", [])
        if len(events) < MAX_EVENTS:
            events.append(
                {
                    "EventId": len(events) + 1,
                    "Type": kind,
                    "StepName": step,
                    "Time": now_text(),
                    "EventDetail": json.dumps(detail, ensure_ascii=False)[:65536],
                }
            )

    def _run(self, run: _Run) -> None:
        record = run.record
        try:
            flow = parse_definition(record["FlowDefinition"])
            output = self._states(run, flow.body, record["CurrentInput"], top=True)
            self._finish(run, "Succeeded", Output=json.dumps(output, ensure_ascii=False))
        except Stopped:
            pass
        except StateFailed as failure:
            self._finish(run, "Failed", Error=failure.code, Cause=failure.cause)
        except Exception as error:  # a bug must still end the execution, and say so
            log.exception("local CloudFlow execution %s failed", record["Name"])
            self._finish(run, "Failed", Error="FnF.InternalError", Cause=repr(error))

    # -- states --------------------------------------------------------------------------------------
    def _context(self, run: _Run, state: str, state_input: Any) -> dict[str, Any]:
        record = run.record
        return {
            "Execution": {
                "Name": record["Name"],
                "Input": record["ParsedInput"],
                "RoleArn": record.get("RoleArn", ""),
            },
            "Flow": {"Name": record["FlowName"]},
            "Current": {"Name": state, "Input": state_input},
        }

    def _states(self, run: _Run, states: States, given: Any, top: bool = False, scope: str = "") -> Any:
        name = run.record["CurrentState"] if top else states.start_at
        current = given
        while True:
            if run.stop.is_set():
                raise Stopped
            state = states.states[name]
            if top:
                with run.lock:
                    run.record.update(CurrentState=name, CurrentInput=current)
                    self._event(run, "StepEntered", name, {"Input": current})
                self._save(run, force=True)
            context = self._context(run, name, current)
            scope_values = {"Input": current, "Context": context}
            state_input = (
                construct(state.input_constructor, scope_values) if state.input_constructor else current
            )
            try:
                output = self._state(run, state, _io_checked(state_input, f"{name}'s input"), context, scope)
            except StateFailed as failure:
                rule = next((c for c in state.catch if _matches(c.errors, failure.code)), None)
                if rule is None:
                    raise
                error = {"Error": failure.code, "Cause": failure.cause}
                context["Current"]["Error"] = {"Code": failure.code, "Detail": failure.cause}
                output = (
                    construct(rule.output_constructor, {"Input": state_input, "Context": context})
                    if (rule.output_constructor)
                    else error
                )
                if top:
                    self._event(run, "StepFailed", name, error)
                name, current = rule.next, output
                continue
            if state.output_constructor:
                output = construct(
                    state.output_constructor, {**scope_values, "Input": state_input, "Output": output}
                )
            output = _io_checked(output, f"{name}'s output")
            if top:
                with run.lock:
                    self._event(run, "StepExited", name, {"Output": output})
            if state.type == "Succeed" or state.end:
                return output
            name, current = state.next, output

    def _state(self, run: _Run, state: State, given: Any, context: dict[str, Any], scope: str) -> Any:
        if state.type == "Fail":
            raise StateFailed(state.fail_code or "FnF.Failed", state.fail_detail)
        if state.type in ("Pass", "Succeed"):
            return given
        if state.task is not None:
            return self._task(run, state, given, context)
        assert state.map is not None
        return self._map(run, state, state.map, given, context, scope)

    def _task(self, run: _Run, state: State, given: Any, context: dict[str, Any]) -> Any:
        task = state.task
        assert task is not None
        scope = {"Input": given, "Context": context}
        if task.body_expression:
            body = evaluate(task.body_expression, scope)
        elif isinstance(task.body, dict):
            body = construct(task.body, scope)
        else:
            body = task.body
        payload = body.encode() if isinstance(body, str) else json.dumps(body, ensure_ascii=False).encode()
        attempts: dict[int, int] = {}
        while True:
            try:
                return run.gateways.invoke(
                    task.service, task.function, task.qualifier, payload, task.invocation_type == "Async"
                )
            except ServiceError as error:
                failure = StateFailed(error.code, error.message)
            position = next((i for i, r in enumerate(state.retry) if _matches(r.errors, failure.code)), None)
            if position is None or attempts.get(position, 0) >= state.retry[position].max_attempts:
                raise failure
            attempts[position] = attempts.get(position, 0) + 1
            context["Current"]["RetryCount"] = sum(attempts.values())
            if run.stop.wait(state.retry[position].delay(attempts[position]) * self.time_scale):
                raise Stopped

    # -- distributed Map -----------------------------------------------------------------------------
    def _items(self, run: _Run, spec: MapSpec, given: Any, context: dict[str, Any]) -> Iterator[Item]:
        try:
            yield from read_items(
                spec, run.gateways, {"Input": given, "Context": context}, self.max_inflated_bytes
            )
        except SourceError as error:
            raise StateFailed(error.code, error.message) from None

    def _map(
        self, run: _Run, state: State, spec: MapSpec, given: Any, context: dict[str, Any], scope: str
    ) -> Any:
        record = run.record
        try:
            spec = resolve_map(spec, {"Input": given, "Context": context}, f"States[{state.name}]")
        except DefinitionError as error:  # an expression's value is not what the field takes
            raise StateFailed("FnF.InvalidArgument", str(error)) from None
        folder = self.store.map_run_dir(record["FlowName"], record["Name"], scope + state.name)
        finished = self.store.finished_batches(folder)
        counts = {"Total": 0, "Succeed": 0, "Failed": 0, "Running": 0, "Pending": 0, "Aborted": 0}
        map_run: dict[str, Any] = {
            "MapRunName": state.name,
            "StartedTime": now_text(),
            "Status": "Running",
            "ItemCounts": counts,
        }
        map_run.update(
            Concurrency=spec.max_concurrency or self.max_threads,
            ToleratedFailedCount=spec.tolerated_count or 0,
            ToleratedFailedPercentage=spec.tolerated_percentage or 0,
        )
        with run.lock:
            record.setdefault("MapRuns", {})[state.name] = map_run
        unreadable: list[Item] = []
        reading_done = False
        # What a run before a restart finished, by item: the listing read again may have shifted (objects
        # added or deleted meanwhile), so batch numbers do not say which items they held; their inputs do.
        earlier: dict[str, list[str]] = {}
        for number in sorted(finished):
            result = finished[number]
            for value in batch_items(result.get("Input"), spec.batcher):
                earlier.setdefault(item_identity(value), []).append(result["Status"])
        first_number = max(finished) + 1 if finished else 0

        def account(result: dict[str, Any]) -> None:
            size = result["Items"]
            with run.lock:
                counts["Succeed" if result["Status"] == "SUCCEEDED" else "Failed"] += size
            self._save(run)
            self._check_tolerance(spec, counts, reading_done)

        def unfinished(items: Iterator[Item]) -> Iterator[Item]:
            """The items no earlier run finished; each one it did is counted with its batch's outcome."""
            for item in items:
                statuses = earlier.get(item_identity(item.value)) if item.ok and earlier else None
                if statuses:
                    with run.lock:
                        counts["Total"] += 1
                    account({"Status": statuses.pop(), "Items": 1})
                    continue
                yield item

        def work(batch: Batch, value: Any) -> dict[str, Any]:
            try:
                output = self._states(run, spec.processor, value)
                result = {"Status": "SUCCEEDED", "Input": value, "Output": output}
            except StateFailed as failure:
                result = {"Status": "FAILED", "Input": value, "Error": failure.code, "Cause": failure.cause}
            result.update(Items=len(batch.items), Batch=batch.number)
            if run.stop.is_set():
                raise Stopped
            self.store.save_batch(folder, batch.number, result)
            return result

        threads = max(1, min(spec.max_concurrency or self.max_threads, self.max_threads))
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"cloudflow {record['Name']}")
        running: set[Future[dict[str, Any]]] = set()
        sizes: dict[Future[dict[str, Any]], int] = {}  # a batch's items, by its future
        try:
            batch_extra = None
            if spec.batcher is not None and spec.batcher.batch_input:
                batch_extra = construct(spec.batcher.batch_input, {"Input": given, "Context": context})
            items = unfinished(self._items(run, spec, given, context))
            for piece in batches(items, spec.batcher, first_number):
                if run.stop.is_set():
                    raise Stopped
                if isinstance(piece, Item):
                    unreadable.append(piece)
                    with run.lock:
                        counts["Total"] += 1
                    account({"Status": "FAILED", "Items": 1})
                    continue
                with run.lock:
                    counts["Total"] += len(piece.items)
                while len(running) >= threads:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    running -= done
                    for future in done:
                        del sizes[future]  # only the batches in flight are kept
                        account(future.result())
                future = pool.submit(work, piece, batch_input(piece, spec.batcher, batch_extra))
                running.add(future)
                sizes[future] = len(piece.items)
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    del sizes[future]
                    account(future.result())
            reading_done = True
            self._check_tolerance(spec, counts, reading_done)
            output: dict[str, Any] = {"MapRunName": state.name, "ItemCounts": dict(counts)}
            if spec.result_bucket:
                output["ResultWriterDetails"] = self._write_results(run, spec, state.name, folder, unreadable)
            with run.lock:
                map_run.update(Status="Succeeded", StoppedTime=now_text())
            return output
        except StateFailed as failure:
            with run.lock:
                map_run.update(Status="Failed", StoppedTime=now_text())
            if failure.code != MAP_RUN_FAILED:
                raise
            # Past the tolerance the results written so far still go to OSS (a local choice,
            # docs/cloudflow.md) so that a Catch can report on them, and the failure names the first
            # items that failed: an operator learns what to fix without reading counts.
            if spec.result_bucket:
                try:
                    self._write_results(run, spec, state.name, folder, unreadable)
                except StateFailed as unwritten:
                    log.warning("%s: results not written: %s", record["Name"], unwritten.cause)
            raise StateFailed(
                failure.code,
                _with_first_failures(failure.cause, self.store.finished_batches(folder), unreadable),
            ) from None
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            with run.lock:
                if record["Status"] == "Stopped":  # every item read and not finished is aborted
                    counts["Aborted"] = counts["Total"] - counts["Succeed"] - counts["Failed"]
                else:
                    counts["Aborted"] += sum(sizes[f] for f in running if not f.done())
            self._save(run, force=True)

    def _check_tolerance(self, spec: MapSpec, counts: dict[str, int], reading_done: bool) -> None:
        failed, total = counts["Failed"], counts["Total"]
        if spec.tolerated_count is None and spec.tolerated_percentage is None:
            over = failed > 0
        else:
            over = spec.tolerated_count is not None and failed > spec.tolerated_count
            if spec.tolerated_percentage is not None and reading_done and total:
                over = over or failed * 100 > spec.tolerated_percentage * total
            if spec.tolerated_count is None and not reading_done:
                over = False
        if over:
            raise StateFailed(
                MAP_RUN_FAILED, f"{failed} of {total} items failed, more than the Map tolerates"
            )

    def _write_results(
        self, run: _Run, spec: MapSpec, name: str, folder: Any, unreadable: list[Item]
    ) -> dict[str, Any]:
        results = [r for _, r in sorted(self.store.finished_batches(folder).items())]
        results += [
            {
                "Status": "FAILED",
                "Input": None,
                "Error": "FnF.ItemReaderFailed",
                "Cause": f"{i.where}: {i.error}",
            }
            for i in unreadable
        ]
        base = f"{spec.result_prefix}{run.record['Name']}/{name}/"
        files = result_files(base, results)
        try:
            for key, data in files:
                run.gateways.write(spec.result_bucket, key, data)
        except ServiceError as error:
            raise StateFailed(error.code, error.message) from None
        return {"Bucket": spec.result_bucket, "ManifestKey": files[-1][0]}
