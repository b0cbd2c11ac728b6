"""SOAP envelopes of the simulator: request headers in, responses and faults out."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from .errors import SimulatorError
from .xmlutil import SOAP, E, T, local, m, sub, t

SERVER_VERSION = {
    "MajorVersion": "15",
    "MinorVersion": "20",
    "MajorBuildNumber": "7249",
    "MinorBuildNumber": "27",
    "Version": "V2018_01_08",
}
MESSAGES = {
    "ErrorServerBusy": "The server cannot service this request right now. Try again later.",
    "ErrorExceededConnectionCount": "You have exceeded the available concurrent connections "
    "for your account.  Try again once your other requests have completed.",
    "ErrorInternalServerTransientError": "An internal server error occurred. Try again later.",
    "ErrorSchemaValidation": "The request failed schema validation.",
    "ErrorImpersonateUserDenied": "The account does not have permission to impersonate the "
    "requested user.",
    "ErrorNonExistentMailbox": "The SMTP address has no mailbox associated with it.",
}


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed request envelope: the operation element and what the headers say."""

    operation: etree._Element
    headers: tuple[etree._Element, ...]
    impersonated: str | None
    version: str | None


class EnvelopeError(SimulatorError):
    pass


def read_envelope(root: etree._Element) -> Request:
    if root.tag != f"{{{SOAP}}}Envelope":
        raise EnvelopeError("not a SOAP 1.1 envelope")
    header = root.find(f"{{{SOAP}}}Header")
    body = root.find(f"{{{SOAP}}}Body")
    if body is None or len(body) != 1:
        raise EnvelopeError("the body must hold exactly one operation")
    headers = tuple(header) if header is not None else ()
    smtp, version = None, None
    for h in headers:
        if h.tag == t("ExchangeImpersonation"):
            smtp = h.findtext(f"{t('ConnectingSID')}/{t('PrimarySmtpAddress')}")
            smtp = smtp or h.findtext(f"{t('ConnectingSID')}/{t('SmtpAddress')}")
        elif h.tag == t("RequestServerVersion"):
            version = h.get("Version")
    return Request(body[0], headers, smtp.strip().lower() if smtp else None, version)


def envelope(body_child: etree._Element) -> bytes:
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"s": SOAP})
    header = sub(env, f"{{{SOAP}}}Header")
    header.append(server_version_info())
    sub(env, f"{{{SOAP}}}Body").append(body_child)
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def server_version_info() -> etree._Element:
    return etree.Element(t("ServerVersionInfo"), SERVER_VERSION, nsmap={"h": T})


def fault(code: str, message: str | None = None, backoff_ms: int | None = None) -> bytes:
    """A SOAP fault as Exchange sends it (HTTP 500): detail/e:ResponseCode (+ t:MessageXml)."""
    text = message or MESSAGES.get(code, code)
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"s": SOAP})
    body = sub(env, f"{{{SOAP}}}Body")
    node = sub(body, f"{{{SOAP}}}Fault")
    faultcode = etree.SubElement(node, "faultcode", nsmap={"a": T})
    faultcode.text = f"a:{code}"
    sub(node, "faultstring", text).set("{http://www.w3.org/XML/1998/namespace}lang", "en-US")
    detail = sub(node, "detail")
    sub(detail, f"{{{E}}}ResponseCode", code)
    sub(detail, f"{{{E}}}Message", text)
    if backoff_ms is not None:
        xml = sub(detail, t("MessageXml"))
        sub(xml, t("Value"), str(backoff_ms), Name="BackOffMilliseconds")
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def response_root(operation: str) -> tuple[etree._Element, etree._Element]:
    """(m:<Operation>Response, its m:ResponseMessages)."""
    root = etree.Element(m(f"{operation}Response"), nsmap={"m": m("")[1:-1], "t": T})
    return root, sub(root, m("ResponseMessages"))


def success(messages: etree._Element, operation: str) -> etree._Element:
    msg = sub(messages, m(f"{operation}ResponseMessage"), ResponseClass="Success")
    sub(msg, m("ResponseCode"), "NoError")
    return msg


def error(
    messages: etree._Element,
    operation: str,
    code: str,
    text: str,
    backoff_ms: int | None = None,
) -> etree._Element:
    msg = sub(messages, m(f"{operation}ResponseMessage"), ResponseClass="Error")
    sub(msg, m("MessageText"), text)
    sub(msg, m("ResponseCode"), code)
    sub(msg, m("DescriptiveLinkKey"), "0")
    if backoff_ms is not None:
        xml = sub(msg, m("MessageXml"))
        sub(xml, t("Value"), str(backoff_ms), Name="BackOffMilliseconds")
    return msg


def operation_name(element: etree._Element) -> str:
    return local(element.tag)
