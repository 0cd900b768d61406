"""The local FC API, through the real aliyun-fc2 client: signatures, CRUD, sync and async invocation,
and triggers created through the API wired to the local OSS."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import fc2
import oss2
import pytest
import yaml
from conftest import LONG_TERM, STS, readable, sealed_header, tags_of

from localcloud.fc import DeadLetterStore, LocalFC, load_template
from localcloud.fc.api import LocalFcApi
from localcloud.oss import LocalOSS
from localcloud.ram import role_arn, session_for

ROOT = Path(__file__).parents[2]
GREETER = (
    "def handler(event, context):\n    return 'hello ' + event.decode() + ' from ' + context.function.name\n"
)
FAILING = "def handler(event, context):\n    raise ValueError('no thanks: ' + event.decode())\n"


@pytest.fixture
def api(oss: LocalOSS) -> Iterator[tuple[LocalFcApi, LocalFC]]:
    fc = LocalFC(
        load_template(ROOT / "template.yml"),
        environment={"AUTOTAG_OSS_ENDPOINT": oss.endpoint},
        dead_letters=DeadLetterStore(),
        retry_base_seconds=0.01,
    )
    with fc, LocalFcApi(fc) as server:
        fc.wire_oss(oss)
        yield server, fc


def client(server: LocalFcApi, secret: str = STS.access_key_secret, token: str | None = None) -> fc2.Client:
    return fc2.Client(
        endpoint=server.endpoint,
        accessKeyID=STS.access_key_id,
        accessKeySecret=secret,
        securityToken=STS.security_token if token is None else token,
    )


def code_dir(tmp_path: Path, source: str, module: str) -> str:
    folder = tmp_path / module
    folder.mkdir()
    (folder / f"{module}.py").write_text(source)
    return str(folder)


def test_signatures_are_checked(api: tuple[LocalFcApi, LocalFC]) -> None:
    server, _ = api
    assert client(server).get_service("oss-autotag").data["serviceName"] == "oss-autotag"
    for bad, code in (
        (client(server, secret="wrong"), "SignatureNotMatch"),
        (client(server, token="x"), "InvalidSecurityToken"),
    ):
        with pytest.raises(fc2.fc_exceptions.FcError) as raised:
            bad.get_service("oss-autotag")
        assert code in str(raised.value)
    long_term = fc2.Client(
        endpoint=server.endpoint,
        accessKeyID=LONG_TERM.access_key_id,
        accessKeySecret=LONG_TERM.access_key_secret,
    )
    assert long_term.list_services().data["services"]


def test_create_and_invoke_sync_and_async(api: tuple[LocalFcApi, LocalFC], tmp_path: Path) -> None:
    server, fc = api
    c = client(server)
    c.create_service("greetings", description="test")
    c.create_function(
        "greetings",
        "greeter",
        "python3.10",
        "api_greeter.handler",
        codeDir=code_dir(tmp_path, GREETER, "api_greeter"),
    )
    assert c.invoke_function("greetings", "greeter", payload=b"you").data == b"hello you from greeter"
    request_id = c.invoke_function(
        "greetings", "greeter", payload=b"later", headers={"x-fc-invocation-type": "Async"}
    ).headers["x-fc-request-id"]
    assert fc.drain(600)
    assert [r.payload for r in fc.results if r.request_id == request_id] == ["hello later from greeter"]
    assert c.get_function("greetings", "greeter").data["handler"] == "api_greeter.handler"
    with pytest.raises(fc2.fc_exceptions.FcError, match="ServiceAlreadyExists"):
        c.create_service("greetings")
    with pytest.raises(fc2.fc_exceptions.FcError, match="FunctionNotFound"):
        c.invoke_function("greetings", "nobody", payload=b"")


def test_handler_errors_are_typed_and_async_failures_dead_letter(
    api: tuple[LocalFcApi, LocalFC], tmp_path: Path
) -> None:
    server, fc = api
    c = client(server)
    c.create_service("grumpy", role=role_arn("oss-autotag"))  # a role that may send to the queue
    c.create_function(
        "grumpy",
        "refuser",
        "python3.10",
        "api_refuser.handler",
        codeDir=code_dir(tmp_path, FAILING, "api_refuser"),
    )
    c.put_function_async_invoke_config(
        "grumpy",
        "LATEST",
        "refuser",
        {
            "maxAsyncRetryAttempts": 1,
            "destinationConfig": {"onFailure": {"destination": "acs:mns:::/queues/oss-autotag-dlq/messages"}},
        },
    )
    with pytest.raises(fc2.fc_exceptions.FcError, match="no thanks: now") as refused:
        c.invoke_function("grumpy", "refuser", payload=b"now")
    # as FC answers a Python exception: the message as raised, the class apart
    answer = json.loads(refused.value.message)
    assert (answer["errorMessage"], answer["errorType"]) == ("no thanks: now", "ValueError"), answer
    c.invoke_function("grumpy", "refuser", payload=b"later", headers={"x-fc-invocation-type": "Async"})
    assert fc.drain(600)
    (letter,) = fc.dead_letters.all()
    assert (letter.function, letter.attempts, letter.payload) == ("refuser", 2, "later")


def test_an_oss_trigger_created_through_the_api_tags_uploads(
    api: tuple[LocalFcApi, LocalFC], oss: LocalOSS, template_bucket: oss2.Bucket
) -> None:
    server, fc = api
    bucket = template_bucket
    c = client(server)
    c.delete_trigger("oss-autotag", "tag-on-upload", "on-object-created")  # only the API's trigger fires
    c.create_trigger(
        "oss-autotag",
        "tag-on-upload",
        "api-trigger",
        "oss",
        {"events": ["oss:ObjectCreated:PutObject"], "filter": {"key": {"prefix": "in/", "suffix": ""}}},
        f"acs:oss:cn-hangzhou:1234567890123456:{bucket.bucket_name}",
        "acs:ram::1:role/oss-trigger",
    )
    bucket.put_object("in/a.txt", b"x")
    bucket.put_object("out/b.txt", b"x")  # outside the trigger's prefix
    assert oss.notifier.drain(600) and fc.drain(600)
    assert tags_of(bucket, "in/a.txt")["kind"] == "text"
    assert readable(tags_of(bucket, "out/b.txt")) == {}
    assert [t["triggerName"] for t in c.list_triggers("oss-autotag", "tag-on-upload").data["triggers"]] == [
        "api-trigger"
    ]
    c.delete_trigger("oss-autotag", "tag-on-upload", "api-trigger")
    bucket.put_object("in/c.txt", b"x")
    assert oss.notifier.drain(600) and fc.drain(600)
    assert readable(tags_of(bucket, "in/c.txt")) == {}


def test_the_sweep_fans_out_through_fc2(
    api: tuple[LocalFcApi, LocalFC],
    oss: LocalOSS,
    template_bucket: oss2.Bucket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """AUTOTAG_FANOUT=fc (the template's setting): shard events go out as async invocations via fc2,
    signed with the expiry role's credentials and authorised by its fc:InvokeFunction statement."""
    server, fc = api
    bucket = template_bucket
    monkeypatch.setenv("AUTOTAG_FC_ENDPOINT", server.endpoint)
    monkeypatch.setenv("AUTOTAG_FANOUT", "fc")
    for top in "abcd":
        bucket.put_object(f"{top}/x", b"x", headers={"x-oss-tagging": sealed_header({"stage": "1"}, "stage")})
    assert oss.notifier.drain(600) and fc.drain(600)  # the upload function has tagged them
    oss.clock.advance(timedelta(days=1))  # `stage` is no longer derived: a day later it goes
    event = {
        "triggerTime": oss.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "triggerName": "t",
        "payload": json.dumps({"buckets": [bucket.bucket_name], "shards": 2}),
    }
    result = client(server).invoke_function(
        "oss-autotag-expiry", "tag-expiry", payload=json.dumps(event).encode()
    )
    (dispatch,) = json.loads(result.data)["dispatched"]
    assert len(dispatch["invocations"]) == 2 and all(i["requestId"] for i in dispatch["invocations"])
    assert fc.drain(600)
    shard_runs = [json.loads(r.payload or "{}") for r in fc.results if r.function == "tag-expiry"]
    assert sum(s["sweeps"][0]["listed"] for s in shard_runs) == 4
    assert not any("stage" in tags_of(bucket, f"{top}/x") for top in "abcd")  # no rule derives it now


def test_without_a_service_name_the_python312_fan_out_says_what_to_set(
    oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The python3.12 runtime's context names no service: with AUTOTAG_FC_SERVICE emptied, the sweep
    that would fan out fails in one line naming the variable, instead of invoking a wrong function."""
    document = yaml.safe_load((ROOT / "template.yml").read_text())
    expiry = document["Resources"]["oss-autotag-expiry"]["tag-expiry"]["Properties"]
    assert expiry["Runtime"] == "python3.12"
    expiry["EnvironmentVariables"]["AUTOTAG_FC_SERVICE"] = ""
    for service in document["Resources"].values():
        for body in service.values():
            if isinstance(body, dict) and body.get("Type") == "Aliyun::Serverless::Function":
                body["Properties"]["CodeUri"] = str(ROOT / "functions")
    (tmp_path / "template.yml").write_text(yaml.safe_dump(document))
    fc = LocalFC(load_template(tmp_path / "template.yml"), environment={"AUTOTAG_OSS_ENDPOINT": oss.endpoint})
    with fc, LocalFcApi(fc) as server:
        fc.wire_oss(oss)
        monkeypatch.setenv("AUTOTAG_FC_ENDPOINT", server.endpoint)
        event = {
            "triggerTime": oss.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "triggerName": "t",
            "payload": json.dumps({"buckets": [template_bucket.bucket_name], "shards": 2}),
        }
        result = fc.invoke("tag-expiry", json.dumps(event).encode())
    assert not result.ok
    assert result.error_message.startswith("ConfigurationError: AUTOTAG_FC_SERVICE is not set")
    assert "\n" not in result.error_message


def test_a_role_may_make_only_the_fc_calls_its_policy_grants(api: tuple[LocalFcApi, LocalFC]) -> None:
    server, fc = api

    def as_role(service: str) -> fc2.Client:
        session = session_for(fc.roles[role_arn(service)])
        return fc2.Client(
            endpoint=server.endpoint,
            accessKeyID=session.access_key_id,
            accessKeySecret=session.access_key_secret,
            securityToken=session.security_token,
        )

    def refused(call: Any) -> str:
        with pytest.raises(fc2.fc_exceptions.FcError) as raised:
            call()
        assert (raised.value.status_code, raised.value.err_code) == (403, "AccessDenied")
        return str(json.loads(raised.value.message)["ErrorMessage"])

    expiry = as_role("oss-autotag-expiry")
    # Its own function (the fan-out): allowed, so the handler runs and rejects the empty event itself.
    with pytest.raises(fc2.fc_exceptions.FcError, match="SweepRequestError"):
        expiry.invoke_function("oss-autotag-expiry", "tag-expiry", payload=b"{}")
    message = refused(lambda: expiry.invoke_function("oss-autotag", "tag-on-upload", payload=b"{}"))
    assert message == (
        "the caller is not authorized to perform 'fc:InvokeFunction' on resource "
        "'acs:fc:cn-hangzhou:1234567890123456:services/oss-autotag/functions/tag-on-upload'"
    )
    refused(lambda: expiry.get_function("oss-autotag-expiry", "tag-expiry"))
    refused(lambda: expiry.create_service("mine"))
    upload = as_role("oss-autotag")
    refused(lambda: upload.invoke_function("oss-autotag-expiry", "tag-expiry", payload=b"{}"))
    refused(lambda: upload.list_services())


def test_list_calls_show_what_template_yml_declares_and_page(api: tuple[LocalFcApi, LocalFC]) -> None:
    server, _ = api
    c = client(server)
    # a fresh local FC: nothing looked up first
    services = [s["serviceName"] for s in c.list_services().data["services"]]
    assert services == ["oss-autotag", "oss-autotag-backfill", "oss-autotag-expiry"]
    functions = c.list_functions("oss-autotag").data
    assert [f["functionName"] for f in functions["functions"]] == ["tag-on-upload"]
    triggers = c.list_triggers("oss-autotag", "tag-on-upload").data["triggers"]
    assert [(t["triggerName"], t["triggerType"]) for t in triggers] == [("on-object-created", "oss")]
    assert "oss:ObjectCreated:PutObject" in triggers[0]["triggerConfig"]["events"]
    timers = c.list_triggers("oss-autotag-expiry", "tag-expiry").data["triggers"]
    assert [t["triggerType"] for t in timers] == ["timer"]
    assert c.list_triggers("oss-autotag-backfill", "tag-backfill").data["triggers"] == []  # started by hand
    config = c.get_function_async_invoke_config("oss-autotag", "LATEST", "tag-on-upload").data
    assert config["maxAsyncRetryAttempts"] == 3
    assert config["destinationConfig"]["onFailure"]["destination"].endswith("oss-autotag-dlq/messages")
    for name in ("page-a", "page-b", "page-c"):
        c.create_service(name)
    first = c.list_services(prefix="page-", limit=2).data
    assert [s["serviceName"] for s in first["services"]] == ["page-a", "page-b"]
    rest = c.list_services(prefix="page-", limit=2, nextToken=first["nextToken"]).data
    assert [s["serviceName"] for s in rest["services"]] == ["page-c"] and "nextToken" not in rest


def test_log_tail_comes_back_base64_encoded(api: tuple[LocalFcApi, LocalFC], tmp_path: Path) -> None:
    import base64
    import logging

    server, _ = api
    c = client(server)
    c.create_service("talker")
    source = (
        "import logging\n\ndef handler(event, context):\n    logging.getLogger().warning('said %s', event)\n"
    )
    c.create_function(
        "talker", "speaker", "python3.10", "speaker.handler", codeDir=code_dir(tmp_path, source, "speaker")
    )
    logging.getLogger().setLevel(logging.INFO)
    answer = c.invoke_function("talker", "speaker", payload=b"hi", headers={"x-fc-log-type": "Tail"})
    tail = base64.b64decode(answer.headers["x-fc-log-result"]).decode()
    assert "FC Invoke Start RequestId" in tail and "said b'hi'" in tail
    plain = c.invoke_function("talker", "speaker", payload=b"hi")
    assert "x-fc-log-result" not in plain.headers


@pytest.mark.parametrize("name", ["../../escape", "a/b", "..", "1starts-with-digit", "x" * 129])
def test_names_that_are_not_fc_names_are_refused(
    api: tuple[LocalFcApi, LocalFC], tmp_path: Path, name: str
) -> None:
    server, _ = api
    c = client(server)
    with pytest.raises(fc2.fc_exceptions.FcError) as caught:
        c.create_service(name)
    assert caught.value.status_code in (400, 404)
    c.create_service("named")
    with pytest.raises(fc2.fc_exceptions.FcError) as caught:
        c.create_function("named", name, "python3.10", "m.handler", codeDir=code_dir(tmp_path, GREETER, "m"))
    assert caught.value.status_code in (400, 404)
    assert not any(p.name == "escape" for p in tmp_path.parents[1].iterdir())


def test_a_zip_bomb_is_refused(oss: LocalOSS, tmp_path: Path) -> None:
    import io
    import zipfile

    fc = LocalFC(load_template(ROOT / "template.yml"), dead_letters=DeadLetterStore())
    with fc, LocalFcApi(fc, max_code_unzipped_bytes=1024**2) as server:
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bomb:
            bomb.writestr("m.py", GREETER)
            bomb.writestr("zeros.bin", b"\0" * (2 * 1024**2))  # 2 MiB that zip to 2 KB
        zipped = tmp_path / "bomb.zip"
        zipped.write_bytes(archive.getvalue())
        c = client(server)
        c.create_service("bombed")
        with pytest.raises(fc2.fc_exceptions.FcError) as caught:
            c.create_function("bombed", "m", "python3.10", "m.handler", codeZipFile=str(zipped))
        assert caught.value.status_code == 400 and "unzips to" in str(caught.value)


WHOAMI = (
    "def handler(event, context):\n"
    "    return context.service.name + ' ' + str(context.credentials is not None)\n"
)


def test_same_named_functions_in_two_services_run_apart(
    api: tuple[LocalFcApi, LocalFC], tmp_path: Path
) -> None:
    # FC 2.0 names a function by its service and its name: each runs its own code under its own role.
    server, _ = api
    c = client(server)
    c.create_service("alpha", role=role_arn("oss-autotag"))  # a role the local cloud knows
    c.create_service("beta")  # no role: no credentials
    for service in ("alpha", "beta"):
        module = f"whoami_{service}"
        c.create_function(
            service, "whoami", "python3.10", f"{module}.handler", codeDir=code_dir(tmp_path, WHOAMI, module)
        )
    assert c.invoke_function("alpha", "whoami", payload=b"").data == b"alpha True"
    assert c.invoke_function("beta", "whoami", payload=b"").data == b"beta False"
    assert c.get_function("alpha", "whoami").data["handler"] == "whoami_alpha.handler"
    c.delete_function("beta", "whoami")
    assert c.invoke_function("alpha", "whoami", payload=b"").data == b"alpha True"


def test_a_same_named_function_in_another_service_leaves_the_template_one_alone(
    api: tuple[LocalFcApi, LocalFC], oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    server, fc = api
    c = client(server)
    c.create_service("elsewhere")
    c.create_function(
        "elsewhere",
        "tag-on-upload",
        "python3.10",
        "impostor.handler",
        codeDir=code_dir(tmp_path, "def handler(event, context):\n    return 'impostor'\n", "impostor"),
    )
    template_bucket.put_object("in/a.txt", b"x")  # template.yml's OSS trigger still runs its function
    assert oss.notifier.drain(600) and fc.drain(600)
    assert tags_of(template_bucket, "in/a.txt")["kind"] == "text"
    assert c.get_function("oss-autotag", "tag-on-upload").data["handler"] == "tag_on_upload.handler"
    assert c.invoke_function("elsewhere", "tag-on-upload", payload=b"{}").data == b"impostor"
    c.delete_function("elsewhere", "tag-on-upload")
    template_bucket.put_object("in/b.txt", b"x")
    assert oss.notifier.drain(600) and fc.drain(600)
    assert tags_of(template_bucket, "in/b.txt")["kind"] == "text"


def test_a_sync_invocations_request_id_is_the_functions(
    api: tuple[LocalFcApi, LocalFC], tmp_path: Path
) -> None:
    """FC answers a synchronous invocation with X-Fc-Request-Id, the id it gives the function
    (context.request_id) and its log lines carry: the one to look an invocation's log up by
    (https://www.alibabacloud.com/help/doc-detail/53251.html: "can be used for troubleshooting")."""
    server, _ = api
    c = client(server)
    c.create_service("ids")
    source = "def handler(event, context):\n    return context.request_id\n"
    c.create_function(
        "ids", "teller", "python3.10", "teller.handler", codeDir=code_dir(tmp_path, source, "teller")
    )
    answer = c.invoke_function("ids", "teller", payload=b"", headers={"x-fc-log-type": "Tail"})
    header = answer.headers["x-fc-request-id"]
    assert answer.data.decode() == header
    assert (
        f"FC Invoke Start RequestId: {header}" in base64.b64decode(answer.headers["x-fc-log-result"]).decode()
    )
