"""OSS response bodies: XML documents with the element order OSS uses, and the date formats it uses."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from email.utils import formatdate
from urllib.parse import quote


def iso8601(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(timestamp))


def http_date(timestamp: float) -> str:
    return formatdate(timestamp, usegmt=True)


def url_encode(text: str, encode: bool) -> str:
    """Keys in listings when the client asked for `encoding-type=url` (keys may hold control characters)."""
    return quote(text, safe="/") if encode else text


class Doc:
    """A tiny builder: `doc.add(parent, "Name", text)` returns the new element."""

    def __init__(self, root: str) -> None:
        self.root = ET.Element(root)

    def add(self, parent: ET.Element | None, tag: str, text: object = None) -> ET.Element:
        element = ET.SubElement(self.root if parent is None else parent, tag)
        if text is not None:
            element.text = "true" if text is True else "false" if text is False else str(text)
        return element

    def fields(self, parent: ET.Element | None, **values: object) -> None:
        for tag, text in values.items():
            self.add(parent, tag, text)

    def owner(self, parent: ET.Element | None, owner_id: str) -> None:
        owner = self.add(parent, "Owner")
        self.fields(owner, ID=owner_id, DisplayName=owner_id)

    def render(self) -> bytes:
        return (
            b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(self.root, encoding="unicode").encode()
        )
