"""The definition checker (pure): what the local CloudFlow runs is parsed, anything else is refused in one
line naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowspec.definition import DefinitionError, parse_definition

ARN = "acs:fc:cn-hangzhou:1234567890123456:services/svc/functions/fn"


def task(**fields: Any) -> dict[str, Any]:
    return {
        "Name": "T",
        "Type": "Task",
        "Action": "FC:InvokeFunction",
        "TaskMode": "RequestComplete",
        "Parameters": {"resourceArn": ARN, "body.$": "$Input"},
        "End": True,
        **fields,
    }


def flow(*states: dict[str, Any], start: str = "") -> str:
    return json.dumps(
        {
            "Type": "StateMachine",
            "SpecVersion": "v1",
            "StartAt": start or states[0]["Name"],
            "States": list(states),
        }
    )


def map_state(**fields: Any) -> dict[str, Any]:
    return {
        "Name": "M",
        "Type": "Map",
        "ProcessorConfig": {"ExecutionMode": "Express"},
        "ItemReader": {"SourceType": "OSS_OBJECTS", "SourceParameters": {"Bucket": "b", "Prefix": "p/"}},
        "Processor": {"StartAt": "T", "States": [task()]},
        "End": True,
        **fields,
    }


def refused(text: str) -> str:
    with pytest.raises(DefinitionError) as raised:
        parse_definition(text)
    return str(raised.value)


def test_a_distributed_map_flow_is_understood() -> None:
    parsed = parse_definition(
        flow(
            {"Name": "P", "Type": "Pass", "Next": "M"},
            map_state(
                ItemBatcher={"MaxItemsPerBatch": 10, "BatchInput": {"run.$": "$Context.Execution.Name"}},
                ItemConstructor={"key.$": "$Item.Key", "fixed": 1},
                ResultWriter={"Parameters": {"Bucket": "b", "Prefix": "out/"}},
                MaxConcurrency=5,
                ToleratedFailurePercentage=10,
            ),
        )
    )
    spec = parsed.body.states["M"].map
    assert spec is not None and spec.reader is not None
    assert (spec.reader.source_type, spec.reader.prefix, spec.max_concurrency) == ("OSS_OBJECTS", "p/", 5)
    assert spec.batcher is not None and spec.batcher.max_items == 10
    target = spec.processor.states["T"].task
    assert target is not None and (target.service, target.function, target.qualifier) == (
        "svc",
        "fn",
        "LATEST",
    )


def test_yaml_definitions_as_the_docs_write_them_are_read() -> None:
    text = """
Type: StateMachine
Name: my-flow
SpecVersion: v1
StartAt: Call
States:
  - Name: Call
    Type: Task
    Action: FC:InvokeFunction
    TaskMode: RequestComplete
    Parameters:
      resourceArn: acs:fc:::services/svc.prod/functions/fn
      invocationType: Sync
      body:
        name.$: $Input.name
    Retry:
      - Errors: [FC.ResourceThrottled]
        Description: throttled
        MaxAttempts: 3
        IntervalSeconds: 1
        BackoffRate: 2
        MaxBackoffSeconds: 3
    Catch:
      - Errors: [FnF.ALL]
        Description: any
        Next: Failed
    End: true
  - Name: Failed
    Type: Fail
    Code: Broken
"""
    parsed = parse_definition(text)
    call = parsed.body.states["Call"]
    assert parsed.name == "my-flow" and call.task is not None and call.task.qualifier == "prod"
    assert [call.retry[0].delay(n) for n in (1, 2, 3)] == [1, 2, 3]
    assert call.catch[0].next == "Failed"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"Type": "Machine"}, "Type: 'Machine' is not supported (supported: StateMachine)"),
        ({"SpecVersion": "v2"}, "SpecVersion: 'v2' is not supported (supported: v1)"),
        ({"StartAt": "nowhere"}, "StartAt: 'nowhere' names no state"),
        ({"Extra": 1}, "Extra: is not supported by the local CloudFlow"),
    ],
)
def test_the_top_level_is_checked(change: dict[str, Any], message: str) -> None:
    document = json.loads(flow(task()))
    document.update(change)
    assert message in refused(json.dumps(document))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"ItemReader": {"SourceType": "FOO", "SourceParameters": {}}},
            "States[0].ItemReader.SourceType: 'FOO' is not supported "
            "(supported: OSS_CSV, OSS_INVENTORY_FILES, OSS_JSON_LIST, OSS_OBJECTS)",
        ),
        (
            {"ProcessorConfig": {"ExecutionMode": "Inline"}},
            "States[0].ProcessorConfig.ExecutionMode: 'Inline'",
        ),
        ({"MaxItems": 3}, "States[0].MaxItems: is not supported by the local CloudFlow"),
        ({"MaxConcurrency": 0}, "States[0].MaxConcurrency: 0 is not an integer from 1 to 10000"),
        (
            {"ToleratedFailurePercentage": 101},
            "States[0].ToleratedFailurePercentage: 101 is not from 0 to 100",
        ),
        ({"ItemBatcher": {}}, "States[0].ItemBatcher: give MaxItemsPerBatch, MaxInputBytesPerBatch or both"),
        (
            {"ItemConstructor": {"k.$": "$Output"}},
            "States[0].ItemConstructor.k.$: $Output cannot be used here",
        ),
        (
            {"ItemConstructor": {"k.$": "states.Format('{}', $Item)"}},
            "is not an expression the local CloudFlow",
        ),
        (
            {"ResultWriter": {"Parameters": {"Prefix": "x/"}}},
            "States[0].ResultWriter.Parameters.Bucket: must be",
        ),
        (
            {"Processor": {"StartAt": "T", "States": [task(Action="OSS:GetObject")]}},
            "States[0].Processor.States[0].Action: 'OSS:GetObject' is not supported "
            "(supported: FC:InvokeFunction)",
        ),
        (
            {"Processor": {"StartAt": "T", "States": [task(TaskMode="WaitForCustomCallback")]}},
            "States[0].Processor.States[0].TaskMode: 'WaitForCustomCallback' is not supported",
        ),
    ],
)
def test_map_fields_are_checked(fields: dict[str, Any], message: str) -> None:
    assert message in refused(flow(map_state(**fields)))


def test_task_fields_are_checked() -> None:
    bad_arn = task(Parameters={"resourceArn": "acs:fc:cn-hangzhou:1:functions/fn"})
    assert (
        "States[0].Parameters.resourceArn: 'acs:fc:cn-hangzhou:1:functions/fn' is not a function ARN"
        in refused(flow(bad_arn))
    )
    no_end = task()
    del no_end["End"]
    assert "States[0]: a Task state needs exactly one of Next and End: true" in refused(flow(no_end))
    retry = task(
        Retry=[{"Errors": ["FnF.ALL"], "Description": "r", "MaxAttempts": 1, "IntervalSeconds": 90000}]
    )
    assert "States[0].Retry[0].IntervalSeconds: 90000 is not an integer from 0 to 86400" in refused(
        flow(retry)
    )
    assert "States[0].Next: 'nowhere' names no state" in refused(flow(task(End=None, Next="nowhere")))


def test_a_definition_that_is_not_yaml_is_refused_in_one_line() -> None:
    message = refused("Type: [unclosed")
    assert message.startswith("Definition: not YAML or JSON") and "\n" not in message


def test_reader_writer_and_limits_may_be_expressions_over_the_maps_input() -> None:
    from flowspec.definition import resolve_map

    state = map_state(
        ItemReader={
            "SourceType": "OSS_CSV",
            "SourceParameters": {"Bucket.$": "$Input.bucket", "ObjectName.$": "$Input.source.manifest"},
        },
        ResultWriter={"Parameters": {"Bucket.$": "$Input.report.bucket", "Prefix": "reports/"}},
        **{"MaxConcurrency.$": "$Input.concurrency", "ToleratedFailurePercentage.$": "$Input.tolerated"},
    )
    spec = parse_definition(flow(state)).body.states["M"].map
    assert spec is not None and spec.dynamic
    given = {
        "bucket": "b",
        "source": {"manifest": "m.csv"},
        "report": {"bucket": "r"},
        "concurrency": 4,
        "tolerated": 5,
    }
    resolved = resolve_map(spec, {"Input": given, "Context": {}}, "States[M]")
    assert resolved.reader is not None
    assert (resolved.reader.bucket, resolved.reader.object_name) == ("b", "m.csv")
    assert (resolved.result_bucket, resolved.result_prefix) == ("r", "reports/")
    assert (resolved.max_concurrency, resolved.tolerated_percentage) == (4, 5.0)
    with pytest.raises(DefinitionError, match=r"States\[M\].MaxConcurrency: 0 is not an integer"):
        resolve_map(spec, {"Input": {**given, "concurrency": 0}, "Context": {}}, "States[M]")
    with pytest.raises(DefinitionError, match=r"SourceParameters.Bucket: must be a non-empty string"):
        resolve_map(spec, {"Input": {**given, "bucket": None}, "Context": {}}, "States[M]")


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"MaxConcurrency": 2, "MaxConcurrency.$": "$Input.c"}, "MaxConcurrency: give MaxConcurrency or"),
        ({"MaxConcurrency.$": "$Item.c"}, "MaxConcurrency.$: $Item cannot be used here"),
        (
            {
                "ItemReader": {
                    "SourceType": "OSS_OBJECTS",
                    "SourceParameters": {"Bucket": "b", "Bucket.$": "$Input"},
                }
            },
            "SourceParameters.Bucket: give Bucket or Bucket.$, not both",
        ),
        (
            {"ItemReader": {"SourceType": "OSS_OBJECTS", "SourceParameters": {"Bucket.$": "$Output.b"}}},
            "SourceParameters.Bucket.$: $Output cannot be used here",
        ),
    ],
)
def test_expressions_in_map_fields_are_checked_at_create(fields: dict[str, Any], error: str) -> None:
    assert error in refused(flow(map_state(**fields)))
