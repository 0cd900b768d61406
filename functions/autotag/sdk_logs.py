"""Keeps the SDKs' own log lines, which can carry credentials, out of the function's logs.

oss2 logs each request's string-to-sign and headers (the STS token among them) at DEBUG, so its logger
stays at WARNING whatever level the runtime sets. aliyun-fc2 logs every failed call at ERROR on the root
logger with the request headers (the Authorization signature and `x-fc-security-token`), and at DEBUG the
same for every call: its root-logger records are dropped (`drop_root_records_from`, applied where fc2 is
imported), and the code that calls it reports failures itself, from the status, error code and request id
alone."""

from __future__ import annotations

import logging
import os


class _DropRecordsFrom(logging.Filter):
    def __init__(self, package_dir: str) -> None:
        super().__init__()
        self.package_dir = package_dir

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.startswith(self.package_dir)


def quiet_oss2() -> None:
    logging.getLogger("oss2").setLevel(logging.WARNING)


def drop_root_records_from(package_file: str) -> None:
    """Drop what the package of `package_file` logs on the root logger (repeated calls are no-ops)."""
    package_dir = os.path.dirname(os.path.abspath(package_file)) + os.sep
    root = logging.getLogger()
    if not any(isinstance(f, _DropRecordsFrom) and f.package_dir == package_dir for f in root.filters):
        root.addFilter(_DropRecordsFrom(package_dir))
