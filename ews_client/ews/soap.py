"""SOAP 1.1 envelope for EWS requests, and the checks every response goes through."""

from __future__ import annotations

from lxml import etree

from ews_client.errors import ExchangeError, ProtocolError
from ews_client.ews.codes import error_for
from ews_client.ews.xml import NS_E, NS_M, NS_SOAP, NS_T, Element, m, parse_xml, sub, t

SERVER_VERSION = "Exchange2013_SP1"


def envelope(body: Element, mailbox: str | None) -> bytes:
    """Wrap one request element in a SOAP envelope with the EWS headers.

    Headers: `t:RequestServerVersion` always; `t:ExchangeImpersonation/t:ConnectingSID/
    t:PrimarySmtpAddress` = the target mailbox when impersonating (ews_client/PROTOCOL_NOTES.md,
    "EWS headers").
    """
    root = etree.Element(f"{{{NS_SOAP}}}Envelope", nsmap={"soap": NS_SOAP, "m": NS_M, "t": NS_T})
    header = sub(root, f"{{{NS_SOAP}}}Header")
    sub(header, t("RequestServerVersion"), Version=SERVER_VERSION)
    if mailbox:
        imp = sub(header, t("ExchangeImpersonation"))
        sid = sub(imp, t("ConnectingSID"))
        sub(sid, t("PrimarySmtpAddress"), mailbox)
    sub(root, f"{{{NS_SOAP}}}Body").append(body)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def backoff_from(message_xml: Element | None) -> float:
    """Seconds from `<t:Value Name="BackOffMilliseconds">N</t:Value>` (0.0 when absent)."""
    if message_xml is None:
        return 0.0
    for value in message_xml.iter(t("Value")):
        if value.get("Name") == "BackOffMilliseconds" and value.text:
            try:
                return max(0.0, int(value.text.strip()) / 1000.0)
            except ValueError as exc:
                raise ProtocolError(f"bad BackOffMilliseconds {value.text!r}") from exc
    return 0.0


def fault_error(fault: Element) -> ExchangeError:
    """The exception a SOAP Fault stands for (HTTP 500 + detail/e:ResponseCode)."""
    detail = fault.find("detail")
    code = ""
    message = (fault.findtext("faultstring") or "").strip()
    message_xml = None
    if detail is not None:
        code = (detail.findtext(f"{{{NS_E}}}ResponseCode") or "").strip()
        message = (detail.findtext(f"{{{NS_E}}}Message") or message).strip()
        message_xml = detail.find(t("MessageXml"))
    if not code:
        # A fault without an EWS code: the SOAP layer refused the request (e.g. schema).
        code = (fault.findtext("faultcode") or "SoapFault").strip()
        return ProtocolError(f"SOAP fault {code}: {message}", code=code)
    return error_for(code, message, backoff_s=backoff_from(message_xml))


def body_child(data: bytes) -> Element:
    """The single element inside soap:Body; raises the mapped error for a SOAP Fault."""
    root = parse_xml(data)
    if root.tag != f"{{{NS_SOAP}}}Envelope":
        raise ProtocolError(f"not a SOAP envelope: {root.tag}")
    body = root.find(f"{{{NS_SOAP}}}Body")
    if body is None or len(body) == 0:
        raise ProtocolError("SOAP envelope without a body")
    child = body[0]
    if child.tag == f"{{{NS_SOAP}}}Fault":
        raise fault_error(child)
    return child


def message_error(msg: Element) -> ExchangeError | None:
    """None for Success/Warning; else the exception this response message stands for."""
    if msg.get("ResponseClass", "Success") != "Error":
        return None
    code = (msg.findtext(m("ResponseCode")) or "").strip() or "ErrorUnknown"
    text = (msg.findtext(m("MessageText")) or "").strip()
    return error_for(code, text, backoff_s=backoff_from(msg.find(m("MessageXml"))))


def response_messages(data: bytes, operation: str) -> list[Element]:
    """The `m:<Operation>ResponseMessage` elements of a `m:<Operation>Response` answer."""
    child = body_child(data)
    if child.tag != m(f"{operation}Response"):
        raise ProtocolError(f"expected {operation}Response, got {child.tag}")
    container = child.find(m("ResponseMessages"))
    if container is None:
        raise ProtocolError(f"{operation}Response without ResponseMessages")
    return list(container)


def single_message(data: bytes, operation: str) -> Element:
    """The one response message of a single-target request; raises its error."""
    msgs = response_messages(data, operation)
    if len(msgs) != 1:
        raise ProtocolError(f"{operation}: expected one response message, got {len(msgs)}")
    err = message_error(msgs[0])
    if err is not None:
        raise err
    return msgs[0]
