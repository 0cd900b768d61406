"""What the functions log and return can always be written, whatever the keys in it."""

from __future__ import annotations

import json

from autotag.output import to_json


def test_readable_utf8_unless_a_key_is_not_utf8() -> None:
    assert to_json({"key": "photos/海.jpg"}) == '{"key": "photos/海.jpg"}'
    text = to_json({"key": "bad\udc80.jpg", "other": "海"})  # a key whose bytes are not UTF-8
    text.encode("utf-8")  # writable: FC's log stream and its answer are UTF-8
    assert json.loads(text) == {"key": "bad\udc80.jpg", "other": "海"}
