"""Parsing a user's XML file (CVAT exports, Qualisys calibrations) without its DTD: a DOCTYPE
or entity declaration is refused wherever it is and in whatever encoding the file is written
(a billion laughs expands entities without bound; a byte search misses a declaration after the
first bytes or in UTF-16)."""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from xml.parsers import expat


class DoctypeError(Exception):
    """The XML declares a DOCTYPE or an entity."""


def parse_without_doctype(text: bytes) -> ET.Element:
    """The document's root, after an expat pass whose handlers stop at any DOCTYPE or entity
    declaration (`DoctypeError`); malformed XML is ElementTree's `ParseError`, with its
    position."""

    def refuse(*_: object) -> None:
        raise DoctypeError

    check = expat.ParserCreate()  # a first pass that builds nothing
    check.StartDoctypeDeclHandler = refuse
    check.EntityDeclHandler = refuse
    with contextlib.suppress(expat.ExpatError):  # malformed: ElementTree says where below
        check.Parse(text, True)
    return ET.fromstring(text)
