"""Credentials never leave the function: not in logs, summaries, dead letters or checkpoints of a full
run through every path (uploads, a failure dead-lettered and replayed, the sweep)."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import oss2
import pytest
from click.testing import CliRunner
from conftest import STS, TEMPLATE_STATE_BUCKET

import autotag.handlers.clients  # noqa: F401 - as on FC: the function is loaded before any request
from autotag_cli.events import oss_event_document
from autotag_cli.main import cli
from autotag_cli.replay import with_provenance
from localcloud.fc import DeadLetterStore, LocalFC, load_template
from localcloud.oss import FaultRule, LocalOSS
from localcloud.ram import session_for

ROOT = Path(__file__).parents[2]
TEMPLATE = str(ROOT / "template.yml")
SECRETS = [STS.access_key_secret, STS.security_token or ""]


def test_a_full_run_shows_no_secret(
    oss: LocalOSS, tmp_path: Path, caplog: pytest.LogCaptureFixture, template_bucket: oss2.Bucket
) -> None:
    store = tmp_path / "dead-letters.jsonl"
    fc = LocalFC(
        load_template(ROOT / "template.yml"),
        environment={"AUTOTAG_OSS_ENDPOINT": oss.endpoint, "AUTOTAG_FANOUT": "in-process"},
        dead_letters=DeadLetterStore(store),
        retry_base_seconds=0.01,
    )
    bucket = template_bucket
    with caplog.at_level(logging.DEBUG), fc:
        fc.wire_oss(oss)
        bucket.put_object("tmp/a.csv", b"x", headers={"x-oss-tagging": "team=t"})
        oss.conditions.set_faults([FaultRule("error", 1.0, frozenset({"GetObjectTagging", "HeadObject"}))])
        bucket.put_object("b.jpg", b"x")
        assert oss.notifier.drain(600) and fc.drain(600)
        oss.conditions.set_faults([])
        for letter in fc.dead_letters.all():
            fc.invoke(letter.function, with_provenance(letter))
        oss.clock.advance(timedelta(days=8))
        fc.fire_timer("tag-expiry", at=oss.clock.now())
        assert fc.drain(600)
    seen = [r.getMessage() for r in caplog.records] + [r.payload or "" for r in fc.results]
    seen += [r.error_message for r in fc.results] + [store.read_text()]
    state = oss2.Bucket(bucket.auth, oss.endpoint, TEMPLATE_STATE_BUCKET)  # the sweep's checkpoints, leases
    for holder in (bucket, state):
        seen += [
            holder.get_object(o.key).read().decode() for o in oss2.ObjectIterator(holder, prefix=".autotag/")
        ]
    assert any("tagged" in text for text in seen) and store.read_text()  # the run did produce all of these
    assert any('"seal"' in text for text in seen)  # the sweep's sealed state was among them
    for secret in SECRETS:
        assert secret and not [text for text in seen if secret in text]


# ---- error paths: an FC endpoint refusing every call ----------------------------------------------------

STS_ENV = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": STS.access_key_id,
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": STS.access_key_secret,
    "ALIBABA_CLOUD_SECURITY_TOKEN": STS.security_token or "",
}
# Signatures and credential headers, however an SDK or a log line spells them.
CREDENTIAL_PATTERNS = [
    re.compile(r"(?i)['\"]?authorization['\"]?\s*[:=]"),
    re.compile(r"(?i)x-(?:fc|oss)-security-token['\"]?\s*[:=]"),
    re.compile(r"\b(?:FC|OSS) [\w.\-]+:[A-Za-z0-9+/=]{16,}"),
    re.compile(r"(?i)string ?to ?sign"),
]


class _Refusing(BaseHTTPRequestHandler):
    status = 500

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = json.dumps({"ErrorCode": "Refused", "ErrorMessage": f"refused with {self.status}"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-fc-request-id", "req-refused")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(params=[403, 404, 429, 500, 503])
def refusing_fc(request: pytest.FixtureRequest) -> Iterator[str]:
    handler = type("Refusing", (_Refusing,), {"status": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def assert_no_credentials(texts: list[str], secrets: list[str]) -> None:
    joined = "\n".join(texts)
    for secret in secrets:
        assert secret not in joined, (
            f"a secret appears in: {joined[max(0, joined.find(secret) - 300) :][:600]}"
        )
    for pattern in CREDENTIAL_PATTERNS:
        found = pattern.search(joined)
        assert found is None, f"{pattern.pattern!r} in: {joined[max(0, found.start() - 300) :][:600]}"


def cli_texts(args: list[str], env: dict[str, str]) -> list[str]:
    result = CliRunner().invoke(cli, ["--debug", *args], env={**STS_ENV, **env})
    texts = [result.output]
    if result.exc_info is not None:
        texts.append("".join(traceback.format_exception(*result.exc_info)))
    return texts


def test_fc_refusals_reach_no_log_or_output_with_credentials(
    refusing_fc: str,
    oss: LocalOSS,
    template_bucket: oss2.Bucket,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # backfill's checkpoint and report (.localcloud/backfill/) land here
    event = tmp_path / "event.json"
    event.write_text(json.dumps(oss_event_document("autotag-demo", "a.jpg")))
    template_bucket.put_object("a.jpg", b"x")
    texts: list[str] = []
    with caplog.at_level(logging.DEBUG):
        texts += cli_texts(["deploy", "--template", TEMPLATE, "--fc-endpoint", refusing_fc, "--dry-run"], {})
        texts += cli_texts(
            [
                "invoke",
                "tag-on-upload",
                "-e",
                str(event),
                "--template",
                TEMPLATE,
                "--remote",
                "--fc-endpoint",
                refusing_fc,
            ],
            {},
        )
        # The sweep's fan-out, refused by FC: the invocation fails, is retried and dead-lettered.
        fc = LocalFC(
            load_template(TEMPLATE),
            environment={
                "AUTOTAG_OSS_ENDPOINT": oss.endpoint,
                "AUTOTAG_FANOUT": "fc",
                "AUTOTAG_FC_ENDPOINT": refusing_fc,
            },
            dead_letters=DeadLetterStore(tmp_path / "dl.jsonl"),
            retry_base_seconds=0.01,
        )
        with fc:
            fc.wire_oss(oss)
            template_bucket.put_object("b/c.jpg", b"x")
            timer = {
                "triggerTime": "2026-01-01T00:00:00Z",
                "triggerName": "t",
                "payload": '{"buckets": ["autotag-demo"], "shards": 2}',
            }
            fc.invoke_async("tag-expiry", json.dumps(timer).encode())
            assert oss.notifier.drain(600) and fc.drain(600)
        failures = [r.error_message for r in fc.results if not r.ok]
        assert failures and all("FanOutError: FC refused" in f for f in failures), failures
        texts += [*failures, (tmp_path / "dl.jsonl").read_text()]
    texts += [record.getMessage() for record in caplog.records]
    secrets = [STS.access_key_secret, STS.security_token or ""]
    secrets += [
        s
        for role in fc.roles.values()
        for s in (session_for(role).access_key_secret, session_for(role).security_token)
    ]
    assert_no_credentials(texts, secrets)


# ---- --debug: the traceback a user pastes into a ticket ---------------------------------------------------

WRONG_STS_SECRET = "wrong-sts-secret-0f9e8d"
DEBUGGED_COMMANDS = {
    "plan": ["plan", "--bucket", "autotag-demo", "--key", "a.jpg"],
    "sweep": ["sweep", "--bucket", "autotag-demo"],
    "sweep --dry-run": ["sweep", "--bucket", "autotag-demo", "--dry-run"],
    "backfill": ["backfill", "--bucket", "autotag-demo", "--template", TEMPLATE],
    "event oss --from-oss": ["event", "oss", "--bucket", "autotag-demo", "--key", "a.jpg", "--from-oss"],
}


@pytest.mark.parametrize("command", sorted(DEBUGGED_COMMANDS))
def test_debug_shows_where_it_failed_but_no_token_and_ends_with_the_error_line(
    command: str, oss: LocalOSS, template_bucket: oss2.Bucket, tmp_path: Path
) -> None:
    """OSS answers a wrong STS secret with SignatureDoesNotMatch and the string it signed, which holds the
    security token; oss2 puts that in its exception's text. --debug shows the traceback without it."""
    template_bucket.put_object("a.jpg", b"x")
    autotag = Path(sys.executable).with_name("autotag")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ALIBABA_CLOUD_", "AUTOTAG_"))},
        **STS_ENV,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": WRONG_STS_SECRET,
        "AUTOTAG_OSS_ENDPOINT": oss.endpoint,
        "HOME": str(tmp_path),
    }
    done = subprocess.run(
        [str(autotag), "--debug", *DEBUGGED_COMMANDS[command]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3, done.stdout + done.stderr  # credentials refused
    assert "Traceback (most recent call last)" in done.stderr  # --debug still shows where
    assert "SignatureDoesNotMatch" in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "SignatureDoesNotMatch, HTTP 403" in last, done.stderr
    assert_no_credentials([done.stdout, done.stderr], [STS.security_token or "", WRONG_STS_SECRET])
