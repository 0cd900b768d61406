"""The files through which `autotag local up` tells other commands of its folder how to drive it: its
endpoints, the local OSS's admin token, its invocation log and its dead-letter file, in
`.localcloud/local-cloud-<pid>.json`, one per running instance, so two instances in one folder (on other
ports) never overwrite or delete each other's.

The token is a credential: each file is created readable by its user only, never through a link (the file
is created exclusively, O_NOFOLLOW; the folder is opened without following a link, and a linked folder is
refused), and only the instance that wrote it removes it. Readers skip links, other users' files and the
files of instances no longer running, and pick the instance serving their endpoint (`choose`)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .function_host import LOCAL_STATE

_INSTANCE_FILE = re.compile(r"local-cloud-([0-9]+)\.json")
_READ_LIMIT = 64 * 1024  # a document is a few hundred bytes


class LocalCloudFileError(Exception):
    """The instance file cannot be written, or no running local cloud fits; the message says why."""


@dataclass(frozen=True)
class LocalCloud:
    """A running `autotag local up`, as its file describes it."""

    oss_endpoint: str
    fc_endpoint: str
    admin_token: str
    pid: int
    invocation_log: str = ""  # its own, `autotag logs` reads it
    dead_letters: str = ""  # its on-failure destination's file, resolved: no two instances share one


def instance_file(pid: int) -> str:
    return f"local-cloud-{pid}.json"


def choose(clouds: list[LocalCloud], endpoint: str, endpoint_given: bool, fc: bool = False) -> LocalCloud:
    """The running local cloud a command meant: the one serving `endpoint` (its OSS's, or with `fc` its FC
    API's); without an endpoint given (the default one), the only one running. LocalCloudFileError says
    what runs instead."""
    option = "--fc-endpoint" if fc else "--oss-endpoint"
    for cloud in clouds:
        if (cloud.fc_endpoint if fc else cloud.oss_endpoint) == endpoint:
            return cloud
    if not endpoint_given and len(clouds) == 1:
        return clouds[0]
    if not clouds:
        raise LocalCloudFileError(
            f"no local cloud of this folder serves {endpoint} (none runs here): run `autotag local up` here "
            "first" + ("" if fc else "; this command drives the local OSS only")
        )
    serving = ", ".join(sorted(c.fc_endpoint if fc else c.oss_endpoint for c in clouds))
    raise LocalCloudFileError(
        f"no local cloud of this folder serves {endpoint}; the ones running here serve {serving}: "
        f"pass {option} with one of them"
    )


@contextlib.contextmanager
def _folder(folder: Path, create: bool) -> Iterator[int | None]:
    """A descriptor of `folder`, opened without following a link (None when it is missing and not to be
    created)."""
    if create:
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700, parents=True)
    try:
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        if create:
            raise
        yield None
        return
    except OSError as error:
        if folder.is_symlink():
            raise LocalCloudFileError(
                f"{folder} is a link: the local cloud keeps its admin token only in a folder of its own; "
                "remove the link"
            ) from None
        raise LocalCloudFileError(f"cannot open {folder}: {error.strerror or error}") from None
    try:
        yield descriptor
    finally:
        os.close(descriptor)


def write_local_cloud_file(
    oss_endpoint: str,
    fc_endpoint: str,
    admin_token: str,
    folder: Path = LOCAL_STATE,
    invocation_log: str = "",
    dead_letters: str = "",
) -> Path:
    """This instance's file (mode 0600): what other commands need to drive it. A leftover of an earlier
    process with this pid (it cannot be running: this one is) is removed first, whatever it is; removing
    a link never touches what it points at."""
    name = instance_file(os.getpid())
    document = {
        "ossEndpoint": oss_endpoint,
        "fcEndpoint": fc_endpoint,
        "adminToken": admin_token,
        "pid": os.getpid(),
        "invocationLog": invocation_log,
        "deadLetters": dead_letters,
    }
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with _folder(folder, create=True) as directory:
        try:
            try:
                descriptor = os.open(name, flags, 0o600, dir_fd=directory)
            except FileExistsError:
                os.unlink(name, dir_fd=directory)
                descriptor = os.open(name, flags, 0o600, dir_fd=directory)
        except OSError as error:
            raise LocalCloudFileError(f"cannot create {folder / name}: {error.strerror or error}") from None
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(json.dumps(document))
    return folder / name


def remove_local_cloud_file(folder: Path = LOCAL_STATE) -> None:
    """Remove this instance's file, and only if it is still the one this instance wrote."""
    with _folder(folder, create=False) as directory:
        if directory is None:
            return
        cloud = _read(directory, instance_file(os.getpid()))
        if cloud is not None and cloud.pid == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(instance_file(os.getpid()), dir_fd=directory)


def running_local_clouds(folder: Path = LOCAL_STATE) -> list[LocalCloud]:
    """The local clouds of this folder still running, from their files."""
    with _folder(folder, create=False) as directory:
        if directory is None:
            return []
        clouds = [
            _read(directory, name) for name in sorted(os.listdir(directory)) if _INSTANCE_FILE.fullmatch(name)
        ]
    return [cloud for cloud in clouds if cloud is not None and _running(cloud.pid)]


def _read(directory: int, name: str) -> LocalCloud | None:
    """The file's cloud: None for a link, another user's file, anything but a regular file, or a
    document that does not read as one."""
    try:
        descriptor = os.open(
            name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=directory
        )
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as source:
        facts = os.fstat(source.fileno())
        if not stat.S_ISREG(facts.st_mode) or facts.st_uid != os.getuid():
            return None
        text = source.read(_READ_LIMIT)
    match = _INSTANCE_FILE.fullmatch(name)
    try:
        document = json.loads(text)
        cloud = LocalCloud(
            str(document["ossEndpoint"]),
            str(document.get("fcEndpoint", "")),
            str(document.get("adminToken") or ""),
            int(document["pid"]),
            str(document.get("invocationLog") or ""),
            str(document.get("deadLetters") or ""),
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return cloud if match and int(match[1]) == cloud.pid else None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True
