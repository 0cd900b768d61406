"""template.yml's backfill flows: declared as ROS declares CloudFlow flows (ALIYUN::FNF::Flow with Name,
Definition and RoleArn), each definition one the local CloudFlow runs, each flow's processor invoking the
backfill function, and their role one of their own that trusts only CloudFlow. What the template parser
refuses in a flow or its role, it names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flowspec.definition import parse_definition
from localcloud.fc import load_template
from localcloud.fc.template import TemplateError

ROOT = Path(__file__).parents[2]
FLOWS = {
    "oss-autotag-backfill-prefix": "OSS_OBJECTS",
    "oss-autotag-backfill-inventory": "OSS_INVENTORY_FILES",
    "oss-autotag-backfill-manifest": "OSS_CSV",
}


def test_each_backfill_flow_is_a_distributed_map_invoking_the_backfill_function() -> None:
    template = load_template(ROOT / "template.yml")
    assert {flow.name for flow in template.flows} == set(FLOWS)
    for flow in template.flows:
        parsed = parse_definition(flow.definition)
        spec = parsed.body.states[parsed.body.start_at].map
        assert spec is not None and spec.reader is not None and spec.dynamic
        assert spec.reader.source_type == FLOWS[flow.name]
        assert spec.batcher is not None and spec.batcher.max_bytes is not None
        assert spec.batcher.max_bytes <= 32 * 1024  # room in the 64 KiB output for each item's outcome
        (task,) = spec.processor.states.values()
        assert task.task is not None
        assert (task.task.service, task.task.function) == ("oss-autotag-backfill", "tag-backfill")
        assert task.task.invocation_type == "Sync"
        assert flow.role in template.flow_roles
        assert flow.role not in template.roles  # no function runs as the flows' role


def test_the_flows_role_grants_reading_sources_writing_reports_and_invoking_the_function_only() -> None:
    template = load_template(ROOT / "template.yml")
    (role,) = template.flow_roles.values()
    granted = {
        (action, resource)
        for policy in role.policies
        for statement in policy.statements
        for action in statement.actions
        for resource in statement.resources
    }
    assert granted == {
        ("oss:ListObjects", "acs:oss:*:*:autotag-demo"),
        ("oss:GetObject", "acs:oss:*:*:autotag-demo-inventory/*"),
        ("oss:GetObject", "acs:oss:*:*:autotag-demo-state/backfill/manifests/*"),
        ("oss:PutObject", "acs:oss:*:*:autotag-demo-state/backfill/reports/*"),
        ("fc:InvokeFunction", "acs:fc:*:*:services/oss-autotag-backfill/functions/tag-backfill"),
    }


def variant(tmp_path: Path, change: Any) -> Path:
    document = yaml.safe_load((ROOT / "template.yml").read_text())
    change(document["Resources"])
    (tmp_path / "functions").symlink_to(ROOT / "functions")
    path = tmp_path / "template.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _literal_role(resources: dict[str, Any]) -> None:
    resources["oss-autotag-backfill-prefix"]["Properties"]["RoleArn"] = "acs:ram::1:role/anything"


def _trusts_ecs(resources: dict[str, Any]) -> None:
    statement = resources["oss-autotag-backfill-flow-role"]["Properties"]["AssumeRolePolicyDocument"]
    statement["Statement"][0]["Principal"]["Service"] = ["ecs.aliyuncs.com"]


def _unknown_action(resources: dict[str, Any]) -> None:
    policy = resources["oss-autotag-backfill-flow-role"]["Properties"]["Policies"][0]
    policy["PolicyDocument"]["Statement"][0]["Action"] = ["oss:NoSuchAction"]


def _no_definition(resources: dict[str, Any]) -> None:
    del resources["oss-autotag-backfill-manifest"]["Properties"]["Definition"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_literal_role, "Resources.oss-autotag-backfill-prefix.Properties.RoleArn: must be `Fn::GetAtt"),
        (_trusts_ecs, "AssumeRolePolicyDocument: the role must trust only fnf.aliyuncs.com"),
        (_unknown_action, "Resources.oss-autotag-backfill-flow-role.Properties.Policies"),
        (_no_definition, "Resources.oss-autotag-backfill-manifest.Properties: `Definition` is required"),
    ],
)
def test_a_flow_or_role_the_local_cloud_cannot_enforce_is_refused_by_name(
    tmp_path: Path, change: Any, named: str
) -> None:
    with pytest.raises(TemplateError) as raised:
        load_template(variant(tmp_path, change))
    assert named in str(raised.value)
