"""`--data-dir` state survives a restart; `autotag local oss` starts, serves and reports bad input clearly."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import oss2
from conftest import make_auth, tags_of

from localcloud.oss import LocalOSS

AUTOTAG = str(Path(sys.executable).with_name("autotag"))


def test_state_survives_a_restart(tmp_path: Path) -> None:
    with LocalOSS(data_dir=tmp_path) as first:
        bucket = oss2.Bucket(make_auth("v1"), first.endpoint, "durable")
        bucket.create_bucket()
        config = oss2.models.BucketVersioningConfig()
        config.status = "Enabled"
        bucket.put_bucket_versioning(config)
        old = bucket.put_object("k", b"old", headers={"x-oss-tagging": "v=old"}).versionid
        bucket.put_object("k", b"new", headers={"x-oss-tagging": "v=new"})
        upload_id = bucket.init_multipart_upload("pending").upload_id
        bucket.upload_part("pending", upload_id, 1, b"part")
    with LocalOSS(data_dir=tmp_path) as second:
        bucket = oss2.Bucket(make_auth("v1"), second.endpoint, "durable")
        assert bucket.get_object("k").read() == b"new"
        assert tags_of(bucket, "k", versionId=old) == {"v": "old"}
        assert bucket.get_bucket_info().versioning_status == "Enabled"
        assert [u.upload_id for u in oss2.ObjectUploadIterator(bucket, "pending")] == [upload_id]


def test_cli_prints_a_ready_line_and_serves_sts_credentials() -> None:
    server = subprocess.Popen(
        [AUTOTAG, "local", "oss", "--port", "0", "--credential", "STS.cli:cli-secret:cli-token"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        ready = server.stdout.readline()
        endpoint = re.search(r"(http://127\.0\.0\.1:\d+)", ready)
        assert endpoint, ready
        bucket = oss2.Bucket(oss2.StsAuth("STS.cli", "cli-secret", "cli-token"), endpoint.group(1), "cli")
        bucket.create_bucket()
        bucket.put_object("k", b"v")
        assert bucket.get_object("k").read() == b"v"
    finally:
        server.terminate()
        server.wait(300)


def test_cli_rejects_a_malformed_credential() -> None:
    result = subprocess.run(
        [AUTOTAG, "local", "oss", "--credential", "only-a-key"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "AK:SK" in result.stderr and "Traceback" not in result.stderr


def test_cli_reports_a_busy_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [AUTOTAG, "local", "oss", "--port", str(port)], capture_output=True, text=True
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr


def test_tag_writes_do_not_rewrite_object_bodies(tmp_path: Path) -> None:
    import sqlite3

    body = bytes(range(256)) * 32 * 1024  # 8 MiB
    with LocalOSS(data_dir=tmp_path) as oss:
        bucket = oss2.Bucket(make_auth("v1"), oss.endpoint, "bodies")
        bucket.create_bucket()
        bucket.put_object("big", body)
        wal = tmp_path / "oss.sqlite3-wal"
        with sqlite3.connect(tmp_path / "oss.sqlite3") as other:
            other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert wal.stat().st_size == 0
        for value in ("1", "2", "3"):
            rule = oss2.models.TaggingRule()
            rule.add("round", value)
            bucket.put_object_tagging("big", oss2.models.Tagging(rule))
        bucket.delete_object_tagging("big")
        # what SQLite wrote for four tag changes: a few pages each, not the 8 MiB body each time
        assert wal.stat().st_size < 1024**2
    with LocalOSS(data_dir=tmp_path) as again:
        bucket = oss2.Bucket(make_auth("v1"), again.endpoint, "bodies")
        assert bucket.get_object("big").read() == body
        assert tags_of(bucket, "big") == {}
