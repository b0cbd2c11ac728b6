"""XML plumbing shared by every EWS builder and parser: namespaces, element helpers,
value formatting, and the one safe way to parse bytes that came off the network."""

from __future__ import annotations

from datetime import UTC, date, datetime

from lxml import etree

from ews_client.errors import ItemRejectedError, ProtocolError

NS_M = "http://schemas.microsoft.com/exchange/services/2006/messages"
NS_T = "http://schemas.microsoft.com/exchange/services/2006/types"
NS_E = "http://schemas.microsoft.com/exchange/services/2006/errors"
NS_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
NSMAP = {"soap": NS_SOAP, "m": NS_M, "t": NS_T}

Element = etree._Element

# A DOCTYPE can declare entities ("billion laughs") or point at external files; EWS never
# sends one, so its mere presence makes the answer hostile (ews_client/PROTOCOL_NOTES.md,
# "XML safety"). It is looked for in the parsed document, not in the bytes: a byte pattern
# misses a DOCTYPE written in UTF-16 or UTF-32, which the parser reads all the same.


DOCTYPE_REFUSED = "response carries a DOCTYPE (a document type declaration)"


def m(tag: str) -> str:
    return f"{{{NS_M}}}{tag}"


def t(tag: str) -> str:
    return f"{{{NS_T}}}{tag}"


def sub(parent: Element, tag: str, text: str | None = None, **attrib: str) -> Element:
    """Append a child (tag in Clark notation) with optional text and attributes.

    Text that XML 1.0 cannot carry (control characters other than tab/CR/LF) makes the item
    unwritable: ItemRejectedError, so that this one item is skipped, not the whole pass.
    """
    try:
        child = etree.SubElement(parent, tag, attrib)
        if text is not None:
            child.text = text
    except ValueError as exc:
        raise ItemRejectedError(f"value not representable in XML: {exc}", code="XmlChar") from exc
    return child


def new(tag: str, **attrib: str) -> Element:
    return etree.Element(tag, attrib, nsmap={"m": NS_M, "t": NS_T})


def fragment(tag: str, **attrib: str) -> Element:
    """An element to be moved into a request later: no namespace map of its own, since the
    envelope declares the prefixes (serialized the same as `new`, at half the cost)."""
    return etree.Element(tag, attrib)


def _parser(*, recover: bool = False) -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        recover=recover,
    )


def parse_xml(data: bytes) -> Element:
    """Parse untrusted bytes: no DTD, no entities, no network, bounded tree.

    Raises ProtocolError for hostile or malformed input instead of expanding or crashing.
    """
    try:
        # The parser loads no DTD, resolves no entity and opens nothing: a DOCTYPE costs
        # nothing to parse, and is refused once the parser has seen it, in any encoding.
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        # libxml2 may stop inside a hostile DTD (e.g. at its limit on entity amplification):
        # a recovering parse, as safe, tells whether that is what the document carries.
        if _recovered_has_dtd(data):
            raise ProtocolError(DOCTYPE_REFUSED) from exc
        raise ProtocolError(f"malformed XML: {exc}") from exc
    if root is None:
        raise ProtocolError("empty XML document")
    if has_dtd(root):
        raise ProtocolError(DOCTYPE_REFUSED)
    return root


def _recovered_has_dtd(data: bytes) -> bool:
    try:
        root = etree.fromstring(data, _parser(recover=True))
    except etree.XMLSyntaxError:
        return False
    return root is not None and has_dtd(root)


def has_dtd(root: Element) -> bool:
    """Whether the document of `root` has a document type declaration, internal or external
    (entity declarations can only stand in one)."""
    info = root.getroottree().docinfo
    # lxml gives every DOCTYPE an internalDTD, empty when the declaration has no subset.
    return info.internalDTD is not None or info.externalDTD is not None


def fmt_dt(value: datetime) -> str:
    """xs:dateTime in UTC with a Z suffix, the form every Exchange version accepts."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: the model uses aware datetimes only")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_dt(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ProtocolError(f"bad xs:dateTime {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def fmt_date(value: date) -> str:
    return value.isoformat()


def parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError as exc:
        raise ProtocolError(f"bad xs:date {value!r}") from exc


def fmt_bool(value: bool) -> str:
    return "true" if value else "false"


def parse_bool(value: str | None) -> bool:
    return value is not None and value.strip() in ("true", "1")
