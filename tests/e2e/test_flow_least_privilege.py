"""The backfill flows' role is least privilege, enforced by the local cloud as the functions' roles are:
with the template's policy, a prefix, an inventory and a manifest execution (one of them with rules of its
own) all succeed, each writing its completion report; without any one statement, or any one resource of a
statement naming several, some execution fails; so too without any one of the backfill function's grants
for the flows (the result files, the report, an execution's rules). Run as deployed:
template.yml's flows in the local CloudFlow, its backfill function in the local FC behind the FC API, the
local OSS, each checking the flows' role's STS keys against the policy."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import oss2
import pytest
from alibabacloud_fnf20190315 import models
from conftest import LONG_TERM, ROOT, make_auth

from deployer.flows import cloudflow_client
from localcloud.cloudflow import LocalCloudFlow
from localcloud.fc import DeadLetterStore, LocalFC, load_template, role_credentials
from localcloud.fc.api import LocalFcApi
from localcloud.fc.template import Template
from localcloud.oss import LocalOSS
from localcloud.ram import Role
from localcloud.ram.policy import Policy

TEMPLATE = load_template(ROOT / "template.yml")
(ROLE,) = TEMPLATE.flow_roles.values()
# The backfill function's role: the statements the flows' Report step and an execution's own rules need.
FUNCTION_ROLE = next(r for r in TEMPLATE.roles.values() if "backfill" in r.arn)
FLOW_GRANTS = ("backfill/reports/", "backfill/rules/")
STATE, INVENTORY = "autotag-demo-state", "autotag-demo-inventory"


def without(role: Role, policy: int, statement: int, resource: str | None) -> Role:
    statements = list(role.policies[policy].statements)
    if resource is None:
        del statements[statement]
    else:
        kept = tuple(r for r in statements[statement].resources if r != resource)
        statements[statement] = replace(statements[statement], resources=kept)
    policies = list(role.policies)
    policies[policy] = Policy(tuple(statements))
    return Role(role.arn, tuple(policies))


def mutations(role: Role) -> dict[str, Role]:
    found: dict[str, Role] = {}
    for p, policy in enumerate(role.policies):
        for s, statement in enumerate(policy.statements):
            label = f"{statement.actions[0]} statement {s}"
            found[f"{label} removed"] = without(role, p, s, None)
            if len(statement.resources) > 1:
                for resource in statement.resources:
                    found[f"{label} without {resource}"] = without(role, p, s, resource)
    return found


MUTATIONS = mutations(ROLE)
FUNCTION_MUTATIONS = {
    f"{statement.actions[0]} on {statement.resources[0]} removed": without(FUNCTION_ROLE, p, s, None)
    for p, policy in enumerate(FUNCTION_ROLE.policies)
    for s, statement in enumerate(policy.statements)
    if any(grant in r for r in statement.resources for grant in FLOW_GRANTS)
}


class Flows:
    def __init__(self, oss: LocalOSS, fc_api: LocalFcApi, cloudflow: LocalCloudFlow) -> None:
        self.oss, self.fc_api, self.cloudflow = oss, fc_api, cloudflow
        self.client = cloudflow_client(
            f"http://{cloudflow.endpoint}",
            "cn-hangzhou",
            LONG_TERM.access_key_id,
            LONG_TERM.access_key_secret,
        )
        self.runs = 0
        state = oss2.Bucket(make_auth("v1"), oss.endpoint, STATE, region="cn-hangzhou")
        self.rules_etag = state.head_object("backfill/rules/r.json").etag

    def grant(self, role: Role) -> None:
        keys = role_credentials([role])
        self.oss.add_credentials(keys)
        self.fc_api.add_credentials(keys)

    def run(self, flow: str, source: dict[str, Any], **extra: Any) -> str:
        self.runs += 1
        name = f"run-{self.runs}"
        given = {
            **extra,
            "bucket": "autotag-demo",
            "source": source,
            "report": {"bucket": STATE, "prefix": "backfill/reports/"},
            "concurrency": 2,
            "toleratedFailurePercentage": 0,
        }
        self.client.start_execution(
            models.StartExecutionRequest(flow_name=flow, execution_name=name, input=json.dumps(given))
        )
        deadline = time.monotonic() + 60
        while True:
            body = self.client.describe_execution(
                models.DescribeExecutionRequest(flow_name=flow, execution_name=name)
            ).body
            if body.status not in ("Starting", "Running") or time.monotonic() > deadline:
                return str(body.status)
            time.sleep(0.05)

    def statuses(self) -> dict[str, str]:
        return {
            "prefix": self.run("oss-autotag-backfill-prefix", {"prefix": "lp/"}),
            "inventory": self.run(
                "oss-autotag-backfill-inventory",
                {"bucket": INVENTORY, "object": "autotag-demo/manifest.json"},
            ),
            "manifest": self.run(
                "oss-autotag-backfill-manifest", {"bucket": STATE, "object": "backfill/manifests/m.csv"}
            ),
            "manifest with its rules": self.run(
                "oss-autotag-backfill-manifest",
                {"bucket": STATE, "object": "backfill/manifests/m.csv"},
                rules=f"oss://{STATE}/backfill/rules/r.json",
                rulesETag=self.rules_etag,
            ),
        }


def _sources(oss: LocalOSS) -> None:
    data = oss2.Bucket(make_auth("v1"), oss.endpoint, "autotag-demo", region="cn-hangzhou")
    for key in ("lp/a.jpg", "lp/b.txt"):
        data.put_object(key, b"x")
    inventory = oss2.Bucket(make_auth("v1"), oss.endpoint, INVENTORY, region="cn-hangzhou")
    inventory.create_bucket()
    rows = gzip.compress(b'"autotag-demo","lp/a.jpg"\n"autotag-demo","lp/b.txt"\n')
    inventory.put_object("autotag-demo/data/1.csv.gz", rows)
    manifest = {
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key",
        "files": [
            {
                "key": "autotag-demo/data/1.csv.gz",
                "size": len(rows),
                "MD5checksum": hashlib.md5(rows).hexdigest(),
            }
        ],
    }
    inventory.put_object("autotag-demo/manifest.json", json.dumps(manifest).encode())
    state = oss2.Bucket(make_auth("v1"), oss.endpoint, STATE, region="cn-hangzhou")
    state.put_object("backfill/manifests/m.csv", b"autotag-demo,lp/a.jpg\nautotag-demo,lp/b.txt\n")
    state.put_object("backfill/rules/r.json", (ROOT / "functions/autotag/rules/default.json").read_bytes())


@pytest.fixture
def flows(oss: LocalOSS, template_bucket: oss2.Bucket) -> Iterator[Flows]:
    _sources(oss)
    fc = LocalFC(TEMPLATE, environment={"AUTOTAG_OSS_ENDPOINT": oss.endpoint}, dead_letters=DeadLetterStore())
    oss.add_credentials(fc.role_credentials())
    with fc, LocalFcApi(fc) as fc_api, LocalCloudFlow(oss.endpoint, fc_api.endpoint, roles=[ROLE.arn]) as cf:
        running = Flows(oss, fc_api, cf)
        running.grant(ROLE)
        for flow in TEMPLATE.flows:
            running.client.create_flow(
                models.CreateFlowRequest(
                    name=flow.name, definition=flow.definition, type="FDL", role_arn=flow.role
                )
            )
        yield running


def test_the_flows_succeed_with_the_templates_policy(flows: Flows) -> None:
    assert set(flows.statuses().values()) == {"Succeeded"}


@pytest.mark.parametrize("label", sorted(MUTATIONS))
def test_removing_any_grant_of_the_flows_role_breaks_an_execution(flows: Flows, label: str) -> None:
    flows.grant(MUTATIONS[label])
    statuses = flows.statuses()
    assert "Failed" in statuses.values(), (label, statuses)


@pytest.mark.parametrize("label", sorted(FUNCTION_MUTATIONS))
def test_removing_the_functions_grants_for_the_flows_breaks_an_execution(
    flows: Flows, oss: LocalOSS, label: str
) -> None:
    """The backfill function's role reads the result files and writes the report only under the report
    location, and reads an execution's rules only under backfill/rules/: without any one, some fails."""
    oss.add_credentials(role_credentials([FUNCTION_MUTATIONS[label]]))
    statuses = flows.statuses()
    assert "Failed" in statuses.values(), (label, statuses)


def test_the_template_is_what_is_tested() -> None:
    assert isinstance(TEMPLATE, Template) and len(MUTATIONS) == 6 and len(FUNCTION_MUTATIONS) == 3
