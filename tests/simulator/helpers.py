"""Hand-built EWS requests for the simulator tests, and response accessors."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import aiohttp
from lxml import etree

from ews_client.simulator.testing import RunningSimulator

NS = {
    "s": "http://schemas.xmlsoap.org/soap/envelope/",
    "m": "http://schemas.microsoft.com/exchange/services/2006/messages",
    "t": "http://schemas.microsoft.com/exchange/services/2006/types",
    "e": "http://schemas.microsoft.com/exchange/services/2006/errors",
}
CRM_GUID = "6c3f4b2e-8a1d-4e57-9b0c-2d5e7f9a1c34"
EXT_URI = (
    f'<t:ExtendedFieldURI PropertySetId="{CRM_GUID}" PropertyName="CrmId" PropertyType="String"/>'
)


def envelope(body: str, mailbox: str | None) -> bytes:
    imp = ""
    if mailbox is not None:
        imp = (
            "<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>"
            f"{mailbox}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<s:Envelope xmlns:s="{NS["s"]}" xmlns:m="{NS["m"]}" xmlns:t="{NS["t"]}">'
        f'<s:Header><t:RequestServerVersion Version="Exchange2013_SP1"/>{imp}</s:Header>'
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


@dataclass
class Answer:
    status: int
    root: etree._Element
    headers: dict[str, str]

    def xp(self, path: str) -> list[etree._Element]:
        return self.root.xpath(path, namespaces=NS)  # type: ignore[return-value]

    def text(self, path: str) -> str:
        return str(self.root.xpath(f"string({path})", namespaces=NS))

    @property
    def codes(self) -> list[str]:
        return [e.text or "" for e in self.xp("//m:ResponseCode")]

    @property
    def fault_code(self) -> str:
        return self.text("//detail/e:ResponseCode")


@dataclass(frozen=True)
class Endpoint:
    """A simulator reached by address only (one running as its own process)."""

    ews_url: str
    admin_url: str
    username: str
    password: str


Target = RunningSimulator | Endpoint


def auth(sim: Target) -> dict[str, str]:
    token = base64.b64encode(f"{sim.username}:{sim.password}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "text/xml; charset=utf-8"}


async def call(
    session: aiohttp.ClientSession, sim: Target, body: str, mailbox: str | None
) -> Answer:
    headers = auth(sim)
    if mailbox:
        headers["X-AnchorMailbox"] = mailbox
    async with session.post(sim.ews_url, data=envelope(body, mailbox), headers=headers) as resp:
        raw = await resp.read()
        root = etree.fromstring(raw) if raw.startswith(b"<") else etree.Element("empty")
        return Answer(resp.status, root, dict(resp.headers))


def sync_body(
    folder: str, state: str | None = None, max_changes: int = 512, shape: str = "IdOnly"
) -> str:
    st = f"<m:SyncState>{state}</m:SyncState>" if state else ""
    return (
        f"<m:SyncFolderItems><m:ItemShape><t:BaseShape>{shape}</t:BaseShape></m:ItemShape>"
        f'<m:SyncFolderId><t:DistinguishedFolderId Id="{folder}"/></m:SyncFolderId>{st}'
        f"<m:MaxChangesReturned>{max_changes}</m:MaxChangesReturned></m:SyncFolderItems>"
    )


def get_item_body(
    ids: list[tuple[str, str]], shape: str = "Default", extra: str = "", body_type: str = ""
) -> str:
    refs = "".join(f'<t:ItemId Id="{i}" ChangeKey="{ck}"/>' for i, ck in ids)
    kind = f"<t:BodyType>{body_type}</t:BodyType>" if body_type else ""
    add = f"<t:AdditionalProperties>{extra}</t:AdditionalProperties>" if extra else ""
    return (
        f"<m:GetItem><m:ItemShape><t:BaseShape>{shape}</t:BaseShape>{kind}{add}</m:ItemShape>"
        f"<m:ItemIds>{refs}</m:ItemIds></m:GetItem>"
    )


def create_contact_body(given: str, crm_id: str | None = None) -> str:
    ext = (
        f"<t:ExtendedProperty>{EXT_URI}<t:Value>{crm_id}</t:Value></t:ExtendedProperty>"
        if crm_id
        else ""
    )
    return (
        '<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId>'
        '<t:DistinguishedFolderId Id="contacts"/></m:SavedItemFolderId><m:Items>'
        f"<t:Contact>{ext}<t:GivenName>{given}</t:GivenName>"
        f'<t:EmailAddresses><t:Entry Key="EmailAddress1">{given.lower()}@example.com</t:Entry>'
        "</t:EmailAddresses><t:Surname>Doe</t:Surname></t:Contact></m:Items></m:CreateItem>"
    )


def set_field_body(
    item_id: str, ck: str, field: str, value_xml: str, resolution: str = "AutoResolve"
) -> str:
    return (
        f'<m:UpdateItem MessageDisposition="SaveOnly" ConflictResolution="{resolution}">'
        f'<m:ItemChanges><t:ItemChange><t:ItemId Id="{item_id}" ChangeKey="{ck}"/><t:Updates>'
        f'<t:SetItemField><t:FieldURI FieldURI="{field}"/><t:Contact>{value_xml}</t:Contact>'
        "</t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"
    )
