"""Contact <-> `t:Contact` (ContactItemType, children in schema order)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

from ews_client.ews.ids import FieldURI, IndexedFieldURI, PropertyPath, read_item_ref
from ews_client.ews.itemxml import (
    COMMON_READ,
    Children,
    FieldUpdate,
    add_body,
    add_categories,
    add_crm_id,
    add_text,
    children,
    common_updates,
    read_body,
    read_categories,
    read_crm_id,
    read_dt,
    read_text,
    set_update,
)
from ews_client.ews.xml import Element, fmt_dt, new, sub, t
from ews_client.models import Contact, PostalAddress

PHONE_KEYS = {"business_phone": "BusinessPhone", "mobile_phone": "MobilePhone",
              "home_phone": "HomePhone"}  # fmt: skip
ADDRESS_PARTS = (  # (model attribute, element, indexed FieldURI) in schema order
    ("street", "Street", "contacts:PhysicalAddress:Street"),
    ("city", "City", "contacts:PhysicalAddress:City"),
    ("state", "State", "contacts:PhysicalAddress:State"),
    ("country", "CountryOrRegion", "contacts:PhysicalAddress:CountryOrRegion"),
    ("postal_code", "PostalCode", "contacts:PhysicalAddress:PostalCode"),
)
SIMPLE = {  # model field -> (element, FieldURI)
    "display_name": ("DisplayName", "contacts:DisplayName"),
    "given_name": ("GivenName", "contacts:GivenName"),
    "company": ("CompanyName", "contacts:CompanyName"),
    "job_title": ("JobTitle", "contacts:JobTitle"),
    "surname": ("Surname", "contacts:Surname"),
}

CONTACT_READ: tuple[PropertyPath, ...] = (
    *COMMON_READ,
    FieldURI("contacts:DisplayName"),
    FieldURI("contacts:GivenName"),
    FieldURI("contacts:CompanyName"),
    FieldURI("contacts:EmailAddresses"),
    FieldURI("contacts:PhysicalAddresses"),
    FieldURI("contacts:PhoneNumbers"),
    FieldURI("contacts:Birthday"),
    FieldURI("contacts:JobTitle"),
    FieldURI("contacts:Surname"),
)


def _add_emails(parent: Element, emails: tuple[str, ...], only: int | None = None) -> None:
    if not emails:
        return
    arr = sub(parent, t("EmailAddresses"))
    for i, email in enumerate(emails[:3], start=1):
        if only is None or only == i:
            sub(arr, t("Entry"), email, Key=f"EmailAddress{i}")


def _add_address(parent: Element, addr: PostalAddress | None, only: str | None = None) -> None:
    if addr is None:
        return
    arr = sub(parent, t("PhysicalAddresses"))
    entry = sub(arr, t("Entry"), Key="Business")
    for attr, tag, _ in ADDRESS_PARTS:
        if only is None or only == attr:
            add_text(entry, tag, getattr(addr, attr))


def _add_phones(parent: Element, c: Contact, only: str | None = None) -> None:
    present = [(f, k) for f, k in PHONE_KEYS.items() if getattr(c, f) is not None]
    if only is not None:
        present = [(f, k) for f, k in present if f == only]
    if present:
        arr = sub(parent, t("PhoneNumbers"))
        for field, key in present:
            sub(arr, t("Entry"), getattr(c, field), Key=key)


def _add_birthday(parent: Element, c: Contact) -> None:
    if c.birthday is not None:
        # xs:dateTime; noon UTC keeps the calendar day in every zone a server may apply.
        day = datetime(c.birthday.year, c.birthday.month, c.birthday.day, 12, tzinfo=UTC)
        sub(parent, t("Birthday"), fmt_dt(day))


def contact_to_xml(c: Contact) -> Element:
    el = new(t("Contact"))
    add_body(el, c.notes)
    add_categories(el, c.categories)
    add_crm_id(el, c.crm_id)
    add_text(el, "DisplayName", c.display_name)
    add_text(el, "GivenName", c.given_name)
    add_text(el, "CompanyName", c.company)
    _add_emails(el, c.emails)
    _add_address(el, c.business_address)
    _add_phones(el, c)
    _add_birthday(el, c)
    add_text(el, "JobTitle", c.job_title)
    add_text(el, "Surname", c.surname)
    return el


def _entries(kids: Children, tag: str) -> dict[str, Element]:
    arr = kids.get(t(tag))
    return {} if arr is None else {e.get("Key", ""): e for e in arr.iterchildren(t("Entry"))}


def _read_address(kids: Children) -> PostalAddress | None:
    entry = _entries(kids, "PhysicalAddresses").get("Business")
    if entry is None:
        return None
    fields = children(entry)
    parts = {attr: read_text(fields, tag) for attr, tag, _ in ADDRESS_PARTS}
    return PostalAddress(**parts) if any(v is not None for v in parts.values()) else None


def contact_from_xml(el: Element) -> Contact:
    kids = children(el)
    emails = _entries(kids, "EmailAddresses")
    phones = _entries(kids, "PhoneNumbers")
    birthday = read_dt(kids, "Birthday")
    return Contact(
        given_name=read_text(kids, "GivenName"),
        surname=read_text(kids, "Surname"),
        display_name=read_text(kids, "DisplayName"),
        company=read_text(kids, "CompanyName"),
        job_title=read_text(kids, "JobTitle"),
        emails=tuple(
            emails[k].text or ""
            for k in ("EmailAddress1", "EmailAddress2", "EmailAddress3")
            if k in emails and emails[k].text
        ),
        business_phone=_text(phones.get("BusinessPhone")),
        mobile_phone=_text(phones.get("MobilePhone")),
        home_phone=_text(phones.get("HomePhone")),
        business_address=_read_address(kids),
        birthday=birthday.date() if birthday else None,
        categories=read_categories(kids),
        notes=read_body(kids),
        ref=read_item_ref(kids.get(t("ItemId"))),
        crm_id=read_crm_id(el),
        last_modified=read_dt(kids, "LastModifiedTime"),
    )


def _text(el: Element | None) -> str | None:
    return None if el is None else el.text


def contact_updates(c: Contact, field: str) -> list[FieldUpdate]:
    """SetItemField / DeleteItemField for one model field (indexed fields expand)."""
    if field in SIMPLE:
        tag, uri = SIMPLE[field]
        value = getattr(c, field)
        if value is None:
            return [FieldUpdate(FieldURI(uri), None)]
        return [set_update(FieldURI(uri), "Contact", lambda e: add_text(e, tag, value))]
    if field == "emails":
        return _email_updates(c)
    if field in PHONE_KEYS:
        path = IndexedFieldURI("contacts:PhoneNumber", PHONE_KEYS[field])
        if getattr(c, field) is None:
            return [FieldUpdate(path, None)]
        return [set_update(path, "Contact", lambda e: _add_phones(e, c, field))]
    if field == "business_address":
        return _address_updates(c)
    return _common_update(c, field)


def _email_updates(c: Contact) -> list[FieldUpdate]:
    out = []
    for i in range(1, 4):
        path = IndexedFieldURI("contacts:EmailAddress", f"EmailAddress{i}")
        if i <= len(c.emails):
            out.append(set_update(path, "Contact", partial(_add_emails, emails=c.emails, only=i)))
        else:
            out.append(FieldUpdate(path, None))
    return out


def _address_updates(c: Contact) -> list[FieldUpdate]:
    out = []
    addr = c.business_address
    for attr, _, uri in ADDRESS_PARTS:
        path = IndexedFieldURI(uri, "Business")
        if addr is None or getattr(addr, attr) is None:
            out.append(FieldUpdate(path, None))
        else:
            out.append(set_update(path, "Contact", partial(_add_address, addr=addr, only=attr)))
    return out


def _common_update(c: Contact, field: str) -> list[FieldUpdate]:
    if field == "birthday":
        path = FieldURI("contacts:Birthday")
        if c.birthday is None:
            return [FieldUpdate(path, None)]
        return [set_update(path, "Contact", lambda e: _add_birthday(e, c))]
    return common_updates(c, "Contact", field)
