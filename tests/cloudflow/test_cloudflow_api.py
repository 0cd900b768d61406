"""The local CloudFlow through its official SDK over HTTP: a distributed Map over OSS objects invoking a
function of the local FC as the flow's role, results in OSS; refusals by field; signatures; tolerated
failures; stop; a restart that resumes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fc2
import pytest
from alibabacloud_fnf20190315 import models
from alibabacloud_fnf20190315.client import Client
from alibabacloud_tea_openapi.utils_models import Config
from conftest import LONG_TERM
from darabonba.policy.retry import RetryOptions

from localcloud.cloudflow import LocalCloudFlow
from localcloud.fc import DeadLetterStore, LocalFC, load_template, role_credentials
from localcloud.fc.api import LocalFcApi
from localcloud.oss import LocalOSS
from localcloud.ram import Role, parse_policies, role_arn

ROOT = Path(__file__).parents[2]
SERVICE = "cloudflow-tests"
# A batch's items are objects' keys; a key containing "fail" makes the function raise, "slow" makes it wait,
# and a key is held while a file named after it (slashes as "_") is in the folder HOLDS names.
WORKER = """
import json, os, time

HOLDS = {holds!r}

def handler(event, context):
    document = json.loads(event)
    keys = [item["Key"] for item in document.get("Items", [document])]
    while any(os.path.exists(os.path.join(HOLDS, key.replace("/", "_"))) for key in keys):
        time.sleep(0.05)
    if any("slow" in key for key in keys):
        time.sleep(0.5)
    if any("fail" in key for key in keys):
        raise ValueError("refused " + ",".join(keys))
    return json.dumps({"count": len(keys), "keys": keys})
"""
FLOW_ROLE = role_arn("cloudflow-backfill")
POLICY = {
    "Version": "1",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["oss:ListObjects", "oss:GetObject", "oss:PutObject", "fc:InvokeFunction"],
            "Resource": ["*"],
        }
    ],
}


@dataclass
class Cloud:
    oss: LocalOSS
    fc_api: LocalFcApi
    holds: Path  # the worker's held keys (see WORKER)

    @contextmanager
    def holding(self, keys: list[str]) -> Iterator[None]:
        """The worker answers no batch with one of `keys` until the block ends."""
        files = [self.holds / key.replace("/", "_") for key in keys]
        for file in files:
            file.touch()
        try:
            yield
        finally:
            for file in files:
                file.unlink()

    def cloudflow(self, data_dir: Path | None = None) -> LocalCloudFlow:
        return LocalCloudFlow(
            self.oss.endpoint,
            self.fc_api.endpoint,
            roles=[FLOW_ROLE],
            data_dir=data_dir,
            max_threads=4,
            time_scale=0.01,
        ).start()


@pytest.fixture(scope="module")
def cloud(local_oss: LocalOSS, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    roles = [Role(FLOW_ROLE, parse_policies([POLICY], "test role"))]
    local_oss.add_credentials(role_credentials(roles))
    fc = LocalFC(
        load_template(ROOT / "template.yml"), dead_letters=DeadLetterStore(), retry_base_seconds=0.01
    )
    with fc, LocalFcApi(fc) as fc_api:
        fc_api.add_credentials(role_credentials(roles))
        folder = tmp_path_factory.mktemp("worker") / "cloudflow_worker"
        folder.mkdir()
        holds = tmp_path_factory.mktemp("holds")
        (folder / "cloudflow_worker.py").write_text(WORKER.replace("{holds!r}", repr(str(holds))))
        client = fc2.Client(
            endpoint=fc_api.endpoint,
            accessKeyID=LONG_TERM.access_key_id,
            accessKeySecret=LONG_TERM.access_key_secret,
        )
        client.create_service(SERVICE)
        client.create_function(
            SERVICE, "worker", "python3.10", "cloudflow_worker.handler", codeDir=str(folder)
        )
        yield Cloud(local_oss, fc_api, holds)


def sdk(cloudflow: LocalCloudFlow, secret: str = LONG_TERM.access_key_secret) -> Client:
    config = Config(
        access_key_id=LONG_TERM.access_key_id,
        access_key_secret=secret,
        endpoint=cloudflow.endpoint,
        protocol="http",
        region_id="cn-hangzhou",
    )
    config.retry_options = RetryOptions({"retryable": False})
    return Client(config)


def map_flow(bucket: str, prefix: str, results: str, **map_fields: Any) -> str:
    """A flow whose one state is a distributed Map over the objects under `prefix`, invoking the worker."""
    state = {
        "Name": "Backfill",
        "Type": "Map",
        "ProcessorConfig": {"ExecutionMode": "Express"},
        "ItemReader": {"SourceType": "OSS_OBJECTS", "SourceParameters": {"Bucket": bucket, "Prefix": prefix}},
        "Processor": {
            "StartAt": "Tag",
            "States": [
                {
                    "Name": "Tag",
                    "Type": "Task",
                    "Action": "FC:InvokeFunction",
                    "TaskMode": "RequestComplete",
                    "Parameters": {
                        "resourceArn": f"acs:fc:::services/{SERVICE}/functions/worker",
                        "body.$": "$Input",
                    },
                    "End": True,
                }
            ],
        },
        "ResultWriter": {"Parameters": {"Bucket": bucket, "Prefix": results}},
        "End": True,
        **map_fields,
    }
    return json.dumps({"Type": "StateMachine", "SpecVersion": "v1", "StartAt": "Backfill", "States": [state]})


def create_flow(client: Client, name: str, definition: str) -> None:
    client.create_flow(
        models.CreateFlowRequest(
            name=name, definition=definition, description="test", type="FDL", role_arn=FLOW_ROLE
        )
    )


def wait_for(
    client: Client, flow: str, execution: str, done: Callable[[Any], bool] | None = None, seconds: float = 300
) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        body = client.describe_execution(
            models.DescribeExecutionRequest(flow_name=flow, execution_name=execution)
        ).body
        if (done(body) if done else body.status != "Running") or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def wait_until(happened: Callable[[], bool], what: str, seconds: float = 300) -> None:
    """Return once `happened()`; fail saying `what` did not happen after `seconds` (only a broken run)."""
    deadline = time.monotonic() + seconds
    while not happened():
        assert time.monotonic() < deadline, f"{what}: not after {seconds} s"
        time.sleep(0.05)


def put_objects(cloud: Cloud, bucket: str, keys: list[str]) -> None:
    import oss2
    from conftest import make_auth

    client = oss2.Bucket(make_auth("v1"), cloud.oss.endpoint, bucket, region="cn-hangzhou")
    for key in keys:
        client.put_object(key, b"x")


def read_results(cloud: Cloud, bucket: str, manifest_key: str) -> tuple[dict[str, Any], list[Any], list[Any]]:
    import oss2
    from conftest import make_auth

    client = oss2.Bucket(make_auth("v1"), cloud.oss.endpoint, bucket, region="cn-hangzhou")
    manifest = json.loads(client.get_object(manifest_key).read())
    succeeded = [
        e for k in manifest["ResultFiles"]["SUCCEEDED"] for e in json.loads(client.get_object(k).read())
    ]
    failed = [e for k in manifest["ResultFiles"]["FAILED"] for e in json.loads(client.get_object(k).read())]
    return manifest, succeeded, failed


def test_a_distributed_map_reads_objects_in_batches_and_writes_its_results(cloud: Cloud, bucket: Any) -> None:
    keys = [f"in/{n:02d}" for n in range(7)]
    put_objects(cloud, bucket.bucket_name, [*keys, "elsewhere"])
    with cloud.cloudflow() as cloudflow:
        client = sdk(cloudflow)
        create_flow(
            client,
            "batches",
            map_flow(
                bucket.bucket_name, "in/", "results/", ItemBatcher={"MaxItemsPerBatch": 3}, MaxConcurrency=2
            ),
        )
        assert client.describe_flow(models.DescribeFlowRequest(name="batches")).body.role_arn == FLOW_ROLE
        client.start_execution(
            models.StartExecutionRequest(flow_name="batches", execution_name="first", input="{}")
        )
        done = wait_for(client, "batches", "first")
        assert done.status == "Succeeded", done.output
        output = json.loads(done.output)
        assert output["ItemCounts"]["Total"] == 7 and output["ItemCounts"]["Succeed"] == 7
        manifest, succeeded, failed = read_results(
            cloud, bucket.bucket_name, output["ResultWriterDetails"]["ManifestKey"]
        )
        assert manifest["ItemCounts"] == {"SUCCEEDED": 7, "FAILED": 0} and not failed
        assert sorted(len(e["Input"]["Items"]) for e in succeeded) == [1, 3, 3]
        seen = sorted(k for e in succeeded for k in e["Output"]["keys"])
        assert seen == keys
        run = client.describe_map_run(
            models.DescribeMapRunRequest(flow_name="batches", execution_name="first", map_run_name="Backfill")
        ).body
        assert (run.status, run.item_counts.succeed, run.item_counts.total) == ("Succeeded", 7, 7)
        history = client.get_execution_history(
            models.GetExecutionHistoryRequest(flow_name="batches", execution_name="first")
        ).body.events
        assert [e.type for e in history][-1] == "ExecutionSucceeded"
        listed = client.list_executions(models.ListExecutionsRequest(flow_name="batches")).body.executions
        assert [e.name for e in listed] == ["first"]


def test_failures_within_the_tolerance_let_the_map_succeed_and_beyond_it_fail(
    cloud: Cloud, bucket: Any
) -> None:
    put_objects(cloud, bucket.bucket_name, ["in/a", "in/b-fail", "in/c", "in/d"])
    with cloud.cloudflow() as cloudflow:
        client = sdk(cloudflow)
        create_flow(client, "tolerant", map_flow(bucket.bucket_name, "in/", "r/", ToleratedFailureCount=1))
        create_flow(client, "strict", map_flow(bucket.bucket_name, "in/", "r/"))
        for flow in ("tolerant", "strict"):
            client.start_execution(
                models.StartExecutionRequest(flow_name=flow, execution_name="x", input="{}")
            )
        tolerant, strict = wait_for(client, "tolerant", "x"), wait_for(client, "strict", "x")
        assert tolerant.status == "Succeeded", tolerant.output
        output = json.loads(tolerant.output)
        assert (output["ItemCounts"]["Succeed"], output["ItemCounts"]["Failed"]) == (3, 1)
        _, _, failed = read_results(cloud, bucket.bucket_name, output["ResultWriterDetails"]["ManifestKey"])
        assert [(e["Error"], "refused in/b-fail" in e["Cause"]) for e in failed] == [("FC.Unknown", True)]
        assert strict.status == "Failed"
        assert json.loads(strict.output)["Error"] == "FnF.MapRunFailed"


def test_definitions_outside_the_supported_part_are_refused_naming_the_field(
    cloud: Cloud, bucket: Any
) -> None:
    from alibabacloud_tea_openapi.exceptions import ClientException

    with cloud.cloudflow() as cloudflow:
        client = sdk(cloudflow)
        bad = map_flow(bucket.bucket_name, "in/", "r/").replace("OSS_OBJECTS", "FOO")
        with pytest.raises(ClientException) as refused:
            create_flow(client, "bad", bad)
        assert refused.value.code == "InvalidArgument"
        assert (
            "States[0].ItemReader.SourceType: 'FOO' is not supported (supported: OSS_CSV"
            in refused.value.message
        )
        with pytest.raises(ClientException, match="RoleArn"):
            client.create_flow(
                models.CreateFlowRequest(
                    name="norole",
                    definition=map_flow("b", "", "r/"),
                    description="",
                    type="FDL",
                    role_arn="acs:ram::1:role/x",
                )
            )


def test_a_wrong_secret_is_refused_as_the_gateway_does(cloud: Cloud) -> None:
    from alibabacloud_tea_openapi.exceptions import ClientException

    with cloud.cloudflow() as cloudflow:
        with pytest.raises(ClientException) as refused:
            sdk(cloudflow, secret="wrong").list_flows(models.ListFlowsRequest())
        assert refused.value.code == "SignatureDoesNotMatch"
        assert sdk(cloudflow).list_flows(models.ListFlowsRequest()).body.flows == []


def test_stop_ends_an_execution_without_waiting_for_its_batches(cloud: Cloud, bucket: Any) -> None:
    keys = [f"in/slow-{n:02d}" for n in range(40)]
    put_objects(cloud, bucket.bucket_name, keys)
    with cloud.cloudflow() as cloudflow:
        client = sdk(cloudflow)
        create_flow(client, "long", map_flow(bucket.bucket_name, "in/", "r/", MaxConcurrency=1))
        with cloud.holding(keys):  # no batch can end: Stopped is reached without waiting for one
            client.start_execution(
                models.StartExecutionRequest(flow_name="long", execution_name="x", input="{}")
            )
            stop = models.StopExecutionRequest(flow_name="long", execution_name="x", error="E", cause="test")
            client.stop_execution(stop)
            stopped = wait_for(client, "long", "x")
            assert stopped.status == "Stopped"
        time.sleep(1)  # no batch finishes into a stopped execution's counts afterwards
        assert wait_for(client, "long", "x").status == "Stopped"


def test_a_restart_with_a_data_dir_resumes_without_rerunning_finished_batches(
    cloud: Cloud, bucket: Any, tmp_path: Path
) -> None:
    keys = [f"in/slow-{n:02d}" for n in range(6)]
    put_objects(cloud, bucket.bucket_name, keys)
    first = cloud.cloudflow(tmp_path)
    client = sdk(first)
    create_flow(client, "resumable", map_flow(bucket.bucket_name, "in/", "r/", MaxConcurrency=1))
    batches = tmp_path / "cloudflow" / "executions" / "resumable" / "x" / "maprun-Backfill"
    with cloud.holding(keys[2:]):  # two batches end, whatever the speed, and no more
        client.start_execution(
            models.StartExecutionRequest(flow_name="resumable", execution_name="x", input="{}")
        )
        wait_until(lambda: len(list(batches.glob("batch-*.json"))) == 2, "two batches ended")
        first.stop()  # as a process that ends: the execution is still Running on disk
    finished = {p.name: p.stat().st_mtime_ns for p in batches.glob("batch-*.json")}
    assert len(finished) == 2
    with cloud.cloudflow(tmp_path) as second:
        client = sdk(second)
        done = wait_for(client, "resumable", "x")
        assert done.status == "Succeeded", done.output
        assert json.loads(done.output)["ItemCounts"]["Succeed"] == 6
    again = {p.name: p.stat().st_mtime_ns for p in batches.glob("batch-*.json")}
    assert len(again) == 6 and all(again[name] == stamp for name, stamp in finished.items())


def test_a_resumed_map_runs_every_item_it_had_not_finished_when_the_listing_shifted(
    cloud: Cloud, bucket: Any, tmp_path: Path
) -> None:
    """Objects deleted while the service was down shift the listing: the items a resumed run skips are
    those it finished, not those that now fall at a finished batch's position."""
    keys = [f"shift/slow-{n:02d}" for n in range(6)]
    put_objects(cloud, bucket.bucket_name, keys)
    first = cloud.cloudflow(tmp_path)
    client = sdk(first)
    create_flow(client, "shifted", map_flow(bucket.bucket_name, "shift/", "r/", MaxConcurrency=1))
    batches = tmp_path / "cloudflow" / "executions" / "shifted" / "x" / "maprun-Backfill"
    with cloud.holding(keys[2:]):
        client.start_execution(
            models.StartExecutionRequest(flow_name="shifted", execution_name="x", input="{}")
        )
        wait_until(lambda: len(list(batches.glob("batch-*.json"))) == 2, "two batches ended")
        first.stop()
    assert len(list(batches.glob("batch-*.json"))) == 2
    bucket.delete_object(keys[0])  # a finished item goes: every later item moves up one place
    with cloud.cloudflow(tmp_path) as second:
        client = sdk(second)
        done = wait_for(client, "shifted", "x")
        assert done.status == "Succeeded", done.output
        output = json.loads(done.output)
    _, succeeded, failed = read_results(
        cloud, bucket.bucket_name, output["ResultWriterDetails"]["ManifestKey"]
    )
    processed = [key for entry in succeeded for key in entry["Output"]["keys"]]
    assert failed == [] and sorted(set(processed)) == sorted(keys), processed  # none lost
    assert len(processed) == len(set(processed))  # and none run twice
    assert output["ItemCounts"]["Total"] == 5 and output["ItemCounts"]["Succeed"] == 5, output
