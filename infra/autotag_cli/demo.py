"""`autotag demo`: the main job, end to end on the local cloud.

A local OSS, and the local FC running template.yml: its OSS trigger invokes tag-on-upload asynchronously
for every delivered event, its timer trigger fires tag-expiry. Objects are uploaded through every upload
path, with and without uploader tags; the demo shows each object's tags, what the function did per event
and the OSS requests it spent; moves the local cloud's clock 8 days on, fires the timer and shows the stale
tags gone; then makes one upload fail until it is dead-lettered, and replays it."""

from __future__ import annotations

import json
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
import oss2
import requests
from rich.console import Console

from localcloud.fc import DeadLetterStore, LocalFC, load_template
from localcloud.oss import DEFAULT_CREDENTIALS, FaultRule, LocalOSS
from localcloud.oss.postform import signed_form

from .console import Table, counted
from .replay import with_provenance

BUCKET = "autotag-demo"
TEMPLATE = Path(__file__).resolve().parents[2] / "template.yml"
CREATED_EVENTS = [
    "oss:ObjectCreated:PutObject",
    "oss:ObjectCreated:PostObject",
    "oss:ObjectCreated:CopyObject",
    "oss:ObjectCreated:AppendObject",
    "oss:ObjectCreated:CompleteMultipartUpload",
    "oss:ObjectCreated:PutSymlink",
]


def _tags(bucket: oss2.Bucket, key: str) -> str:
    rule = bucket.get_object_tagging(key).tag_set.tagging_rule
    return ", ".join(f"{k}={v}" for k, v in rule.items()) or "—"


def _upload_everything(
    bucket: oss2.Bucket, endpoint: str, workdir: Path, settle: Callable[[], None]
) -> dict[str, str]:
    """One object per upload path; returns key -> how it was uploaded (with the uploader's own tags).
    `settle` waits for the functions, so the second append's event finds the first one's tags."""
    paths = {}
    bucket.put_object(
        "projects/apollo/photo 1+2.jpg",
        b"j" * 2048,
        headers={"x-oss-tagging": "team=media", "x-oss-meta-owner": "ann"},
    )
    paths["projects/apollo/photo 1+2.jpg"] = "PutObject, uploader tag team=media, meta owner=ann"
    form = signed_form(DEFAULT_CREDENTIALS[1], "incoming/${filename}")
    requests.post(
        f"{endpoint}/{BUCKET}/",
        data=form,
        files={"file": ("scan.pdf", b"%PDF", "application/pdf")},
        timeout=30,
    ).raise_for_status()
    paths["incoming/scan.pdf"] = "PostObject (browser form)"
    bucket.copy_object(BUCKET, "projects/apollo/photo 1+2.jpg", "archive/photo.jpg")
    paths["archive/photo.jpg"] = "CopyObject, tags copied (COPY)"
    bucket.copy_object(
        BUCKET,
        "projects/apollo/photo 1+2.jpg",
        "archive/photo-v2.jpg",
        headers={"x-oss-tagging-directive": "REPLACE", "x-oss-tagging": "stage=final"},
    )
    paths["archive/photo-v2.jpg"] = "CopyObject, REPLACE with stage=final"
    bucket.append_object("logs/app.log", 0, b"line 1\n", headers={"x-oss-tagging": "kind=applog"})
    settle()
    bucket.append_object("logs/app.log", 7, b"line 2\n")
    paths["logs/app.log"] = "AppendObject x2, first append tagged kind=applog"
    upload = bucket.init_multipart_upload("video/clip.mp4")
    part = bucket.upload_part("video/clip.mp4", upload.upload_id, 1, b"v" * 4096)
    bucket.complete_multipart_upload("video/clip.mp4", upload.upload_id, [oss2.models.PartInfo(1, part.etag)])
    paths["video/clip.mp4"] = "multipart (initiate, part, complete)"
    big = workdir / "dataset.csv"
    big.write_bytes(b"a,b\n" * 60_000)
    oss2.resumable_upload(
        bucket,
        "tmp/dataset.csv",
        str(big),
        multipart_threshold=100 * 1024,
        part_size=100 * 1024,
        store=oss2.ResumableStore(root=str(workdir)),
    )
    paths["tmp/dataset.csv"] = "resumable upload (3 parts)"
    bucket.put_symlink("projects/apollo/photo 1+2.jpg", "latest.jpg")
    paths["latest.jpg"] = "PutSymlink (the link is tagged)"
    return paths


@click.command()
@click.option(
    "--console/--no-console",
    "with_console",
    default=None,
    help="After the demo, keep its local cloud up with the browser console (docs/console.md) until Ctrl-C, "
    "and print the console's one-time login link. Default: when run from a terminal.",
)
def demo(with_console: bool | None) -> None:
    """Run the whole pipeline on an in-process local cloud: local OSS + local FC running template.yml."""
    if with_console is None:  # someone at a terminal can open it; a script wants the demo to end
        with_console = sys.stdin.isatty() and sys.stdout.isatty()
    console = Console()
    with LocalOSS() as server, tempfile.TemporaryDirectory() as workdir:
        fc = LocalFC(
            load_template(TEMPLATE),
            environment={"AUTOTAG_OSS_ENDPOINT": server.endpoint, "AUTOTAG_FANOUT": "in-process"},
            dead_letters=DeadLetterStore(Path(workdir) / "dead-letters.jsonl"),
            retry_base_seconds=0.05,
            clock=server.clock,  # one clock: moving it moves OSS's Date and the timers together
        )
        credential = DEFAULT_CREDENTIALS[1]
        auth = oss2.StsAuth(
            credential.access_key_id, credential.access_key_secret, credential.security_token or ""
        )
        bucket = oss2.Bucket(auth, server.endpoint, BUCKET)
        bucket.create_bucket()
        invocation_log = Path(workdir) / "invocations.jsonl"
        if with_console:  # from the first upload on: the console lists the demo's invocations
            _log_invocations(fc, invocation_log)
        with fc:
            fc.wire_oss(server)
            console.print(
                f"[bold]local OSS[/] at {server.endpoint}; [bold]local FC[/] runs template.yml: "
                f"{', '.join(fc.template.functions)} (OSS trigger → tag-on-upload, timer → tag-expiry)"
            )

            def settle() -> None:
                server.notifier.drain(60)
                fc.drain(120)

            paths = _upload_everything(bucket, server.endpoint, Path(workdir), settle)
            server.notifier.drain(60)
            fc.drain(120)
            results = [
                r
                for done in fc.results
                if done.function == "tag-on-upload" and done.ok
                for r in json.loads(done.payload or "{}").get("results", [])
            ]
            _show_uploads(console, bucket, paths, results)
            _expire_later(console, fc, server, bucket, paths)
            _dead_letter_and_replay(console, fc, server, bucket)
            if with_console:
                _serve_console(fc, server, Path(workdir), invocation_log)
            else:
                console.print(
                    "[bold]console[/]: the same in a browser — objects and their tags, invocations, dead "
                    "letters, functions, rules, bulk work: `autotag demo --console` keeps this local cloud "
                    "up and prints the console's login link; `autotag local up` serves it too "
                    "(docs/console.md)"
                )
        failed = [r for r in fc.results if not r.ok]
        if len(failed) != 1:  # exactly the one the demo provokes, dead-lettered and then replayed
            for result in failed:
                console.print(f"[red]{result.function} failed: {result.error_message}[/]")
            raise SystemExit(1)


def _show_uploads(
    console: Console, bucket: oss2.Bucket, paths: dict[str, str], results: list[dict[str, Any]]
) -> None:
    objects = Table(title="objects after upload: tags read back through oss2")
    for column in ("key", "uploaded by", "tags"):
        objects.add_column(column)
    for key, how in paths.items():
        objects.add_row(key, how, _tags(bucket, key))
    console.print(objects)
    events = Table(title="what tag-on-upload did, per event")
    for column in ("event", "key", "outcome", "tags added", "requests"):
        events.add_column(column)
    notes = []
    for result in sorted(results, key=lambda r: (r["key"], r["eventName"])):
        events.add_row(
            result["eventName"].split(":")[1],
            result["key"],
            result["outcome"],
            ", ".join(f"{k}={v}" for k, v in result["added"].items()) or "—",
            str(result["ossRequests"]),
        )
        notes += [
            f"{result['key']}: {d['key']}={d['value']} not applied: {d['reason']}" for d in result["dropped"]
        ]
    console.print(events)
    for note in dict.fromkeys(notes):
        console.print(f"  {note}")
    outcomes = Counter(r["outcome"] for r in results)
    spent = sum(r["ossRequests"] for r in results)
    console.print(
        f"{counted(len(results), 'event')} for {counted(len(paths), 'object')} "
        f"({', '.join(f'{n} {o}' for o, n in outcomes.items())}); "
        f"{spent} OSS requests, {spent / max(len(results), 1):.2f} per event"
    )


def _expire_later(
    console: Console, fc: LocalFC, server: LocalOSS, bucket: oss2.Bucket, paths: dict[str, str]
) -> None:
    """Move the local cloud 8 days on and fire the expiry timer: the 7-day `lifecycle` tag of tmp/ objects
    goes (a sweep's clock is never ahead of OSS's, so the cloud's clock moves, not the trigger time)."""
    server.clock.advance(timedelta(days=8))
    later = server.clock.now()
    request_id = fc.fire_timer("tag-expiry")
    fc.drain(120)
    server.notifier.drain(30)
    fc.drain(60)  # the sweep's checkpoint objects fire upload events too; they are ignored
    (done,) = [r for r in fc.results if r.request_id == request_id]
    if not done.ok:
        raise click.ClickException(f"the sweep failed: {done.error_message}")
    (report,) = json.loads(done.payload or "{}")["sweeps"]
    console.print(
        f"[bold]timer → tag-expiry[/] at triggerTime {later:%Y-%m-%dT%H:%M:%SZ} ({report['mode']} pass): "
        f"{counted(report['listed'], 'object')} listed, {report['candidates']} read, "
        f"{counted(report['tagsRemoved'], 'stale tag')} removed, "
        f"{counted(report['ossRequests'], 'OSS request')}"
    )
    removed = Table(title="stale tags removed by the sweep")
    for column in ("key", "removed", "why", "tags now"):
        removed.add_column(column)
    for result in report["objects"]:
        removed.add_row(
            result["key"],
            ", ".join(f"{r['key']}={r['value']}" for r in result["removed"]),
            "; ".join(r["reason"] for r in result["removed"]),
            _tags(bucket, result["key"]),
        )
    console.print(removed)
    untouched = [k for k in paths if k not in {r["key"] for r in report["objects"]}]
    console.print(f"{counted(len(untouched), 'other object')} untouched")


def _dead_letter_and_replay(console: Console, fc: LocalFC, server: LocalOSS, bucket: oss2.Bucket) -> None:
    """OSS throttles every tagging read while one upload happens: the invocation fails, FC retries it 3
    times, then it lands in the dead-letter store; `autotag replay` re-drives it once OSS is well."""
    server.conditions.set_faults([FaultRule("throttle", 1.0, frozenset({"GetObjectTagging", "HeadObject"}))])
    bucket.put_object("incoming/late.csv", b"a,b\n", headers={"x-oss-meta-owner": "dee"})
    server.notifier.drain(30)
    fc.drain(120)
    server.conditions.set_faults([])
    letters = fc.dead_letters.all()
    for letter in letters:
        console.print(
            f"[bold]dead letter[/] {letter.function} for {letter.request_id} after {letter.attempts} "
            f"attempts: {letter.error_message}"
        )
        result = fc.invoke(letter.function, with_provenance(letter))
        summary = json.loads(result.payload or "{}")["results"][0] if result.ok else {}
        console.print(
            f"[bold]autotag replay[/] → {summary.get('outcome', result.error_message)} "
            f"(replayOf {summary.get('replayOf')}); tags now: {_tags(bucket, 'incoming/late.csv')}"
        )
    if len(letters) != 1 or "kind" not in bucket.get_object_tagging("incoming/late.csv").tag_set.tagging_rule:
        raise click.ClickException("the dead-lettered upload was not replayed")


def _log_invocations(fc: LocalFC, invocation_log: Path) -> None:
    """Write each invocation to `invocation_log`, as `autotag local up` does, for the console to list."""
    import logging

    from autotag.settings import DEFAULT_STATE_PREFIX

    from .invocation_file import FunctionLog, InvocationLogWriter

    function_log = FunctionLog()
    logging.getLogger().addHandler(function_log)
    fc.observers.append(InvocationLogWriter(invocation_log, function_log, DEFAULT_STATE_PREFIX))


def _serve_console(fc: LocalFC, server: LocalOSS, workdir: Path, invocation_log: Path) -> None:
    """Keep the demo's local cloud up with the FC API and the console over it, until Ctrl-C."""
    import contextlib
    import threading

    from autotag.settings import DEFAULT_STATE_PREFIX
    from localcloud.fc.api import LocalFcApi

    from .local import _console

    dead_letters = fc.dead_letters.path or workdir / "dead-letters.jsonl"
    with LocalFcApi(fc, region=server.region) as api:
        web = _console(
            fc.template,
            fc,
            server.endpoint,
            api.endpoint,
            server.region,
            invocation_log,
            DEFAULT_STATE_PREFIX,
            0,
            dead_letters=dead_letters,
            oss_admin_token=server.admin_token or "",
            data_dir=workdir / "console",
            cloudflow_endpoint="",
        )
        with web:
            # plain, unwrapped lines: the link must stay whole to be clicked or copied
            click.echo(f"console ready at {web.address} (127.0.0.1 only); sign in once at {web.login_link}")
            click.echo("Ctrl-C stops the demo's local cloud.")
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
