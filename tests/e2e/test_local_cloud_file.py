"""What `autotag local up` leaves in .localcloud/ for the commands that drive it (the endpoints and the local
OSS's admin token): one file per running instance, readable by its user only, created without following a
link, and removed by that instance alone; readers pick the instance serving their endpoint."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import oss2
import pytest
from conftest import ROOT, STS, local_cloud_process

AUTOTAG = str(Path(sys.executable).with_name("autotag"))


def inventory(
    folder: Path, endpoint: str | None, bucket: str = "autotag-demo"
) -> subprocess.CompletedProcess[str]:
    """`autotag local inventory` in `folder`, against `endpoint` (None: the default, no option given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOTAG_", "ALIBABA_CLOUD_"))}
    argv = [AUTOTAG, "local", "inventory", "--bucket", bucket]
    argv += ["--oss-endpoint", endpoint] if endpoint else []
    return subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True)


def put(endpoint: str, bucket: str = "autotag-demo") -> None:
    auth = oss2.StsAuth(STS.access_key_id, STS.access_key_secret, STS.security_token)
    if bucket != "autotag-demo":  # one a trigger watches exists already
        oss2.Bucket(auth, endpoint, bucket).create_bucket()
    oss2.Bucket(auth, endpoint, bucket).put_object("inv/a.txt", b"x")


def test_two_local_clouds_in_one_folder_leave_each_other_alone(tmp_path: Path) -> None:
    with local_cloud_process(tmp_path, ROOT / "template.yml") as first:
        put(first.oss_endpoint)
        with local_cloud_process(
            tmp_path, ROOT / "template.yml", "--dead-letters", str(tmp_path / "dl2.jsonl")
        ) as second:
            put(second.oss_endpoint)
            for cloud in (first, second):
                done = inventory(tmp_path, cloud.oss_endpoint)
                assert done.returncode == 0, done.stderr
            ambiguous = inventory(tmp_path, None)  # two run here, neither on the default endpoint
            assert ambiguous.returncode == 2  # bad input: which cloud is meant must be said
            assert first.oss_endpoint in ambiguous.stderr and second.oss_endpoint in ambiguous.stderr
        # other buckets: a second inventory of one bucket in the same minute is refused (OSS names a run's
        # folder by its minute)
        put(first.oss_endpoint, "autotag-demo-b")
        put(first.oss_endpoint, "autotag-demo-c")
        done = inventory(
            tmp_path, first.oss_endpoint, "autotag-demo-b"
        )  # the second's exit took only its own
        assert done.returncode == 0, done.stderr
        alone = inventory(tmp_path, None, "autotag-demo-c")  # one runs here: it is the one meant
        assert alone.returncode == 0, alone.stderr
    assert list((tmp_path / ".localcloud").glob("local-cloud*.json")) == []


def test_a_planted_link_never_receives_the_admin_token(tmp_path: Path) -> None:
    stolen = tmp_path / "stolen.txt"
    stolen.write_text("")
    state = tmp_path / ".localcloud"
    state.mkdir()
    (state / "local-cloud.json").symlink_to(stolen)  # what `autotag local up` wrote to before
    with local_cloud_process(tmp_path, ROOT / "template.yml") as cloud:
        token = cloud.banner[0].split("admin token: ")[1].split(")")[0].split(";")[0].strip()
        (written,) = state.glob("local-cloud-*.json")
        assert stat.S_ISREG(written.lstat().st_mode) and stat.S_IMODE(written.lstat().st_mode) == 0o600
        assert json.loads(written.read_text())["adminToken"] == token
    assert stolen.read_text() == ""


def test_the_writer_replaces_a_link_at_its_own_name_and_refuses_a_linked_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from autotag_cli.local_cloud_file import instance_file, write_local_cloud_file

    monkeypatch.chdir(tmp_path)
    stolen = tmp_path / "stolen.txt"
    stolen.write_text("")
    state = tmp_path / ".localcloud"
    state.mkdir()
    planted = state / instance_file(os.getpid())
    planted.symlink_to(stolen)
    written = write_local_cloud_file("http://127.0.0.1:1", "http://127.0.0.1:2", "secret-token")
    assert stolen.read_text() == ""
    assert not written.is_symlink() and stat.S_IMODE(written.lstat().st_mode) == 0o600
    assert json.loads(written.read_text())["adminToken"] == "secret-token"
    written.unlink()

    state.rmdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    state.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(Exception, match="is a link"):
        write_local_cloud_file("http://127.0.0.1:1", "http://127.0.0.1:2", "secret-token")
    assert list(elsewhere.iterdir()) == []


def test_a_reader_ignores_links_and_dead_instances(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from autotag_cli.local_cloud_file import instance_file, running_local_clouds

    monkeypatch.chdir(tmp_path)
    state = tmp_path / ".localcloud"
    state.mkdir()
    fake = tmp_path / "fake.json"
    document = {"ossEndpoint": "http://127.0.0.1:1", "fcEndpoint": "", "adminToken": "t", "pid": os.getpid()}
    fake.write_text(json.dumps(document))
    (state / instance_file(os.getpid())).symlink_to(fake)  # a link, though to a live instance's document
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_pid = int(dead.stdout)
    (state / instance_file(dead_pid)).write_text(json.dumps({**document, "pid": dead_pid}))
    assert running_local_clouds() == []
