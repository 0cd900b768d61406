"""template.yml agrees with the code it deploys: handlers resolve in their CodeUri, every environment
variable the code reads is declared, the RAM policy covers exactly the OSS calls made, and triggers are
explicit."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from autotag.sweep.request import parse_sweep_payload
from deployer import calls as deployer_calls
from localcloud.fc import load_handler

ROOT = Path(__file__).parents[2]
CODE = ROOT / "functions"
TEMPLATE = yaml.safe_load((ROOT / "template.yml").read_text())
# Calls the deployed code makes -> the RAM actions that authorise each (with the version action OSS
# checks when the call names a versionId, as the code's calls on versioned buckets do), and whether it
# acts on the bucket itself (`acs:oss:*:*:<bucket>`) or on objects (`acs:oss:*:*:<bucket>/<key pattern>`).
# tests/e2e/test_least_privilege.py proves the same both ways against the enforcing local cloud.
RAM_ACTION_OF = {
    "head_object": (("oss:GetObject", "oss:GetObjectVersion"), "object"),
    "get_object": (("oss:GetObject",), "object"),  # the sweep's own state objects: never a version
    "get_object_tagging": (("oss:GetObjectTagging", "oss:GetObjectVersionTagging"), "object"),
    "put_object_tagging": (("oss:PutObjectTagging", "oss:PutObjectVersionTagging"), "object"),
    "delete_object_tagging": (("oss:DeleteObjectTagging", "oss:DeleteObjectVersionTagging"), "object"),
    "put_object": (("oss:PutObject",), "state"),
    "delete_object": (("oss:DeleteObject",), "state"),
    "list_objects": (("oss:ListObjects",), "bucket"),
    "list_object_versions": (("oss:ListObjectVersions",), "bucket"),
    "get_bucket_versioning": (("oss:GetBucketVersioning",), "bucket"),
    "invoke_function": (("fc:InvokeFunction",), "function"),
}


def services() -> dict[str, dict[str, Any]]:
    return {n: b for n, b in TEMPLATE["Resources"].items() if b.get("Type") == "Aliyun::Serverless::Service"}


def functions() -> dict[str, dict[str, Any]]:
    return {
        name: body
        for service in services().values()
        for name, body in service.items()
        if isinstance(body, dict) and body.get("Type") == "Aliyun::Serverless::Function"
    }


def reachable_sources(handler_module: str) -> str:
    return deployer_calls.reachable_sources(CODE, handler_module)


def service_calls(service: dict[str, Any]) -> set[str]:
    calls: set[str] = set()
    for body in service.values():
        if isinstance(body, dict) and body.get("Type") == "Aliyun::Serverless::Function":
            calls |= deployer_calls.calls_made(CODE, body["Properties"]["Handler"])
    return calls


def test_template_header() -> None:
    assert TEMPLATE["ROSTemplateFormatVersion"] == "2015-09-01"
    assert TEMPLATE["Transform"] == "Aliyun::Serverless-2018-04-03"
    assert set(functions()) == {"tag-on-upload", "tag-expiry", "tag-backfill"}


@pytest.mark.parametrize("name", list(functions()))
def test_handlers_and_initializers_resolve(name: str) -> None:
    properties = functions()[name]["Properties"]
    code_uri = ROOT / properties["CodeUri"]
    assert callable(load_handler(code_uri, properties["Handler"]))
    if "Initializer" in properties:
        assert callable(load_handler(code_uri, properties["Initializer"]))
    assert properties["Runtime"] == "python3.12"  # python3.10 reached its end of life in October 2026
    assert properties["Timeout"] >= 10


@pytest.mark.parametrize("name", list(functions()))
def test_every_environment_variable_read_is_declared(name: str) -> None:
    properties = functions()[name]["Properties"]
    source = reachable_sources(properties["Handler"].rpartition(".")[0])
    read = set(re.findall(r"(?:os\.environ\.get|_seconds|_count|_buckets)\(\s*\"(AUTOTAG_[A-Z_]+)\"", source))
    assert read, "the handler reads its settings from the environment"
    assert read <= set(properties.get("EnvironmentVariables", {})), read - set(
        properties["EnvironmentVariables"]
    )


def test_the_upload_path_never_imports_fc2_or_the_sweep() -> None:
    source = reachable_sources("tag_on_upload")
    assert "import fc2" not in source and "class StateStore" not in source


@pytest.mark.parametrize("name", list(services()))
def test_each_policy_grants_exactly_the_calls_its_functions_make(name: str) -> None:
    service = services()[name]
    calls = service_calls(service)
    assert calls, name
    needed = {action for call in calls if call in RAM_ACTION_OF for action in RAM_ACTION_OF[call][0]}
    assert calls <= set(RAM_ACTION_OF), calls - set(RAM_ACTION_OF)
    statements = service["Properties"]["Policies"][0]["Statement"]
    granted = {a for s in statements for a in s["Action"] if not a.startswith("mns:")}
    assert granted == needed
    state_prefix = functions_in(service)[0]["EnvironmentVariables"].get("AUTOTAG_STATE_PREFIX", "")
    for statement in statements:
        resources = statement["Resource"]
        assert all("*:*:*" not in r and r != "*" for r in resources)  # scoped, never everything
        for action in statement["Action"]:
            scope = next((s for actions, s in RAM_ACTION_OF.values() if action in actions), None)
            if scope == "bucket":
                assert all(r.startswith("acs:oss:") and "/" not in r.split(":")[-1] for r in resources)
            elif scope == "object" and "Tagging" in action:
                assert all(r.endswith("/*") for r in resources)
            elif scope == "state":  # the only objects the sweep writes or deletes are its own state, and
                # the only ones the backfill flows' Report step writes are their completion reports
                mine = (f"/{state_prefix}*", "/backfill/reports/*/report/*")
                assert all(r.endswith(mine) for r in resources), resources
            elif scope == "function":
                own = [n for n in service if isinstance(service[n], dict)]
                assert all(any(r.endswith(f"/functions/{f}") for f in own) for r in resources)


def functions_in(service: dict[str, Any]) -> list[dict[str, Any]]:
    return [b["Properties"] for b in service.values() if isinstance(b, dict) and "Properties" in b]


def test_timer_trigger_uses_fc_cron_and_a_valid_payload() -> None:
    (trigger,) = functions()["tag-expiry"]["Events"].values()
    assert trigger["Type"] == "Timer"
    cron = trigger["Properties"]["CronExpression"]
    fields = re.sub(r"^CRON_TZ=\S+ ", "", cron).split()
    assert cron.startswith("@every ") or len(fields) == 6
    request = parse_sweep_payload(trigger["Properties"]["Payload"])
    assert request.buckets == ("autotag-demo",)
    bucket_in_policy = "acs:oss:*:*:autotag-demo"
    statements = services()["oss-autotag-expiry"]["Properties"]["Policies"][0]["Statement"]
    assert any(bucket_in_policy in s["Resource"] for s in statements)


def test_oss_trigger_lists_events_explicitly() -> None:
    for function in functions().values():
        for trigger in function.get("Events", {}).values():
            if trigger["Type"] == "OSS":
                events = trigger["Properties"]["Events"]
                assert "oss:ObjectCreated:*" not in events
                assert not any("UploadPart" in e or "InitiateMultipartUpload" in e for e in events)
                assert set(trigger["Properties"]["Filter"]["Key"]) == {"Prefix", "Suffix"}


def test_async_failures_have_a_destination() -> None:
    for name, function in functions().items():
        if any(t["Type"] == "OSS" for t in function.get("Events", {}).values()):
            config = function["Properties"]["AsyncConfiguration"]
            assert config["Destination"]["OnFailure"], name
            assert config["MaxAsyncRetryAttempts"] == 3


def eventbridge_triggers() -> dict[str, dict[str, Any]]:
    return {
        name: trigger["Properties"]
        for function in functions().values()
        for name, trigger in function.get("Events", {}).items()
        if trigger["Type"] == "EventBridge"
    }


def native_trigger() -> dict[str, Any]:
    (trigger,) = (
        t["Properties"]
        for f in functions().values()
        for t in f.get("Events", {}).values()
        if t["Type"] == "OSS"
    )
    return trigger


def test_eventbridge_alternatives_are_off_until_chosen() -> None:
    """Enabled beside the native trigger, they would tag every object twice; `autotag deploy` does not
    create them while disabled (their queue and rule may not exist in the account)."""
    triggers = eventbridge_triggers()
    assert set(triggers) == {"oss-events-via-eventbridge", "oss-events-batched"}
    assert all(t["TriggerEnable"] is False for t in triggers.values())
    (rule,) = (b for b in TEMPLATE["Resources"].values() if b.get("Type") == "ALIYUN::EventBridge::Rule")
    assert rule["Properties"]["Status"] == "DISABLE"


def test_eventbridge_patterns_pick_what_the_native_trigger_does_and_replicas() -> None:
    """The same object-creating events (never a multipart upload's parts), in the same bucket; and the
    objects cross-region replication creates, which the native trigger cannot receive."""
    import json

    native = native_trigger()
    driven = json.loads(eventbridge_triggers()["oss-events-via-eventbridge"]["EventRuleFilterPattern"])
    (rule,) = (b for b in TEMPLATE["Resources"].values() if b.get("Type") == "ALIYUN::EventBridge::Rule")
    for pattern in (driven, rule["Properties"]["FilterPattern"]):
        assert pattern["source"] == ["acs.oss"]
        assert set(pattern["type"]) == {
            *native["Events"],
            "oss:ObjectReplication:ObjectCreated",
            "oss:ObjectReplication:ObjectModified",
        }
        ((prefix,),) = ([c["prefix"] for c in pattern["subject"]],)
        assert prefix.endswith(f":{native['BucketName']}/")


def test_the_batched_trigger_reads_the_queue_the_rule_fills() -> None:
    batched = eventbridge_triggers()["oss-events-batched"]
    (rule,) = (b for b in TEMPLATE["Resources"].values() if b.get("Type") == "ALIYUN::EventBridge::Rule")
    (target,) = rule["Properties"]["Targets"]
    queue = batched["EventSourceConfig"]["EventSourceParameters"]["SourceMNSParameters"]["QueueName"]
    assert target["Type"] == "acs.mns.queue" and target["Endpoint"].endswith(f":queues/{queue}")
    window = batched["RunOptions"]["BatchWindow"]
    assert 10 <= window["CountBasedWindow"] <= 10_000 and 0 < window["TimeBasedWindow"] <= 15
    assert batched["RunOptions"]["Mode"] == batched["EventSinkConfig"]["DeliveryOption"]["Mode"]
    assert batched["RunOptions"]["DeadLetterQueue"]["Arn"]  # what still fails is kept, not dropped


def test_the_fan_out_names_the_service_its_function_is_in() -> None:
    """The python3.12 runtime's context has no service: AUTOTAG_FC_SERVICE says which one."""
    for service_name, service in services().items():
        for body in service.values():
            if isinstance(body, dict) and "AUTOTAG_FANOUT" in body.get("Properties", {}).get(
                "EnvironmentVariables", {}
            ):
                assert body["Properties"]["EnvironmentVariables"]["AUTOTAG_FC_SERVICE"] == service_name


def test_every_function_acts_on_the_bucket_the_template_watches() -> None:
    """AUTOTAG_BUCKETS is set in each function, to the bucket the native trigger watches: deployed as it
    ships (after replacing autotag-demo everywhere), no function acts on another bucket, and none fails
    for want of the setting."""
    for name, body in functions().items():
        listed = body["Properties"]["EnvironmentVariables"].get("AUTOTAG_BUCKETS")
        assert listed == native_trigger()["BucketName"], name
