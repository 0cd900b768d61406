"""Shared fixtures: a local OSS on a free port, and oss2 clients of every signing flavour for it; and a
guard that the run leaves the working tree as it found it (tests write into their tmp_path, never into the
repository: a backfill's default checkpoint or report, a dead-letter store, `.localcloud/`)."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING

import oss2
import pytest
import yaml
from hypothesis import settings as hypothesis_settings

from autotag.handlers import rules_source
from autotag.oss_tags import encode_tagging_header
from autotag.ownership import Ownership, ownership_record, read_record
from localcloud.fc import load_template, role_credentials
from localcloud.fc.variants import delivery_variant
from localcloud.oss import DEFAULT_CREDENTIALS, LocalOSS

# No property test may depend on the machine's speed: hypothesis' default 200 ms deadline per example
# failed on a loaded 2-core machine (a whole suite run beside busy processes), so there is none.
hypothesis_settings.register_profile("autotag", deadline=None)
hypothesis_settings.load_profile("autotag")

if TYPE_CHECKING:  # the V2 SDK is a dev dependency, absent from the FC-runtime (Python 3.10) test run
    import alibabacloud_oss_v2

LONG_TERM, STS = DEFAULT_CREDENTIALS
ROOT = Path(__file__).parents[1]
REGION = "cn-hangzhou"

# What a run may add to the working tree: interpreters', linters' and hypothesis's caches, the set-up.
_CACHES = frozenset(
    {".git", ".venv", ".venv310", ".venv312", "__pycache__", ".hypothesis", ".pytest_cache", ".mypy_cache"}
    | {".ruff_cache", ".cache", "node_modules", "oss_autotag.egg-info"}
)


def _working_tree_files() -> set[str]:
    found = set()
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [name for name in subfolders if name not in _CACHES]
        found.update(os.path.relpath(os.path.join(folder, name), ROOT) for name in files)
    return found


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # once, in the process that runs (or hands out) tests
        session.config.stash[_BEFORE] = _working_tree_files()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.config.stash.get(_BEFORE, None)
    if before is None:
        return
    added = sorted(_working_tree_files() - before)
    if added:
        shown = ", ".join(added[:10]) + (f" and {len(added) - 10} more" if len(added) > 10 else "")
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"the tests wrote into the working tree {ROOT}: {shown}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_BEFORE = pytest.StashKey[set[str]]()


def make_auth(kind: str) -> oss2.AuthBase:
    """`v1`, `v4`, `sts-v1` or `sts-v4` signing with the local OSS's default credentials."""
    version = oss2.AUTH_VERSION_4 if kind.endswith("v4") else oss2.AUTH_VERSION_1
    if kind.startswith("sts"):
        return oss2.StsAuth(
            STS.access_key_id, STS.access_key_secret, STS.security_token, auth_version=version
        )
    return oss2.make_auth(LONG_TERM.access_key_id, LONG_TERM.access_key_secret, version)


@pytest.fixture(autouse=True)
def fresh_rules_caches() -> None:
    """Each test's functions start as a new deployment's instances do: with no rules read yet. Function
    instances keep rules kept in OSS for AUTOTAG_RULES_MAX_AGE seconds, and this process hosts every test's
    functions: one test's version (read under its role, from its server) must not stand in for another's."""
    rules_source._caches.clear()


@pytest.fixture(scope="session")
def local_oss() -> Iterator[LocalOSS]:
    """A local OSS that, like `autotag local up`, accepts the credentials of template.yml's roles: what a
    function run in-process (`autotag invoke`) signs with, authorised against its service's Policies."""
    roles = role_credentials(load_template(ROOT / "template.yml").roles.values())
    with LocalOSS(credentials=[*DEFAULT_CREDENTIALS, *roles]) as server:
        yield server


@pytest.fixture
def oss(local_oss: LocalOSS) -> Iterator[LocalOSS]:
    """The session's server with no faults, latency, hooks, clock offset or subscriptions left over from
    another test."""
    yield local_oss
    local_oss.clock.offset = timedelta(0)
    local_oss.conditions.hooks.clear()
    local_oss.conditions.set_faults([])
    local_oss.conditions.latency_seconds = 0
    for subscription in local_oss.notifier.subscriptions():
        local_oss.notifier.unsubscribe(subscription.id)


BucketFactory = Callable[..., oss2.Bucket]


@pytest.fixture
def new_bucket(oss: LocalOSS, monkeypatch: pytest.MonkeyPatch) -> BucketFactory:
    """Creates a bucket with a unique name; `auth` picks the signing flavour of the returned client. The
    bucket joins AUTOTAG_BUCKETS for the test, as a deployment for it would list it: a handler run in this
    process acts on it (the local FC sets the variable from its template instead)."""

    def create(auth: str = "v1", versioning: str = "") -> oss2.Bucket:
        name = f"t-{uuid.uuid4().hex[:16]}"
        bucket = oss2.Bucket(make_auth(auth), oss.endpoint, name, region=REGION)
        bucket.create_bucket()
        listed = os.environ.get("AUTOTAG_BUCKETS", "")
        monkeypatch.setenv("AUTOTAG_BUCKETS", f"{listed},{name}" if listed else name)
        if versioning:
            config = oss2.models.BucketVersioningConfig()
            config.status = versioning
            bucket.put_bucket_versioning(config)
        return bucket

    return create


@pytest.fixture
def bucket(new_bucket: BucketFactory) -> oss2.Bucket:
    return new_bucket()


def tags_of(bucket: oss2.Bucket, key: str, **params: str) -> dict[str, str]:
    result = bucket.get_object_tagging(key, params=params or None)
    return dict(result.tag_set.tagging_rule)


def readable(tags: dict[str, str]) -> dict[str, str]:
    """`tags` with a trusted ownership record shown as the keys it lists (`autotag: "kind size"`), so
    expectations read plainly; a record whose seal does not hold is left as it is (and fails them)."""
    reading = read_record(tags, Ownership())
    if reading.state != "trusted":
        return dict(tags)
    return {**tags, "autotag": " ".join(sorted(reading.owned))}


def sealed(tags: dict[str, str], *owned: str) -> dict[str, str]:
    """`tags` with the ownership record the system writes when it owns `owned` (no record secret set)."""
    return {**tags, "autotag": ownership_record(tags, owned, Ownership())}


def sealed_header(tags: dict[str, str], *owned: str) -> str:
    """The `x-oss-tagging` header of `sealed(tags, *owned)`: objects as the system had tagged them."""
    return encode_tagging_header(sealed(tags, *owned))


TEMPLATE_BUCKET = "autotag-demo"  # the bucket template.yml's triggers and timer payload name
TEMPLATE_STATE_BUCKET = "autotag-demo-state"  # where template.yml's sweep keeps its state


def purge(bucket: oss2.Bucket) -> None:
    """Every version and delete marker, then the bucket itself."""
    key_marker = version_marker = ""
    while True:
        page = bucket.list_object_versions(
            key_marker=key_marker, versionid_marker=version_marker, max_keys=1000
        )
        entries = [*page.versions, *page.delete_marker]
        for start in range(0, len(entries), 1000):  # batch deletes: a big test bucket empties quickly
            batch = entries[start : start + 1000]
            bucket.delete_object_versions(
                oss2.models.BatchDeleteObjectVersionList(
                    [oss2.models.BatchDeleteObjectVersion(e.key, e.versionid) for e in batch]
                )
            )
        if not page.is_truncated:
            break
        key_marker, version_marker = page.next_key_marker, page.next_versionid_marker
    bucket.delete_bucket()


@pytest.fixture
def template_bucket(oss: LocalOSS) -> Iterator[oss2.Bucket]:
    """The session server's `autotag-demo` (what template.yml's triggers watch), empty, as an STS client;
    gone again afterwards, versions included, so the next test finds it new. So is the sweep's state
    bucket, `autotag-demo-state`, as a deploy of template.yml makes it."""
    bucket = oss2.Bucket(make_auth("sts-v1"), oss.endpoint, TEMPLATE_BUCKET, region=REGION)
    bucket.create_bucket()
    state = oss2.Bucket(make_auth("sts-v1"), oss.endpoint, TEMPLATE_STATE_BUCKET, region=REGION)
    state.create_bucket()
    yield bucket
    purge(bucket)
    if TEMPLATE_STATE_BUCKET in oss.store.buckets:
        purge(state)


# How long a test waits for what the local cloud does in the background (a trigger's tag, a printed line)
# before it fails: waits end as soon as the awaited thing happens, so only a broken run waits this long, and
# a machine kept busy (load 15-30 on 2 cores) takes tens of seconds for what an idle one does in one.
WAIT_SECONDS = 300
# What the reader of `autotag local up`'s output puts on its queue once the output ends (a line never is
# empty: it holds at least its newline).
END_OF_OUTPUT = ""


def _lines_then_end(stdout: IO[str], output: queue.Queue[str]) -> None:
    for line in stdout:
        output.put(line)
    output.put(END_OF_OUTPUT)


@dataclass(frozen=True)
class LocalCloudProcess:
    oss_endpoint: str
    fc_api_endpoint: str
    banner: list[str]  # what `autotag local up` printed when ready
    output: queue.Queue[str]  # the lines it printed since
    process: subprocess.Popen[str] | None = None
    cloudflow_endpoint: str = ""

    def cli_environment(self) -> dict[str, str]:
        """What an `autotag` command needs to point at this cloud, signed with the STS test keys."""
        return {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": STS.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": STS.access_key_secret,
            "ALIBABA_CLOUD_SECURITY_TOKEN": STS.security_token or "",
            "AUTOTAG_OSS_ENDPOINT": self.oss_endpoint,
            "AUTOTAG_FC_ENDPOINT": self.fc_api_endpoint,
            "AUTOTAG_CLOUDFLOW_ENDPOINT": self.cloudflow_endpoint,
        }

    def line_containing(self, text: str, seconds: float = WAIT_SECONDS) -> str:
        """The next printed line that contains `text` (skipping others), or "" after `seconds`."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.output.get(timeout=left)
            except queue.Empty:
                break
            if line == END_OF_OUTPUT:  # local up ended: no such line is coming
                break
            if text in line:
                return line
        return ""


def template_variant(
    folder: Path, delivery: str, count: int | None = None, seconds: float | None = None
) -> Path:
    """template.yml with one way of delivery chosen, its code this checkout's (see delivery_variant)."""
    return delivery_variant(ROOT / "template.yml", ROOT / "functions", folder, delivery, count, seconds)


def flow_template(directory: Path) -> Path:
    """template.yml without the upload trigger, its code this checkout's: the objects of bulk work (a
    backfill, a reconcile) were there before any trigger."""
    document = yaml.safe_load((ROOT / "template.yml").read_text())
    del document["Resources"]["oss-autotag"]["tag-on-upload"]["Events"]
    (directory / "functions").symlink_to(ROOT / "functions")
    path = directory / "template.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.fixture
def local_up(tmp_path: Path) -> Iterator[LocalCloudProcess]:
    """`autotag local up` with template.yml, in its own process, on free ports."""
    with local_cloud_process(tmp_path, ROOT / "template.yml") as cloud:
        yield cloud


@contextmanager
def local_cloud_process(
    tmp_path: Path,
    template: Path,
    *options: str,
    env: dict[str, str] | None = None,
    global_options: tuple[str, ...] = (),
) -> Iterator[LocalCloudProcess]:
    """`autotag local up` with `template` (and `options`, in `env` over this process's environment), in
    its own process, on free ports, until the block ends."""
    autotag = Path(sys.executable).with_name("autotag")
    command = [
        str(autotag),
        *global_options,
        "local",
        "up",
        "--oss-port",
        "0",
        "--fc-port",
        "0",
        "--cloudflow-port",
        "0",
    ]
    command += ["--template", str(template), "--dead-letters", str(tmp_path / "dl.jsonl"), *options]
    environment = {**os.environ, **(env or {})}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=tmp_path, env=environment)
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(4)]
        endpoints = [re.search(r"(http://\S+)", line) for line in (banner[0], banner[2], banner[3])]
        assert all(endpoints), banner
        output: queue.Queue[str] = queue.Queue()
        stdout = process.stdout
        threading.Thread(target=_lines_then_end, args=(stdout, output), daemon=True).start()
        yield LocalCloudProcess(
            endpoints[0][1],  # type: ignore[index]
            endpoints[1][1],  # type: ignore[index]
            banner,
            output,
            process,
            endpoints[2][1],  # type: ignore[index]
        )
    finally:
        ended = stop_local_up(process)
    assert ended, f"`autotag local up` had not ended {LOCAL_UP_STOP_SECONDS} s after SIGTERM: killed"


# How long `autotag local up` may take to end after SIGTERM before it counts as stuck: it needs about a
# second on an idle machine, tens on a loaded one; only a hang takes minutes.
LOCAL_UP_STOP_SECONDS = 300


def stop_local_up(process: subprocess.Popen[str]) -> bool:
    """End `autotag local up` as a service manager does (SIGTERM); whether it ended by itself, not killed."""
    process.terminate()
    try:
        process.wait(LOCAL_UP_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False
    return True


def wait_for_tag(bucket: oss2.Bucket, key: str, tag: str, seconds: float = WAIT_SECONDS) -> dict[str, str]:
    """The object's tags once `tag` is among them (asynchronous triggers), or as they are at the deadline."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and tag not in tags_of(bucket, key):
        time.sleep(0.1)
    return tags_of(bucket, key)


@pytest.fixture
def v2_client(oss: LocalOSS) -> alibabacloud_oss_v2.Client:
    """The OSS Python SDK V2 (V4 signing by default) on the session's server: another client than oss2,
    with its own signer, URL builder and XML writer."""
    import alibabacloud_oss_v2

    config = alibabacloud_oss_v2.config.load_default()
    config.credentials_provider = alibabacloud_oss_v2.credentials.StaticCredentialsProvider(
        LONG_TERM.access_key_id, LONG_TERM.access_key_secret
    )
    config.region = REGION
    config.endpoint = oss.endpoint
    config.use_path_style = True
    return alibabacloud_oss_v2.Client(config)
