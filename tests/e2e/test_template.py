"""template.yml agrees with the code it deploys: handlers resolve in their CodeUri, every environment
variable the code reads is declared, the RAM policy covers exactly the OSS calls made, and triggers are
explicit."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from deployer import calls as deployer_calls

from autotag.sweep.request import parse_sweep_payload
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
    # a backfill report too large for one PutObject (the same action, on the state prefix)
    "init_multipart_upload": (("oss:PutObject",), "state"),
    "upload_part": (("oss:PutObject",), "state"),
    "complete_multipart_upload": (("oss:PutObject",), "state"),
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
    read = set(re.findall(r"os\.environ\.get\(\s*\"(AUTOTAG_[A-Z_]+)\"", source))
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
            elif scope == "state":  # the only objects the sweep writes or deletes are its own state
                assert all(r.endswith(f"/{state_prefix}*") for r in resources), resources
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
