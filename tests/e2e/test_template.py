"""template.yml agrees with the code it deploys: handlers resolve in their CodeUri, every environment
variable the code reads is declared, the RAM policy covers exactly the OSS calls made, and triggers are
explicit."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from localcloud.fc import load_handler

ROOT = Path(__file__).parents[2]
TEMPLATE = yaml.safe_load((ROOT / "template.yml").read_text())
# oss2 Bucket methods the deployed code calls -> the RAM action that authorises each.
RAM_ACTION_OF = {
    "head_object": "oss:GetObject",
    "get_object_tagging": "oss:GetObjectTagging",
    "put_object_tagging": "oss:PutObjectTagging",
    "delete_object_tagging": "oss:DeleteObjectTagging",
    "list_objects": "oss:ListObjects",
    "list_objects_v2": "oss:ListObjects",
    "get_object": "oss:GetObject",
    "put_object": "oss:PutObject",
}


def functions() -> dict[str, dict[str, Any]]:
    service = TEMPLATE["Resources"]["oss-autotag"]
    return {
        name: body
        for name, body in service.items()
        if isinstance(body, dict) and body.get("Type") == "Aliyun::Serverless::Function"
    }


def deployed_sources() -> str:
    return "\n".join(p.read_text() for p in (ROOT / "functions").rglob("*.py"))


def test_template_header() -> None:
    assert TEMPLATE["ROSTemplateFormatVersion"] == "2015-09-01"
    assert TEMPLATE["Transform"] == "Aliyun::Serverless-2018-04-03"
    assert functions()


@pytest.mark.parametrize("name", list(functions()))
def test_handlers_and_initializers_resolve(name: str) -> None:
    properties = functions()[name]["Properties"]
    code_uri = ROOT / properties["CodeUri"]
    assert callable(load_handler(code_uri, properties["Handler"]))
    if "Initializer" in properties:
        assert callable(load_handler(code_uri, properties["Initializer"]))
    assert properties["Runtime"] == "python3.10"
    assert properties["Timeout"] >= 10


def test_every_environment_variable_read_is_declared() -> None:
    read = set(re.findall(r"os\.environ\.get\(\s*\"(AUTOTAG_[A-Z_]+)\"", deployed_sources()))
    for properties in (f["Properties"] for f in functions().values()):
        assert read <= set(properties.get("EnvironmentVariables", {})), read - set(
            properties["EnvironmentVariables"]
        )


def test_policy_grants_exactly_the_oss_calls_made() -> None:
    calls = set(re.findall(r"\.bucket\.([a-z_]+)\(", deployed_sources()))
    needed = {RAM_ACTION_OF[call] for call in calls}
    statements = TEMPLATE["Resources"]["oss-autotag"]["Properties"]["Policies"][0]["Statement"]
    granted = {a for s in statements for a in s["Action"] if a.startswith("oss:")}
    assert granted == needed
    for statement in statements:
        assert all("*:*:*" not in r and r != "*" for r in statement["Resource"])  # scoped, never everything


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
