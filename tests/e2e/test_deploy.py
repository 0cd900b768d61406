"""`autotag deploy` against the local FC API (in `autotag local up`, its own process): create, then a
no-op re-deploy, then the deployed function invoked through aliyun-fc2 and fired by uploads."""

from __future__ import annotations

import json
import zipfile
from io import BytesIO
from pathlib import Path
from typing import Any

import fc2
import oss2
import pytest
import yaml
from click.testing import CliRunner
from conftest import STS, LocalCloudProcess, wait_for_tag

from autotag_cli.events import oss_event_document
from autotag_cli.main import cli
from cloudformats.checksums import crc64
from cloudformats.package import build_package
from deployer.package import vendored_dependencies
from deployer.plan import record_secret
from deployer.recursion import recursion_findings
from localcloud.fc import load_template

ROOT = Path(__file__).parents[2]
TEMPLATE = str(ROOT / "template.yml")


def deploy(
    cloud: LocalCloudProcess, *args: str, template: str = TEMPLATE, width: int = 220
) -> tuple[int, str]:
    """`autotag deploy` to `autotag local up`'s FC API and OSS (where the template's buckets go)."""
    env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": STS.access_key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": STS.access_key_secret,
        "ALIBABA_CLOUD_SECURITY_TOKEN": STS.security_token or "",
        "COLUMNS": str(width),
    }
    where = ["--fc-endpoint", cloud.fc_api_endpoint, "--oss-endpoint", cloud.oss_endpoint]
    where += ["--cloudflow-endpoint", cloud.cloudflow_endpoint]
    command = ["deploy", "--template", template, *where, *args]
    result = CliRunner().invoke(cli, command, env=env, terminal_width=width)
    return result.exit_code, result.output


def test_a_fresh_local_cloud_runs_what_deploy_would_make(local_up: LocalCloudProcess) -> None:
    """`autotag local up` serves template.yml as deployed: every field deploy compares (descriptions,
    initialisation timeouts, the dead-letter destination with its region and account, the code's checksum)
    is already what deploy would write, so deploy plans nothing."""
    code, plan = deploy(local_up, "--dry-run")
    assert code == 0, plan
    rows = [line for line in plan.splitlines() if line.startswith("  ")]  # one action a line
    assert len(rows) >= 8 and all(("unchanged" in row) or ("skipped" in row) for row in rows), plan
    assert "0 change(s) planned" in plan
    # RAM is not deploy's to manage: it names the roles the services run under, and says so
    for service in ("oss-autotag", "oss-autotag-expiry", "oss-autotag-backfill"):
        (row,) = [
            line
            for line in plan.splitlines()
            if f"RAM role acs:ram::1234567890123456:role/{service} " in line
        ]
        assert "skipped" in row and "not managed here: deploy creates no RAM role or policy" in row, plan
    (row,) = [line for line in plan.splitlines() if "OSS bucket autotag-demo-state (private)" in line]
    assert "unchanged" in row, plan  # the sweep's state bucket: local up made it as deploy would
    code, output = deploy(local_up, "--yes")
    assert code == 0 and "nothing to change: already deployed" in output, output


def test_at_80_columns_the_plan_names_each_resource_whole_on_one_line(local_up: LocalCloudProcess) -> None:
    """What an operator copies from a deploy plan (a role's ARN for `--role`, the template's path, the FC
    endpoint) is whole on one line at 80 columns, never folded in a table's cell."""
    code, plan = deploy(local_up, "--dry-run", width=80)
    assert code == 0, plan
    lines = plan.splitlines()
    for service in ("oss-autotag", "oss-autotag-expiry", "oss-autotag-backfill"):
        arn = f"acs:ram::1234567890123456:role/{service}"
        assert any(f"RAM role {arn}" in line and "skipped" in line for line in lines), (arn, plan)
    for whole in (TEMPLATE, local_up.fc_api_endpoint):
        assert any(whole in line for line in lines), (whole, plan)


def test_deploy_is_idempotent_and_the_deployed_function_runs(
    local_up: LocalCloudProcess, tmp_path: Path
) -> None:
    oss_endpoint, api = local_up.oss_endpoint, local_up.fc_api_endpoint
    changed = tmp_path / "changed"  # template.yml, the rules revalidated more often
    changed.mkdir()
    (changed / "functions").symlink_to(ROOT / "functions")
    template = changed / "template.yml"
    template.write_text(
        (ROOT / "template.yml")
        .read_text()
        .replace("AUTOTAG_RULES_MAX_AGE: '60'", "AUTOTAG_RULES_MAX_AGE: '30'")
    )
    code, plan = deploy(local_up, "--dry-run", template=str(template))
    assert code == 0, plan
    changes = [line.split(" — ") for line in plan.splitlines() if line.startswith("  update ")]
    assert [(resource.split()[2], why) for resource, why in changes] == [
        ("oss-autotag/tag-on-upload", "differs in environmentVariables"),
        ("oss-autotag-expiry/tag-expiry", "differs in environmentVariables"),
        ("oss-autotag-backfill/tag-backfill", "differs in environmentVariables"),
    ], plan
    assert "3 change(s) planned" in plan and "nothing done (dry run)" in plan
    assert "packaging the code alone (the local cloud)" in plan
    code, output = deploy(local_up, template=str(template))
    assert code == 2 and "not a terminal, so nothing is applied without --yes" in output, output
    code, output = deploy(local_up, "--yes", template=str(template))
    assert code == 0 and "3 change(s) applied" in output, output
    assert "ERROR" not in output and "Client error" not in output and "authorization" not in output.lower()
    code, output = deploy(local_up, "--yes", template=str(template))
    assert code == 0 and "nothing to change: already deployed" in output, output

    client = fc2.Client(
        endpoint=api,
        accessKeyID=STS.access_key_id,
        accessKeySecret=STS.access_key_secret,
        securityToken=STS.security_token,
    )
    function = client.get_function("oss-autotag", "tag-on-upload").data
    assert function["environmentVariables"]["AUTOTAG_RULES_MAX_AGE"] == "30"
    config = client.get_function_async_invoke_config("oss-autotag", "LATEST", "tag-on-upload").data
    assert config["maxAsyncRetryAttempts"] == 3
    assert config["destinationConfig"]["onFailure"]["destination"].startswith("acs:mns:cn-hangzhou:")
    timer = client.get_trigger("oss-autotag-expiry", "tag-expiry", "nightly-expiry").data
    assert timer["triggerConfig"]["cronExpression"] == "CRON_TZ=Asia/Shanghai 0 0 3 * * *"

    bucket = oss2.Bucket(
        oss2.StsAuth(STS.access_key_id, STS.access_key_secret, STS.security_token),
        oss_endpoint,
        "autotag-demo",
    )
    bucket.put_object("deployed/a.png", b"x")
    assert wait_for_tag(bucket, "deployed/a.png", "kind")["kind"] == "image"
    event = oss_event_document("autotag-demo", "deployed/a.png", size=1)
    summary = json.loads(
        client.invoke_function("oss-autotag", "tag-on-upload", payload=json.dumps(event)).data
    )
    assert summary["results"][0]["outcome"] == "unchanged"  # the replay writes nothing


def test_deploy_creates_the_sweeps_state_bucket_private_where_it_is_missing(
    local_up: LocalCloudProcess,
) -> None:
    state = oss2.Bucket(
        oss2.StsAuth(STS.access_key_id, STS.access_key_secret, STS.security_token),
        local_up.oss_endpoint,
        "autotag-demo-state",
    )
    state.delete_bucket()  # as in an account where it was never made
    code, plan = deploy(local_up, "--dry-run")
    assert code == 0, plan
    (row,) = [line for line in plan.splitlines() if "OSS bucket autotag-demo-state (private)" in line]
    assert "create" in row and "does not exist" in row, plan
    code, output = deploy(local_up, "--yes")
    assert code == 0 and "1 change(s) applied" in output, output
    assert state.get_bucket_acl().acl == "private"
    code, output = deploy(local_up, "--yes")
    assert code == 0 and "nothing to change: already deployed" in output, output


@pytest.mark.parametrize(
    ("deployed", "given", "expected"),
    [
        ({"tag-on-upload": "", "tag-expiry": ""}, "", ("new-one", "generated by this deploy")),
        ({"tag-on-upload": "s1", "tag-expiry": ""}, "", ("s1", "kept from the deployed functions")),
        ({"tag-on-upload": "s1", "tag-expiry": "s1"}, "s2,s1", ("s2,s1", "this shell's")),
    ],
)
def test_a_deploy_to_alibaba_cloud_gives_every_function_one_record_secret(
    deployed: dict[str, str], given: str, expected: tuple[str, str]
) -> None:
    secret, source = record_secret(deployed, given, lambda: "new-one")
    assert secret == expected[0] and source.startswith(expected[1]), source


def test_functions_holding_different_record_secrets_stop_a_deploy() -> None:
    with pytest.raises(
        ValueError, match=r"\(tag-expiry, tag-on-upload\) hold different AUTOTAG_RECORD_SECRETs"
    ):
        record_secret({"tag-on-upload": "s1", "tag-expiry": "s2"}, "", lambda: "new-one")


def test_a_bad_template_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "functions").symlink_to(ROOT / "functions")
    broken = tmp_path / "template.yml"
    broken.write_text(
        (ROOT / "template.yml").read_text().replace("Handler: tag_expiry.handler", "Handler: [x]")
    )
    result = CliRunner().invoke(
        cli,
        ["deploy", "--template", str(broken), "--fc-endpoint", "http://127.0.0.1:1"],
        env={"ALIBABA_CLOUD_ACCESS_KEY_ID": "a", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "b"},
    )
    assert result.exit_code == 2 and "Handler: ['x'] is not a str" in result.output


@pytest.mark.parametrize(
    ("runtime", "abi", "fc2_packaged"),
    [("python3.10", "cpython-310", False), ("python3.12", "cpython-312", True)],
)
def test_the_package_carries_what_its_runtime_lacks_and_is_reproducible(
    runtime: str, abi: str, fc2_packaged: bool
) -> None:
    dependencies = vendored_dependencies(
        runtime
    )  # manylinux wheels for that CPython, fetched once into .cache/
    first = build_package(ROOT / "functions", dependencies)
    assert crc64(first) == crc64(build_package(ROOT / "functions", dependencies))  # same bytes every time
    names = set(zipfile.ZipFile(BytesIO(first)).namelist())
    assert {
        "tag_on_upload.py",
        "tag_expiry.py",
        "autotag/rules/default.json",
        "jsonschema/__init__.py",
    } <= names
    assert any(n.startswith(f"re2/_re2.{abi}-x86_64-linux-gnu") for n in names)
    assert any(n.startswith(f"rpds/rpds.{abi}-x86_64-linux-gnu") for n in names)
    assert ("fc2/client.py" in names) is fc2_packaged  # python3.12 has no aliyun-fc2 built in; 3.10 has
    assert not any(n.startswith("oss2/") or "__pycache__" in n for n in names)  # oss2 is in the runtime
    assert len(first) < 10 * 2**20


def test_a_function_triggered_by_its_own_writes_is_refused(tmp_path: Path) -> None:
    (tmp_path / "functions").symlink_to(ROOT / "functions")
    text = (ROOT / "template.yml").read_text()
    # Give the expiry function an OSS trigger on the bucket it writes its checkpoints to.
    looped = text.replace(
        "        nightly-expiry:\n",
        "        on-anything:\n          Type: OSS\n          Properties:\n"
        "            BucketName: autotag-demo\n            Events: ['oss:ObjectCreated:*']\n"
        "            Filter:\n              Key:\n                Prefix: ''\n                Suffix: ''\n"
        "        nightly-expiry:\n",
    )
    (tmp_path / "template.yml").write_text(looped)
    result = CliRunner().invoke(
        cli,
        [
            "deploy",
            "--template",
            str(tmp_path / "template.yml"),
            "--fc-endpoint",
            "http://127.0.0.1:1",
            "--dry-run",
        ],
        env={"ALIBABA_CLOUD_ACCESS_KEY_ID": "a", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "b"},
    )
    assert result.exit_code == 2
    assert (
        "tag-expiry's trigger on-anything receives ObjectCreated:PutObject under .autotag/" in result.output
    )
    assert "would make a function trigger itself; nothing deployed" in result.output


def test_the_shipped_template_has_no_recursion_findings(tmp_path: Path) -> None:
    """The shipped sweep keeps its state in a bucket of its own: nothing reaches the upload trigger. When it
    keeps its state in the tagged bucket, its writes reach the upload trigger,
    whose function drops keys under the same state prefix at once: nothing to warn about. With another
    state prefix there, it would do work: a warning. The backfill function writes only its completion
    reports, which its role allows only in the state bucket: nothing the trigger receives."""
    assert recursion_findings(load_template(ROOT / "template.yml")) == []
    (tmp_path / "functions").symlink_to(ROOT / "functions")
    text = (ROOT / "template.yml").read_text()
    # The sweep's state in the tagged bucket (its role may write there), and the upload function ignoring
    # another prefix: the sweep's state writes reach the upload trigger and would be work.
    in_tagged_bucket = text.replace(
        "'acs:oss:*:*:autotag-demo-state/.autotag/*'", "'acs:oss:*:*:autotag-demo/.autotag/*'", 1
    )
    (tmp_path / "template.yml").write_text(in_tagged_bucket)
    assert (
        recursion_findings(load_template(tmp_path / "template.yml")) == []
    )  # the upload function ignores it
    (tmp_path / "template.yml").write_text(
        in_tagged_bucket.replace("AUTOTAG_STATE_PREFIX: '.autotag/'", "AUTOTAG_STATE_PREFIX: 'x/'", 1)
    )
    findings = recursion_findings(load_template(tmp_path / "template.yml"))
    assert [f.level for f in findings] == ["warning"]
    for finding, writer in zip(findings, ("tag-expiry",), strict=True):
        assert "tag-on-upload's trigger on-object-created receives ObjectCreated:" in finding.message
        assert "ObjectCreated:PutObject" in finding.message and f"written by {writer}" in finding.message


def test_a_policy_the_local_cloud_cannot_enforce_is_not_deployed(tmp_path: Path) -> None:
    (tmp_path / "functions").symlink_to(ROOT / "functions")
    typo = (
        (ROOT / "template.yml")
        .read_text()
        .replace("'oss:PutObjectVersionTagging'", "'oss:PutObjectVersionTaging'")
    )
    (tmp_path / "template.yml").write_text(typo)
    result = CliRunner().invoke(
        cli,
        ["deploy", "--template", str(tmp_path / "template.yml"), "--fc-endpoint", "http://127.0.0.1:1"],
        env={"ALIBABA_CLOUD_ACCESS_KEY_ID": "a", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "b"},
    )
    assert result.exit_code == 2
    assert (
        "Resources.oss-autotag.Properties.Policies[0], statement 1.Action: 'oss:PutObjectVersionTaging' "
        "matches no oss action" in result.output
    )


def test_eventbridge_triggers_deploy_when_chosen_and_prune_removes_the_native_one(
    local_up: LocalCloudProcess, tmp_path: Path
) -> None:
    """Moving to EventBridge as docs/tag-on-upload.md says: the chosen EventBridge trigger is created with
    FC's camelCase config, the disabled one is not, the rule is listed as not managed, and the native
    trigger FC still has is listed until `--prune` deletes it."""
    api = local_up.fc_api_endpoint
    assert deploy(local_up, "--yes")[0] == 0
    document = yaml.safe_load(Path(TEMPLATE).read_text())
    for service in document["Resources"].values():
        for body in service.values():
            if isinstance(body, dict) and body.get("Type") == "Aliyun::Serverless::Function":
                body["Properties"]["CodeUri"] = str(ROOT / "functions")
    events = document["Resources"]["oss-autotag"]["tag-on-upload"]["Events"]
    del events["on-object-created"]
    events["oss-events-via-eventbridge"]["Properties"]["TriggerEnable"] = True
    moved = tmp_path / "template.yml"
    moved.write_text(yaml.safe_dump(document, sort_keys=False))

    code, plan = deploy(local_up, "--template", str(moved), "--dry-run")
    assert code == 0, plan
    assert "eventbridge trigger tag-on-upload/oss-events-via-eventbridge" in plan and "create" in plan
    assert "oss-events-batched" in plan and "disabled in the template" in plan
    assert "eventbridge rule oss-events-to-queue" in plan
    assert "oss trigger tag-on-upload/on-object-created" in plan and "--prune deletes it" in plan

    code, output = deploy(local_up, "--template", str(moved), "--yes")
    assert code == 0, output
    client = fc2.Client(
        endpoint=api,
        accessKeyID=STS.access_key_id,
        accessKeySecret=STS.access_key_secret,
        securityToken=STS.security_token,
    )
    listed = {
        t["triggerName"]: t for t in client.list_triggers("oss-autotag", "tag-on-upload").data["triggers"]
    }
    assert set(listed) == {"on-object-created", "oss-events-via-eventbridge"}
    config = listed["oss-events-via-eventbridge"]["triggerConfig"]
    assert config["eventSourceConfig"] == {"eventSourceType": "Default"}
    assert config["eventSinkConfig"]["deliveryOption"] == {
        "mode": "event-driven",
        "eventSchema": "CloudEvents",
    }
    assert json.loads(config["eventRuleFilterPattern"])["source"] == ["acs.oss"]

    code, output = deploy(local_up, "--template", str(moved), "--yes", "--prune")
    assert code == 0 and "1 change(s) applied" in output, output
    listed = [t["triggerName"] for t in client.list_triggers("oss-autotag", "tag-on-upload").data["triggers"]]
    assert listed == ["oss-events-via-eventbridge"]
    code, output = deploy(local_up, "--template", str(moved), "--yes", "--prune")
    assert code == 0 and "nothing to change: already deployed" in output, output
    # The local cloud delivers through the deployed EventBridge trigger alone now.
    bucket = oss2.Bucket(
        oss2.StsAuth(STS.access_key_id, STS.access_key_secret, STS.security_token),
        local_up.oss_endpoint,
        "autotag-demo",
    )
    bucket.create_bucket()
    bucket.put_object("moved/a.png", b"x")
    assert wait_for_tag(bucket, "moved/a.png", "kind")["kind"] == "image"
    assert local_up.line_containing("tag-on-upload")


@pytest.mark.parametrize("delivery", ["eventbridge", "batched"])
def test_an_eventbridge_trigger_receiving_its_own_writes_is_refused(delivery: str, tmp_path: Path) -> None:
    """The expiry function given template.yml's EventBridge trigger (directly, or through the rule and
    its queue): the pattern covers its checkpoint writes under .autotag/."""
    document = yaml.safe_load(Path(TEMPLATE).read_text())
    for service in document["Resources"].values():
        for body in service.values():
            if isinstance(body, dict) and body.get("Type") == "Aliyun::Serverless::Function":
                body["Properties"]["CodeUri"] = str(ROOT / "functions")
    upload = document["Resources"]["oss-autotag"]["tag-on-upload"]["Events"]
    expiry = document["Resources"]["oss-autotag-expiry"]["tag-expiry"]["Events"]
    name = "oss-events-via-eventbridge" if delivery == "eventbridge" else "oss-events-batched"
    expiry[name] = upload.pop(name)
    expiry[name]["Properties"]["TriggerEnable"] = True
    document["Resources"]["oss-events-to-queue"]["Properties"]["Status"] = "ENABLE"
    (tmp_path / "template.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    findings = recursion_findings(load_template(tmp_path / "template.yml"))
    assert [f.level for f in findings] == ["error"]
    assert (
        f"tag-expiry's trigger {name} receives ObjectCreated:PutObject under .autotag/ in autotag-demo"
        in (findings[0].message)
    )
    if delivery == "batched":
        assert "through rule oss-events-to-queue and queue oss-autotag-events" in findings[0].message


def test_an_offline_deploy_to_alibaba_cloud_says_in_one_line_what_it_could_not_fetch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No package index answers: one line naming the package and the runtime, not pip's output."""
    import deployer.package

    monkeypatch.setattr(deployer.package, "CACHE", tmp_path / "cache")  # nothing fetched before
    offline = {
        "PIP_CONFIG_FILE": "/dev/null",
        "PIP_INDEX_URL": "http://127.0.0.1:1/simple",  # refuses every connection
        "PIP_RETRIES": "1",
        "PIP_TIMEOUT": "1",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIexample",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "secret",
    }
    result = CliRunner().invoke(
        cli,
        ["deploy", "--dry-run", "--template", TEMPLATE, "--region", "cn-hangzhou", "--account-id", "1234"],
        env=offline,
    )
    assert result.exit_code == 3, result.output  # cannot reach
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: cannot fetch") and "python3.1" in line and "==" in line, line
    assert "package index" in line and "WARNING" not in line and "Retry(" not in line, line


def flow_variant(tmp_path: Path, change: str, into: str) -> str:
    """template.yml with `change` made to the prefix flow's definition (text replaced by `into`)."""
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "functions").symlink_to(ROOT / "functions")
    document = yaml.safe_load((ROOT / "template.yml").read_text())
    properties = document["Resources"]["oss-autotag-backfill-prefix"]["Properties"]
    assert change in properties["Definition"]
    properties["Definition"] = properties["Definition"].replace(change, into)
    path = folder / "template.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return str(path)


def describe_flow(cloud: LocalCloudProcess, name: str) -> Any:
    from alibabacloud_fnf20190315 import models

    from deployer.flows import cloudflow_client

    client = cloudflow_client(
        cloud.cloudflow_endpoint, "cn-hangzhou", STS.access_key_id, STS.access_key_secret, STS.security_token
    )
    return client.describe_flow(models.DescribeFlowRequest(name=name)).body


def test_deploy_updates_a_changed_flow_through_cloudflows_api_once(
    local_up: LocalCloudProcess, tmp_path: Path
) -> None:
    """`autotag local up` created the template's flows under their role as deploy would; a changed
    definition is one UpdateFlow, shown by --dry-run first, and a second deploy changes nothing."""
    before = describe_flow(local_up, "oss-autotag-backfill-prefix")
    assert before.role_arn == "acs:ram::1234567890123456:role/oss-autotag-backfill-flow"
    changed = flow_variant(tmp_path, "MaxItemsPerBatch: 50", "MaxItemsPerBatch: 40")
    code, plan = deploy(local_up, "--dry-run", template=changed)
    assert code == 0, plan
    (row,) = [line for line in plan.splitlines() if "CloudFlow flow oss-autotag-backfill-prefix" in line]
    assert "update" in row and "differs in Definition" in row, plan
    assert all(
        "unchanged" in line for line in plan.splitlines() if "CloudFlow flow" in line and "prefix" not in line
    ), plan
    assert "1 change(s) planned" in plan
    assert describe_flow(local_up, "oss-autotag-backfill-prefix").definition == before.definition
    code, output = deploy(local_up, "--yes", template=changed)
    assert code == 0 and "1 change(s) applied" in output, output
    assert "MaxItemsPerBatch: 40" in describe_flow(local_up, "oss-autotag-backfill-prefix").definition
    code, output = deploy(local_up, "--yes", template=changed)
    assert code == 0 and "nothing to change: already deployed" in output, output


def test_deploy_refuses_a_flow_using_an_unsupported_field_naming_it(
    local_up: LocalCloudProcess, tmp_path: Path
) -> None:
    changed = flow_variant(
        tmp_path, "      MaxItemsPerBatch: 50", "      MaxItemsPerBatch: 50\n      Sort: true"
    )
    code, output = deploy(local_up, "--yes", template=changed)
    assert code == 2, output
    assert "flow oss-autotag-backfill-prefix: States[0].ItemBatcher.Sort: is not supported" in output
    assert "nothing deployed" in output and "Traceback" not in output
    assert "Sort" not in describe_flow(local_up, "oss-autotag-backfill-prefix").definition
