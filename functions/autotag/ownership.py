"""Which of an object's tags this system owns (pure).

OSS keeps no author per tag, so the system writes its own record next to the tags it sets: one tag (by
default `autotag`) whose value lists the keys it set, separated by spaces, then (on unversioned buckets)
which object it wrote them for, and ends with a seal, e.g.
`autotag=kind project size obj:3f9a0c1d2e4b seal:k3vq7m2xw4bz5n6a`. `obj:` is a digest of the object's
ETag and Last-Modified: a sweep that reads the tags learns from it, with no HEAD, whether they were written
for the object it listed. The seal is a keyed hash (HMAC-SHA256, first 80 bits in base32) of the record's
key, the object digest, and every listed tag *with the value the system wrote*.

A record is trusted only when its seal matches the tags as they are now. Then, and only then, the keys it
lists are the system's, to update or remove. Anything else under the record's key — a value someone else
wrote (`autotag=off`), a record copied onto different values, a record whose tags someone changed or removed
since — is someone else's tag: the system then changes nothing on that object, not even the record. So a
tag someone else set is never removed or overwritten because of a record the system did not write.

With `AUTOTAG_RECORD_SECRET` set (the same in both functions), the seal is keyed: nobody without the secret
can write a record the system trusts. Without it the seal is an unkeyed hash: it still catches accidents
(a tag of one's own named `autotag`, a hand-edited or copied record), but a deliberate forger who knows this
scheme can compute it. Several secrets, separated by commas, rotate one: the first seals, every one is
accepted.

The record costs one of the 10 tags and at most 256 characters (rules' tag keys contain no spaces, so the
list is unambiguous)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from .oss_tags import MAX_VALUE_LENGTH

DEFAULT_OWNERSHIP_TAG = "autotag"
SEAL_PREFIX = "seal:"
SEAL_LENGTH = 16  # base32 characters: 80 bits
OBJECT_PREFIX = "obj:"
OBJECT_LENGTH = 12  # hex characters: 48 bits, to tell one object under a key from the next
# the spaces before the object digest and the seal, and both
_RECORD_OVERHEAD = 2 + len(SEAL_PREFIX) + SEAL_LENGTH + len(OBJECT_PREFIX) + OBJECT_LENGTH


@dataclass(frozen=True)
class Ownership:
    """The record's tag key, keys the system never removes even when it owns them (configured in the rules
    file: `ownership_tag`, `protected_keys`), and the secrets that key the seal (the environment's)."""

    tag: str = DEFAULT_OWNERSHIP_TAG
    protected: frozenset[str] = frozenset()
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecordReading:
    """What the record on an object says: `absent` (no tag under the record's key), `trusted` (its seal
    matches: `owned` are the system's keys) or `foreign` (someone else's value; `why` says what is off)."""

    state: str
    owned: frozenset[str] = frozenset()
    why: str = ""
    written_for: str = ""  # the object digest the record names ("" when it names none)

    @property
    def foreign(self) -> bool:
        return self.state == "foreign"


ABSENT = RecordReading("absent")


def object_digest(etag: str, last_modified: datetime) -> str:
    """Which object tags were written for: its ETag and Last-Modified (a re-upload of the same bytes has
    the same ETag, not the same Last-Modified)."""
    text = f"{etag.strip().strip(chr(34)).upper()}\0{int(last_modified.timestamp())}"
    return hashlib.sha256(text.encode()).hexdigest()[:OBJECT_LENGTH]


def keyed_seal(secret: str, parts: Iterable[str], length: int = SEAL_LENGTH) -> str:
    """The system's seal over `parts`: HMAC-SHA256 keyed with `secret` over the parts joined by NUL, in
    lowercase base32, cut to `length` characters. It seals the ownership record and the sweep's state
    documents (autotag.sweep.sealing); each puts a name of its own first, so one never passes for the
    other."""
    message = "\0".join(parts)
    digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:length]


def seal_holds(given: str, secrets: Iterable[str], parts: Sequence[str], length: int = SEAL_LENGTH) -> bool:
    """Whether `given` is the seal of `parts` under one of `secrets` (none: the unkeyed seal). `given` may
    be anything someone wrote (letters of any script included): it is compared as bytes, in constant
    time."""
    offered = given.encode("utf-8", "surrogatepass")
    return any(
        hmac.compare_digest(offered, keyed_seal(secret, parts, length).encode())
        for secret in (tuple(secrets) or ("",))
    )


def _seal_parts(
    ownership: Ownership, tags: Mapping[str, str], keys: Iterable[str], written_for: str
) -> list[str]:
    pairs = (f"{k}\0{tags[k]}" for k in sorted(keys))
    return ["autotag-record-1", ownership.tag, written_for, *pairs]


def read_record(tags: Mapping[str, str], ownership: Ownership) -> RecordReading:
    """Whether the object carries a record the system wrote, and which keys it owns."""
    value = tags.get(ownership.tag)
    if value is None:
        return ABSENT
    *keys, seal = value.split(" ")
    written_for = keys.pop()[len(OBJECT_PREFIX) :] if keys and keys[-1].startswith(OBJECT_PREFIX) else ""
    if not keys or not seal.startswith(SEAL_PREFIX):
        return RecordReading("foreign", why=f"{value[:40]!r} is not a record this system writes")
    if len(set(keys)) != len(keys) or not all(keys) or ownership.tag in keys:
        return RecordReading("foreign", why=f"{value[:40]!r} is not a record this system writes")
    missing = [k for k in keys if k not in tags]
    if missing:
        return RecordReading("foreign", why=f"the tag {missing[0]!r} it lists was removed by someone else")
    if seal_holds(
        seal[len(SEAL_PREFIX) :], ownership.secrets, _seal_parts(ownership, tags, keys, written_for)
    ):
        return RecordReading("trusted", frozenset(keys), written_for=written_for)
    return RecordReading(
        "foreign", why="its seal does not match: this system did not write it, or someone changed its tags"
    )


def owned_keys(tags: Mapping[str, str], ownership: Ownership) -> frozenset[str]:
    """The keys a trusted record gives the system (none when the record is absent or foreign)."""
    return read_record(tags, ownership).owned


def ownership_record(
    tags: Mapping[str, str], keys: Iterable[str], ownership: Ownership, written_for: str = ""
) -> str:
    """The record's value for `keys` (sorted, so the same ownership always gives the same value), naming
    the object they were written for (an object_digest, or "" when unknown) and sealed over their values
    in `tags`."""
    listed = sorted(set(keys))
    secret = ownership.secrets[0] if ownership.secrets else ""
    names = [OBJECT_PREFIX + written_for] if written_for else []
    seal = keyed_seal(secret, _seal_parts(ownership, tags, listed, written_for))
    return " ".join([*listed, *names, SEAL_PREFIX + seal])


def record_fits(keys: Iterable[str]) -> bool:
    return len(" ".join(sorted(set(keys)))) + _RECORD_OVERHEAD <= MAX_VALUE_LENGTH


def record_secrets(text: str) -> tuple[str, ...]:
    """`AUTOTAG_RECORD_SECRET`: one secret, or several separated by commas (the first one seals)."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


DEFAULT_OWNERSHIP = Ownership()
