"""The local cloud's own clock: `--clock-offset` (and the Python and admin APIs) shift the `Date` the local
OSS answers with, new objects' Last-Modified and the local FC's timer trigger times, while signatures are
still checked against the real clock; with `--data-dir`, a restart with a larger offset continues the same
data later in time."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

import oss2
import pytest
import requests
from conftest import make_auth

from localcloud.clock import Clock, DurationError, parse_duration
from localcloud.fc import LocalFC, load_template
from localcloud.oss import LocalOSS

AUTOTAG = str(Path(sys.executable).with_name("autotag"))
ROOT = Path(__file__).parents[2]
DAYS = timedelta(days=1)


def close(moment: datetime, expected: datetime, within: timedelta = timedelta(seconds=30)) -> bool:
    return abs(moment - expected) < within


def served_date(bucket: oss2.Bucket) -> datetime:
    return parsedate_to_datetime(bucket.get_bucket_info().headers["Date"])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("8d", 8 * 86400), ("-1h", -3600), ("1h30m", 5400), ("90s", 90), ("2w", 14 * 86400), ("0", 0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "8", "soon", "1y", "d8", "1h-30m"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(DurationError, match="not a duration such as 8d, -1h or 1h30m"):
        parse_duration(text)


def test_an_offset_shifts_date_and_last_modified_but_not_signatures() -> None:
    with LocalOSS(clock=Clock(8 * DAYS)) as shifted:
        for auth in ("v1", "v4", "sts-v1"):  # clients sign with the real time and are accepted
            bucket = oss2.Bucket(make_auth(auth), shifted.endpoint, f"clock-{auth}", region="cn-hangzhou")
            bucket.create_bucket()
            bucket.put_object("k", b"x")
        real = datetime.now(timezone.utc)
        assert close(served_date(bucket), real + 8 * DAYS)
        modified = datetime.fromtimestamp(bucket.head_object("k").last_modified, timezone.utc)
        assert close(modified, real + 8 * DAYS)
        listed = next(iter(oss2.ObjectIterator(bucket)))
        assert close(datetime.fromtimestamp(listed.last_modified, timezone.utc), real + 8 * DAYS)


def test_the_offset_changes_while_running_through_python_and_the_admin_api() -> None:
    with LocalOSS() as server:
        bucket = oss2.Bucket(make_auth("v1"), server.endpoint, "moving", region="cn-hangzhou")
        bucket.create_bucket()
        bucket.put_object("before", b"x")
        server.clock.advance(2 * DAYS)
        bucket.put_object("python", b"x")
        admin = {"Authorization": f"Bearer {server.admin_token}"}
        answer = requests.put(
            f"{server.endpoint}/_admin/clock", json={"offset": "-1h"}, headers=admin, timeout=5
        ).json()
        assert answer["offset"] == "-1h"
        bucket.put_object("admin", b"x")
        assert (
            requests.get(f"{server.endpoint}/_admin/clock", headers=admin, timeout=5).json()["offset"]
            == "-1h"
        )
        refused = requests.put(
            f"{server.endpoint}/_admin/clock", json={"offset": "soon"}, headers=admin, timeout=5
        )
        assert refused.status_code == 400 and "not a duration" in refused.json()["error"]
        for offset in ("\u0668d", "\uff18d"):  # Arabic-Indic and fullwidth 8: not ASCII digits, refused
            refused = requests.put(
                f"{server.endpoint}/_admin/clock", json={"offset": offset}, headers=admin, timeout=5
            )
            assert refused.status_code == 400 and "not a duration" in refused.json()["error"], offset
        real = datetime.now(timezone.utc)
        stamps = {
            k: datetime.fromtimestamp(bucket.head_object(k).last_modified, timezone.utc)
            for k in ("before", "python", "admin")
        }
    assert close(stamps["before"], real) and close(stamps["python"], real + 2 * DAYS)
    assert close(stamps["admin"], real - timedelta(hours=1))


def start(*args: str) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [AUTOTAG, "local", "oss", "--port", "0", *args], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    ready = server.stdout.readline()
    found = re.search(r"(http://127\.0\.0\.1:\d+)", ready)
    assert found, ready
    return server, found.group(1)


def test_a_restart_with_a_larger_offset_continues_the_same_data_later(tmp_path: Path) -> None:
    server, endpoint = start("--data-dir", str(tmp_path), "--clock-offset", "1d")
    try:
        bucket = oss2.Bucket(make_auth("v1"), endpoint, "later", region="cn-hangzhou")
        bucket.create_bucket()
        bucket.put_object("old", b"x")
    finally:
        server.terminate()
        server.wait(300)
    server, endpoint = start("--data-dir", str(tmp_path), "--clock-offset", "9d")
    try:
        bucket = oss2.Bucket(make_auth("v1"), endpoint, "later", region="cn-hangzhou")
        bucket.put_object("new", b"x")
        old, new = (bucket.head_object(k).last_modified for k in ("old", "new"))
        assert 8 * 86400 - 60 < new - old < 8 * 86400 + 60
        assert close(served_date(bucket), datetime.now(timezone.utc) + 9 * DAYS)
    finally:
        server.terminate()
        server.wait(300)


def test_a_bad_offset_is_a_clear_cli_error() -> None:
    for command in (["local", "oss"], ["local", "up"]):
        result = subprocess.run(
            [AUTOTAG, *command, "--clock-offset", "next week"], capture_output=True, text=True
        )
        assert result.returncode == 2
        assert "not a duration such as 8d" in result.stderr and "Traceback" not in result.stderr


def test_local_up_shares_its_clock_with_the_timers(tmp_path: Path) -> None:
    command = [
        AUTOTAG,
        "local",
        "up",
        "--oss-port",
        "0",
        "--fc-port",
        "0",
        "--cloudflow-port",
        "0",
        "--clock-offset",
        "8d",
    ]
    command += ["--template", str(ROOT / "template.yml"), "--dead-letters", str(tmp_path / "dl.jsonl")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=tmp_path)  # its state there
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(3)]
        endpoint = re.search(r"(http://\S+)", banner[0])
        assert endpoint, banner
        assert "clock 8d from real time" in banner[0]
        token = re.search(r"admin token: ([\w-]+)", banner[0])
        assert token, banner
        admin = {"Authorization": f"Bearer {token[1]}"}
        date = requests.get(f"{endpoint[1]}/_admin/clock", headers=admin, timeout=5).json()["now"]
        assert close(datetime.fromisoformat(date), datetime.now(timezone.utc) + 8 * DAYS)
    finally:
        process.terminate()
        process.wait(300)


def test_timers_fire_at_the_shifted_time(tmp_path: Path) -> None:
    text = (ROOT / "template.yml").read_text()
    text = text.replace(
        "CronExpression: 'CRON_TZ=Asia/Shanghai 0 0 3 * * *'", "CronExpression: '* * * * * *'"
    )
    text = text.replace(
        '"buckets": ["autotag-demo"], "workers": 16, "qps": 400',
        '"buckets": ["autotag-demo"], "dryRun": true',
    )
    (tmp_path / "functions").symlink_to(ROOT / "functions")
    (tmp_path / "template.yml").write_text(text)
    clock = Clock(8 * DAYS)
    fired: list[bytes] = []
    fc = LocalFC(load_template(tmp_path / "template.yml"), clock=clock)
    fc.invoke_async = lambda name, event, **_: fired.append(event) or "id"  # type: ignore[method-assign]
    started = datetime.now(timezone.utc)
    with fc:
        fc.fire_timer("tag-expiry")
        deadline = time.monotonic() + 300  # returns at the second tick; only a broken scheduler waits
        while time.monotonic() < deadline and len(fired) < 2:
            time.sleep(0.05)
    times = [datetime.fromisoformat(json.loads(e)["triggerTime"].replace("Z", "+00:00")) for e in fired]
    ended = datetime.now(timezone.utc)  # the times fall between, shifted: no bound on the machine's speed
    second = timedelta(seconds=1)
    assert len(times) >= 2 and all(started + 8 * DAYS - second <= t <= ended + 8 * DAYS for t in times), times
