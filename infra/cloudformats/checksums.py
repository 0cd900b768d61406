"""ETags and CRC-64 exactly as OSS computes them (oss2 checks both)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable

import crcmod

# CRC-64/XZ (ECMA-182 polynomial, reflected, all-ones init and xorout): OSS's x-oss-hash-crc64ecma.
_crc64 = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=0xFFFFFFFFFFFFFFFF, rev=True)


def crc64(data: bytes) -> int:
    return int(_crc64(data))


def content_md5(md5_etag: str) -> str:
    """The `Content-MD5` form (base64 of the digest) of a simple object's or a part's ETag."""
    return base64.b64encode(bytes.fromhex(md5_etag)).decode()


def md5_etag(data: bytes) -> str:
    """The ETag of a simple upload or a part: the upper-case hex MD5, unquoted."""
    return hashlib.md5(data).hexdigest().upper()


def multipart_etag(part_etags: Iterable[str]) -> str:
    """OSS's ETag of a completed multipart object: MD5 over the parts' binary MD5s, `-<part count>`."""
    binary = [bytes.fromhex(etag) for etag in part_etags]
    return f"{hashlib.md5(b''.join(binary)).hexdigest().upper()}-{len(binary)}"
