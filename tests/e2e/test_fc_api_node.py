"""The local FC API through the official Node.js SDK, `@alicloud/fc2` (what Funcraft deploys with): it signs
a base64 of the body's hex MD5 digest as Content-MD5, where aliyun-fc2 sends none.

The SDK is installed once with npm into a cache folder outside the repository (tests/node_sdk.py): without
node, npm or the npm registry the test is skipped, unless AUTOTAG_REQUIRE_NODE_SDK=1 (.ci/run sets it)."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import fc2
import pytest
import requests
from conftest import STS
from node_sdk import install

from localcloud.fc import DeadLetterStore, LocalFC, load_template
from localcloud.fc.api import LocalFcApi
from localcloud.oss import LocalOSS

ROOT = Path(__file__).parents[2]
NODE_SDK = "@alicloud/fc2@2.6.6"

# Create, read, update and invoke a function, as Funcraft's deploy and `fun invoke` do; prints what it saw.
SCRIPT = r"""
const FC = require('@alicloud/fc2');
const [endpoint, keyId, secret, token, zip] = process.argv.slice(2);
const client = new FC('1234567890', {
  accessKeyID: keyId, accessKeySecret: secret, securityToken: token, region: 'cn-hangzhou',
  endpoint: endpoint, timeout: 30000,
});
(async () => {
  const seen = {};
  await client.createService('node-greetings', {description: 'made by @alicloud/fc2'});
  seen.created = (await client.createFunction('node-greetings', {
    functionName: 'greeter', runtime: 'python3.10', handler: 'node_greeter.handler',
    code: {zipFile: zip}, description: 'first',
  })).data.functionName;
  seen.updated = (await client.updateFunction('node-greetings', 'greeter', {description: 'second'}))
    .data.description;
  seen.got = (await client.getFunction('node-greetings', 'greeter')).data.description;
  seen.sync = (await client.invokeFunction('node-greetings', 'greeter', 'you')).data;
  seen.async = (await client.invokeFunction('node-greetings', 'greeter', 'later',
    {'x-fc-invocation-type': 'Async'})).headers['x-fc-request-id'];
  console.log(JSON.stringify(seen));
})().catch((error) => { console.error(String(error)); process.exit(1); });
"""
GREETER = "def handler(event, context):\n    return 'hello ' + event.decode()\n"


@pytest.fixture(scope="session")
def node_sdk() -> Path:
    """The node_modules folder holding @alicloud/fc2."""
    return install(NODE_SDK)


@pytest.fixture
def api(oss: LocalOSS) -> Iterator[tuple[LocalFcApi, LocalFC]]:
    fc = LocalFC(load_template(ROOT / "template.yml"), dead_letters=DeadLetterStore())
    with fc, LocalFcApi(fc) as server:
        yield server, fc


def _zip(source: str, module: str) -> str:
    import io
    import zipfile

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as code:
        code.writestr(f"{module}.py", source)
    return base64.b64encode(archive.getvalue()).decode()


def test_the_node_sdk_creates_updates_and_invokes(
    node_sdk: Path, api: tuple[LocalFcApi, LocalFC], tmp_path: Path
) -> None:
    server, fc = api
    script = tmp_path / "funcraft_like.js"
    script.write_text(SCRIPT)
    credentials = [STS.access_key_id, STS.access_key_secret, STS.security_token or ""]
    done = subprocess.run(
        ["node", str(script), server.endpoint, *credentials, _zip(GREETER, "node_greeter")],
        capture_output=True,
        text=True,
        env={**os.environ, "NODE_PATH": str(node_sdk)},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["created"] == "greeter"
    assert seen["updated"] == seen["got"] == "second"
    assert seen["sync"] == "hello you"
    assert fc.drain(600)
    assert [r.payload for r in fc.results if r.request_id == seen["async"]] == ["hello later"]


@pytest.mark.parametrize(
    "digest",
    [
        lambda body: base64.b64encode(hashlib.md5(body).digest()).decode(),  # as FC documents it
        lambda body: base64.b64encode(hashlib.md5(body).hexdigest().encode()).decode(),  # @alicloud/fc2
    ],
    ids=["raw-digest", "hex-digest"],
)
def test_a_replayed_invoke_with_another_payload_is_refused_in_either_form(
    api: tuple[LocalFcApi, LocalFC], digest: object
) -> None:
    server, fc = api
    path = "/2016-08-15/services/oss-autotag/functions/tag-on-upload/invocations"
    signed_body = b'{"events": []}'
    headers = {
        "date": email.utils.formatdate(usegmt=True),
        "content-type": "application/octet-stream",
        "content-md5": digest(signed_body),  # type: ignore[operator]
        "x-fc-invocation-type": "Async",
        "x-fc-security-token": STS.security_token or "",
    }
    headers["authorization"] = fc2.auth.Auth(
        STS.access_key_id, STS.access_key_secret, STS.security_token
    ).sign_request("POST", path, headers)
    before = fc.invocations
    forged = requests.post(
        server.endpoint + path, data=b'{"events": [{"forged": 1}]}', headers=headers, timeout=10
    )
    assert forged.status_code == 400 and forged.json()["ErrorCode"] == "InvalidArgument"
    assert fc.drain(600) and fc.invocations == before
    genuine = requests.post(server.endpoint + path, data=signed_body, headers=headers, timeout=10)
    assert genuine.status_code == 202
