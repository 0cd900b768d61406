"""The JSON the functions return and log: readable UTF-8, except that a document holding characters no
UTF-8 can carry (the lone surrogates that stand for a key's bytes when a key is not UTF-8) is written with
every non-ASCII character escaped, so writing it never fails — not on FC's log stream, not in its answer."""

from __future__ import annotations

import json
from typing import Any


def to_json(document: Any, indent: int | None = None) -> str:
    text = json.dumps(document, ensure_ascii=False, indent=indent)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(document, indent=indent)
    return text
