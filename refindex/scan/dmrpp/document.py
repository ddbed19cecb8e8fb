"""A DMR++ document: recognised by content, parsed safely, its elements named.

DMR++ (OPeNDAP's "DMR plus plus") is a DAP4 DMR — groups, dimensions, typed variables and
attributes in the DAP4 namespace — with elements of the ``dmrpp`` namespace saying where each
variable's bytes lie in the data file its ``dmrpp:href`` names. A document fetched from a
server is untrusted: it may carry no document type declaration (so no entity can be
defined, and no entity expansion can blow up), and it must be ASCII-compatible text
starting with ``<?xml`` (so that the declaration check sees what the parser will see).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from refindex.errors import ContainerError

DAP4 = "http://xml.opendap.org/ns/DAP/4.0#"
DMRPP = "http://xml.opendap.org/dap/dmrpp/1.0.0#"
SUFFIX = ".dmrpp"

_BOM = b"\xef\xbb\xbf"
# A document type declaration (and with it any entity declaration) anywhere.
_DECLARATION = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def dap(name: str) -> str:
    """The qualified tag of a DAP4 element."""
    return f"{{{DAP4}}}{name}"


def dmrpp(name: str) -> str:
    """The qualified tag (or attribute name) of a dmrpp element."""
    return f"{{{DMRPP}}}{name}"


def looks_like_dmrpp(head: bytes) -> bool:
    """Whether a file's first bytes are a DMR++ document: XML (``<?xml``) whose ``Dataset``
    root declares the DAP4 and the dmrpp namespaces."""
    text = head.removeprefix(_BOM).lstrip()
    return (text.startswith(b"<?xml") and DAP4.encode() in text and DMRPP.encode() in text
            and b"Dataset" in text)


def parse_document(data: bytes, where: str) -> ET.Element:
    """The root ``Dataset`` element of DMR++ ``data``; a ContainerError naming ``where`` when
    it is not well-formed XML, declares a document type or entities, or is not DAP4."""
    text = data.removeprefix(_BOM).lstrip()
    if not text.startswith(b"<?xml"):
        raise ContainerError(f"{where}: not a DMR++ document (no '<?xml' declaration at its "
                             "start)")
    if _DECLARATION.search(text):
        raise ContainerError(f"{where}: DMR++ document with a document type or entity "
                             "declaration; refused (DMR++ has none, and entities can expand "
                             "without bound)")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ContainerError(f"{where}: malformed DMR++ XML ({exc})") from None
    if root.tag != dap("Dataset"):
        raise ContainerError(f"{where}: DMR++ root element is {root.tag!r}, not a DAP4 "
                             "Dataset")
    return root


def local_name(tag: str) -> str:
    """An element's name without its namespace."""
    return tag.rpartition("}")[2]


def namespace(tag: str) -> str:
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""
