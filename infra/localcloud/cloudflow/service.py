"""The local CloudFlow's API actions (FnF 2019-03-15), on flows and executions: each takes the request's
parameters and returns the response document, or raises RpcError with CloudFlow's code for what is wrong.

Flows: CreateFlow, UpdateFlow, DescribeFlow, DeleteFlow, ListFlows. Executions: StartExecution,
DescribeExecution, StopExecution, ListExecutions, GetExecutionHistory, DescribeMapRun. A flow's RoleArn
must name a role the local cloud knows (its credentials are what the engine signs with). Flows and
executions are kept in the Store; `resume` restarts the executions that were running."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from flowspec.definition import NAME, DefinitionError, parse_definition

from .engine import MAX_STATE_IO_BYTES, Engine, now_text
from .signature import RpcError
from .store import Store

ACCOUNT = "1234567890123456"
_FLOW_FIELDS: tuple[str, ...] = ("Name", "Definition", "Description", "Type", "RoleArn", "ExecutionMode")
_FLOW_FIELDS += ("Id", "CreatedTime", "LastModifiedTime")
_EXECUTION_FIELDS: tuple[str, ...] = (
    "Name",
    "FlowName",
    "FlowDefinition",
    "Input",
    "Output",
    "Status",
    "StartedTime",
)
_EXECUTION_FIELDS += ("StoppedTime", "RoleArn")


def _invalid(message: str) -> RpcError:
    return RpcError(400, "InvalidArgument", message)


def _name(value: str, what: str) -> str:
    if not NAME.fullmatch(value or ""):
        raise _invalid(
            f"{what} {value[:80]!r} is not valid: 1 to 128 letters, digits, _ and -, a letter or _ first"
        )
    return value


def _limit(parameters: dict[str, str], default: int, most: int) -> int:
    text = parameters.get("Limit") or str(default)
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise _invalid(f"Limit {text!r} is not from 1 to {most}")
    return int(text)


class CloudFlowService:
    def __init__(self, store: Store, engine: Engine, known_roles: Callable[[], Iterable[str]]) -> None:
        self.store, self.engine, self.known_roles = store, engine, known_roles
        self.flows = {flow["Name"]: flow for flow in store.flows()}
        self.executions: dict[tuple[str, str], dict[str, Any]] = {
            (e["FlowName"], e["Name"]): e for e in store.executions()
        }
        self.lock = threading.RLock()

    def resume(self) -> int:
        running = [e for e in self.executions.values() if e["Status"] == "Running"]
        for record in running:
            self.engine.start(record)
            self.executions[(record["FlowName"], record["Name"])] = record
        return len(running)

    def handle(self, action: str, parameters: dict[str, str]) -> dict[str, Any]:
        handler = getattr(self, f"_{action}", None)
        if handler is None or not action.isalpha():
            raise RpcError(404, "InvalidAction.NotFound", f"Specified api is not found: {action[:80]!r}.")
        with self.lock:
            document: dict[str, Any] = handler(parameters)
        return document

    # -- flows ----------------------------------------------------------------------------------------
    def _flow(self, name: str) -> dict[str, Any]:
        flow = self.flows.get(name)
        if flow is None:
            raise RpcError(404, "FlowNotExists", f"Flow {name[:128]!r} does not exist.")
        return flow

    def _checked(self, parameters: dict[str, str], name: str) -> dict[str, Any]:
        definition = parameters.get("Definition", "")
        try:
            parsed = parse_definition(definition)
        except DefinitionError as error:
            raise _invalid(
                f"Definition: {error}" if not str(error).startswith("Definition") else str(error)
            ) from None
        if parsed.name and parsed.name != name:
            raise _invalid(f"Definition: Name {parsed.name!r} is not the flow's name {name!r}")
        if parameters.get("Type", "FDL") != "FDL":
            raise _invalid(f"Type {parameters.get('Type')!r} is not supported (supported: FDL)")
        mode = parameters.get("ExecutionMode") or "Standard"
        if mode not in ("Standard", "Express"):
            raise _invalid(f"ExecutionMode {mode!r} is not supported (supported: Express, Standard)")
        role = parameters.get("RoleArn", "")
        if role and role not in set(self.known_roles()):
            raise _invalid(f"RoleArn {role[:200]!r} names no role the local cloud has")
        return {
            "Definition": definition,
            "Description": parameters.get("Description", ""),
            "Type": "FDL",
            "RoleArn": role,
            "ExecutionMode": mode,
        }

    def _CreateFlow(self, parameters: dict[str, str]) -> dict[str, Any]:
        name = _name(parameters.get("Name", ""), "Name")
        if name in self.flows:
            raise RpcError(409, "FlowAlreadyExists", f"Flow {name!r} already exists.")
        moment = now_text()
        flow = {"Name": name, **self._checked(parameters, name), "Id": str(uuid.uuid4())}
        flow.update(CreatedTime=moment, LastModifiedTime=moment)
        self.flows[name] = flow
        self.store.save_flow(flow)
        return dict(flow)

    def _UpdateFlow(self, parameters: dict[str, str]) -> dict[str, Any]:
        flow = self._flow(parameters.get("Name", ""))
        merged = {**{k: str(flow[k]) for k in ("Definition", "Description", "RoleArn")}, **parameters}
        flow.update(self._checked(merged, flow["Name"]), LastModifiedTime=now_text())
        self.store.save_flow(flow)
        return dict(flow)

    def _DescribeFlow(self, parameters: dict[str, str]) -> dict[str, Any]:
        return {k: v for k, v in self._flow(parameters.get("Name", "")).items() if k in _FLOW_FIELDS}

    def _DeleteFlow(self, parameters: dict[str, str]) -> dict[str, Any]:
        name = self._flow(parameters.get("Name", ""))["Name"]
        if any(e["Status"] == "Running" for (f, _), e in self.executions.items() if f == name):
            raise RpcError(409, "FlowHasRunningExecutions", f"Flow {name!r} has running executions.")
        del self.flows[name]
        self.store.delete_flow(name)
        return {}

    def _ListFlows(self, parameters: dict[str, str]) -> dict[str, Any]:
        limit = _limit(parameters, 60, 1000)
        names = sorted(n for n in self.flows if n >= parameters.get("NextToken", ""))
        page: dict[str, Any] = {"Flows": [dict(self.flows[n]) for n in names[:limit]]}
        if len(names) > limit:
            page["NextToken"] = names[limit]
        return page

    # -- executions -----------------------------------------------------------------------------------
    def _execution(self, parameters: dict[str, str]) -> dict[str, Any]:
        flow = self._flow(parameters.get("FlowName", ""))["Name"]
        name = parameters.get("ExecutionName", "")
        record = self.executions.get((flow, name))
        if record is None:
            raise RpcError(
                404, "ExecutionNotExists", f"Execution {name[:128]!r} of flow {flow!r} does not exist."
            )
        return record

    @staticmethod
    def _shown(record: dict[str, Any]) -> dict[str, Any]:
        shown = {k: record[k] for k in _EXECUTION_FIELDS if record.get(k) not in (None, "")}
        if record["Status"] in ("Failed", "Stopped"):
            shown["Output"] = json.dumps({"Error": record.get("Error", ""), "Cause": record.get("Cause", "")})
        return shown

    def _StartExecution(self, parameters: dict[str, str]) -> dict[str, Any]:
        flow = self._flow(parameters.get("FlowName", ""))
        name = _name(parameters.get("ExecutionName") or f"_{uuid.uuid4().hex}", "ExecutionName")
        if (flow["Name"], name) in self.executions:
            raise RpcError(409, "ExecutionAlreadyExists", f"Execution {name!r} already exists.")
        text = parameters.get("Input") or "{}"
        if len(text.encode()) > MAX_STATE_IO_BYTES:
            raise _invalid(f"Input is {len(text.encode())} bytes; at most {MAX_STATE_IO_BYTES}")
        try:
            given = json.loads(text)
        except json.JSONDecodeError as error:
            raise _invalid(f"Input is not JSON: {error}") from None
        if not isinstance(given, dict):
            raise _invalid("Input must be a JSON object")
        start = parse_definition(flow["Definition"]).body.start_at
        record = {
            "FlowName": flow["Name"],
            "Name": name,
            "FlowDefinition": flow["Definition"],
            "RoleArn": flow["RoleArn"],
            "Input": text,
            "ParsedInput": given,
            "Status": "Running",
            "StartedTime": now_text(),
            "CurrentState": start,
            "CurrentInput": given,
            "Events": [],
        }
        self.executions[(flow["Name"], name)] = record
        self.engine.start(record)
        return self._shown(record)

    def _DescribeExecution(self, parameters: dict[str, str]) -> dict[str, Any]:
        return self._shown(self._execution(parameters))

    def _StopExecution(self, parameters: dict[str, str]) -> dict[str, Any]:
        record = self._execution(parameters)
        if record["Status"] != "Running":
            raise RpcError(
                400,
                "ExecutionAlreadyStopped" if record["Status"] == "Stopped" else "InvalidArgument",
                f"Execution {record['Name']!r} is {record['Status']}, not Running.",
            )
        error, cause = parameters.get("Error", ""), parameters.get("Cause", "")
        if len(error) > 128 or len(cause) > 4096:
            raise _invalid("Error is at most 128 characters and Cause at most 4,096")
        self.engine.stop(record["FlowName"], record["Name"], error, cause)
        return self._shown(record)

    def _ListExecutions(self, parameters: dict[str, str]) -> dict[str, Any]:
        flow = self._flow(parameters.get("FlowName", ""))["Name"]
        limit = _limit(parameters, 60, 99)
        prefix, status = parameters.get("ExecutionNamePrefix", ""), parameters.get("Status", "")
        names = sorted(
            n
            for (f, n), e in self.executions.items()
            if f == flow
            and n.startswith(prefix)
            and (not status or e["Status"] == status)
            and n >= parameters.get("NextToken", "")
        )
        page: dict[str, Any] = {
            "Executions": [self._shown(self.executions[(flow, n)]) for n in names[:limit]]
        }
        if len(names) > limit:
            page["NextToken"] = names[limit]
        return page

    def _GetExecutionHistory(self, parameters: dict[str, str]) -> dict[str, Any]:
        events = list(self._execution(parameters).get("Events", []))
        limit = _limit(parameters, 60, 1000)
        token = parameters.get("NextToken", "0")
        start = int(token) if token.isdigit() else 0
        page: dict[str, Any] = {"Events": events[start : start + limit]}
        if start + limit < len(events):
            page["NextToken"] = str(start + limit)
        return page

    def _DescribeMapRun(self, parameters: dict[str, str]) -> dict[str, Any]:
        record = self._execution(parameters)
        name = parameters.get("MapRunName", "")
        run = record.get("MapRuns", {}).get(name)
        if run is None:
            raise RpcError(404, "MapRunNotExists", f"Map run {name[:128]!r} does not exist.")
        return {"ExecutionName": record["Name"], **json.loads(json.dumps(run))}
