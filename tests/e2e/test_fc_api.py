"""The local FC API, through the real aliyun-fc2 client: signatures, CRUD, sync and async invocation,
and triggers created through the API wired to the local OSS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import fc2
import oss2
import pytest
from conftest import LONG_TERM, STS, readable, sealed_header, tags_of

from localcloud.fc import DeadLetterStore, LocalFC, load_template
from localcloud.fc.api import LocalFcApi
from localcloud.oss import LocalOSS

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
    assert fc.drain(10)
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
    c.create_service("grumpy")
    c.create_function(
        "grumpy",
        "refuser",
        "python3.10",
        "api_refuser.handler",
        codeDir=code_dir(tmp_path, FAILING, "api_refuser"),
    )
    c.put_function_async_invoke_config("grumpy", "LATEST", "refuser", {"maxAsyncRetryAttempts": 1})
    with pytest.raises(fc2.fc_exceptions.FcError, match="no thanks: now"):
        c.invoke_function("grumpy", "refuser", payload=b"now")
    c.invoke_function("grumpy", "refuser", payload=b"later", headers={"x-fc-invocation-type": "Async"})
    assert fc.drain(10)
    (letter,) = fc.dead_letters.all()
    assert (letter.function, letter.attempts, letter.payload) == ("refuser", 2, "later")


def test_an_oss_trigger_created_through_the_api_tags_uploads(
    api: tuple[LocalFcApi, LocalFC], oss: LocalOSS, bucket: oss2.Bucket
) -> None:
    server, fc = api
    c = client(server)
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
    assert oss.notifier.drain(10) and fc.drain(20)
    assert tags_of(bucket, "in/a.txt")["kind"] == "text"
    assert readable(tags_of(bucket, "out/b.txt")) == {}
    assert [t["triggerName"] for t in c.list_triggers("oss-autotag", "tag-on-upload").data["triggers"]] == [
        "api-trigger"
    ]
    c.delete_trigger("oss-autotag", "tag-on-upload", "api-trigger")
    bucket.put_object("in/c.txt", b"x")
    assert oss.notifier.drain(10) and fc.drain(20)
    assert readable(tags_of(bucket, "in/c.txt")) == {}


def test_the_sweep_fans_out_through_fc2(
    api: tuple[LocalFcApi, LocalFC], oss: LocalOSS, bucket: oss2.Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AUTOTAG_FANOUT=fc (the template's setting): shard events go out as async invocations via fc2."""
    server, fc = api
    monkeypatch.setenv("AUTOTAG_FC_ENDPOINT", server.endpoint)
    monkeypatch.setenv("AUTOTAG_FANOUT", "fc")
    for top in "abcd":
        bucket.put_object(f"{top}/x", b"x", headers={"x-oss-tagging": sealed_header({"stage": "1"}, "stage")})
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
    assert fc.drain(30)
    shard_runs = [json.loads(r.payload or "{}") for r in fc.results if r.function == "tag-expiry"]
    assert sum(s["sweeps"][0]["listed"] for s in shard_runs) == 4
    assert all(
        readable(tags_of(bucket, f"{top}/x")) == {} for top in "abcd"
    )  # no rule derives `stage` any more
