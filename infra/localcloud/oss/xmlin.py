"""Request bodies in XML, read as OSS reads them: a real XML parser (linear time, no DTDs, no entities),
bounded in size, and lenient about control characters in text.

Keys may hold control characters that XML 1.0 forbids. Clients send them either raw (oss2) or as character
references such as `&#01;` (the OSS Python SDK V2); OSS accepts both and reads each as that character. Both
forms are swapped for private-use placeholders before parsing and swapped back in the text read out.

A raw carriage return in character data is kept the same way: an XML parser reads CR and CRLF as LF, which
would name another key than the one sent (oss2 writes a CR in a key raw; `&#13;` needs no help). CRs in
markup (between a tag's attributes, in the prolog, in comments) are layout and left to the parser. Every
text of a parsed document must be read through `text`."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from .errors import OssError, malformed_xml

# The largest XML body accepted. A DeleteMultipleObjects document naming 1,000 keys of 1,023 bytes, each
# byte written as a six-character reference, is about 6.2 MB: every valid document fits.
MAX_XML_BODY_BYTES = 8 * 1024 * 1024

_FORBIDDEN = "".join(chr(c) for c in range(32) if chr(c) not in "\t\n\r")
_RAW_CONTROL = re.compile(f"[{re.escape(_FORBIDDEN)}]")
_CONTROL_REFERENCE = re.compile(r"&#(?:0*([0-9]{1,3})|[xX]0*([0-9a-fA-F]{1,2}));")
_DECLARATION = re.compile(r"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
# Within the root element: a CDATA section (its CRs are data), other markup (kept as it is), or a raw CR.
# An unterminated section or comment runs to the end (one match, so a hostile body stays linear time).
_CDATA_MARKUP_OR_CR = re.compile(r"(<!\[CDATA\[.*?(?:\]\]>|\Z))|<!--.*?(?:-->|\Z)|<[^>]*>|\r", re.DOTALL)
_ROOT_START = re.compile(r"<[^?!]")
_PLACEHOLDER_BASES = (0xF0000, 0x100000, 0xE000)  # private-use ranges, 32 code points each


def _placeholder_base(text: str) -> int:
    for base in _PLACEHOLDER_BASES:
        if not re.search(f"[{chr(base)}-{chr(base + 31)}]", text):
            return base
    raise malformed_xml("The body uses every private-use range the local OSS could read it with.")


def parse(body: bytes, what: str) -> tuple[ET.Element, dict[str, str]]:
    """The root element of `body`, and a map from placeholder characters to the control characters they
    stand for (pass it to `text`). `what` names the document in errors."""
    if len(body) > MAX_XML_BODY_BYTES:
        raise OssError(
            400,
            "EntityTooLarge",
            f"The {what} body is {len(body)} bytes; the largest accepted is {MAX_XML_BODY_BYTES}.",
        )
    try:
        source = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise malformed_xml(f"The {what} body is not UTF-8.") from exc
    if _DECLARATION.search(source):
        raise malformed_xml(f"The {what} body declares a DTD or entities, which OSS does not accept.")
    base = _placeholder_base(source)

    def reference(match: re.Match[str]) -> str:
        code = int(match[1]) if match[1] is not None else int(match[2], 16)
        return chr(base + code) if chr(code) in _FORBIDDEN else match[0]

    source = _CONTROL_REFERENCE.sub(reference, source)
    source = _RAW_CONTROL.sub(lambda m: chr(base + ord(m[0])), source)
    source = _keep_carriage_returns(source, chr(base + ord("\r")))
    try:
        root = ET.fromstring(source)
    except ET.ParseError as exc:
        raise malformed_xml(f"The {what} body is not well-formed XML ({exc}).") from exc
    return root, {chr(base + c): chr(c) for c in range(32)}


def _keep_carriage_returns(source: str, placeholder: str) -> str:
    """`source` with each raw CR of the root element's character data (CDATA included) swapped for
    `placeholder`."""
    start = _ROOT_START.search(source)
    end = source.rfind(">") + 1
    if start is None or end <= start.start():
        return source  # not a document: the parser says why

    def swap(match: re.Match[str]) -> str:
        if match[0] == "\r":
            return placeholder
        return match[1].replace("\r", placeholder) if match[1] else match[0]

    inside = _CDATA_MARKUP_OR_CR.sub(swap, source[start.start() : end])
    return source[: start.start()] + inside + source[end:]


def text(element: ET.Element | None, placeholders: dict[str, str]) -> str:
    """The element's text with control characters restored ("" when absent or empty)."""
    if element is None or not element.text:
        return ""
    value = element.text
    if any(c in placeholders for c in value):
        value = "".join(placeholders.get(c, c) for c in value)
    return value
