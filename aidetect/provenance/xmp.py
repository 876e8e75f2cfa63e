"""Parse XMP packets into "prefix:Property" -> value(s), matched by namespace URI.

Keys use each namespace's usual prefix whatever prefix the file declared, so a writer that binds
IPTC's namespace to "ns1" still yields "Iptc4xmpExt:DigitalSourceType". Properties are flattened:
simple values, array items (rdf:li) and struct fields all become values of their nearest property.

XMP never needs a DTD, so any DOCTYPE is refused before expat can read an entity declaration: a
billion-laughs packet costs nothing. (The standard library's ElementTree would expand it.)
"""

from __future__ import annotations

from xml.parsers import expat

MAX_XMP = 4 << 20  # bytes of one packet
MAX_PROPERTIES = 2000
MAX_VALUE = 64 << 10  # characters kept of one value

_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_IGNORED = {"", _RDF, "adobe:ns:meta/", "http://www.w3.org/XML/1998/namespace"}  # syntax, not properties
PREFIXES = {
    "http://iptc.org/std/Iptc4xmpExt/2008-02-29/": "Iptc4xmpExt",
    "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/": "Iptc4xmpCore",
    "http://ns.adobe.com/photoshop/1.0/": "photoshop",
    "http://ns.adobe.com/xap/1.0/": "xmp",
    "http://ns.adobe.com/xap/1.0/mm/": "xmpMM",
    "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#": "stEvt",
    "http://ns.adobe.com/xap/1.0/rights/": "xmpRights",
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://purl.org/dc/terms/": "dcterms",
    "http://ns.adobe.com/exif/1.0/": "exif",
    "http://ns.adobe.com/tiff/1.0/": "tiff",
    "http://ns.useplus.org/ldf/xmp/1.0/": "plus",
}


class _Refused(Exception):
    """A construct that XMP has no use for and that could make parsing expensive."""


def parse_xmp(packet: bytes, notes: list[str]) -> dict[str, str | list[str]]:
    """The properties of one packet; {} with a note when it is refused or is not XML."""
    if len(packet) > MAX_XMP:
        notes.append(f"XMP packet of {len(packet)} bytes is over {MAX_XMP} bytes: not parsed")
        return {}
    collector = _Collector()
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_doctype
    parser.StartElementHandler = collector.start
    parser.EndElementHandler = collector.end
    parser.CharacterDataHandler = collector.chars
    try:
        parser.Parse(bytes(packet).strip(b"\x00 \t\r\n"), True)
    except _Refused:
        notes.append("XMP has a DOCTYPE (entity declarations are refused): not parsed")
        return {}
    except expat.ExpatError as err:
        notes.append(f"XMP is not well-formed XML ({expat.ErrorString(err.code)}, line {err.lineno}): not parsed")
        return {}
    if collector.truncated:
        notes.append(f"XMP: over {MAX_PROPERTIES} properties or a value over {MAX_VALUE} characters: cut")
    return {key: values[0] if len(values) == 1 else values for key, values in collector.values.items()}


def _refuse_doctype(*_args: object) -> None:
    raise _Refused


class _Collector:
    """Expat callbacks that gather property values into a flat dict."""

    def __init__(self) -> None:
        self.values: dict[str, list[str]] = {}
        self.properties: list[str | None] = []  # per open element: its key, None for RDF syntax
        self.text: list[list[str]] = []
        self.truncated = False

    def start(self, name: str, attributes: dict[str, str]) -> None:
        namespace, _, local = name.rpartition(" ")
        key = None if namespace in _IGNORED else _key(namespace, local)
        self.properties.append(key)
        self.text.append([])
        for attribute, value in attributes.items():
            attr_namespace, _, attr_local = attribute.rpartition(" ")
            if attr_namespace not in _IGNORED:
                self.add(_key(attr_namespace, attr_local), value)
            elif key and attribute == f"{_RDF} resource":
                self.add(key, value)

    def end(self, _name: str) -> None:
        """An element's text belongs to it if it is a property, else (rdf:li) to its property."""
        key = self.properties.pop()
        text = "".join(self.text.pop()).strip()
        owner = key or next((outer for outer in reversed(self.properties) if outer), None)
        if text and owner:
            self.add(owner, text)

    def chars(self, data: str) -> None:
        if self.text:
            self.text[-1].append(data)

    def add(self, key: str, value: str) -> None:
        if key not in self.values and len(self.values) >= MAX_PROPERTIES:
            self.truncated = True
            return
        if len(value) > MAX_VALUE:
            self.truncated, value = True, value[:MAX_VALUE]
        self.values.setdefault(key, []).append(value)


def _key(namespace: str, local: str) -> str:
    prefix = PREFIXES.get(namespace)
    return f"{prefix}:{local}" if prefix else f"{{{namespace}}}{local}"
