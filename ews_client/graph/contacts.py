"""Contact <-> Graph `contact` JSON."""

from __future__ import annotations

from datetime import date
from typing import Any

from ews_client.graph.wire import (
    Json,
    etag_of,
    extended_props,
    opt_str,
    parse_dt,
    read_crm_prop,
)
from ews_client.models import Contact, ItemRef, PostalAddress

SIMPLE = {  # model field -> Graph property
    "given_name": "givenName",
    "surname": "surname",
    "display_name": "displayName",
    "company": "companyName",
    "job_title": "jobTitle",
    "mobile_phone": "mobilePhone",
    "notes": "personalNotes",
}
ADDRESS = {"street": "street", "city": "city", "state": "state", "postal_code": "postalCode",
           "country": "countryOrRegion"}  # fmt: skip


def _address(addr: PostalAddress | None) -> Json:
    if addr is None:
        return {}  # an empty address clears it
    return {key: getattr(addr, attr) or "" for attr, key in ADDRESS.items()}


def contact_fields(c: Contact, field: str) -> Json:
    """The Graph properties that carry one model field (for POST and PATCH)."""
    if field in SIMPLE:
        return {SIMPLE[field]: getattr(c, field)}
    if field == "emails":
        return {"emailAddresses": [{"address": e} for e in c.emails[:3]]}
    if field == "business_phone":
        return {"businessPhones": [c.business_phone] if c.business_phone else []}
    if field == "home_phone":
        return {"homePhones": [c.home_phone] if c.home_phone else []}
    if field == "business_address":
        return {"businessAddress": _address(c.business_address)}
    if field == "birthday":
        return {"birthday": f"{c.birthday.isoformat()}T00:00:00Z" if c.birthday else None}
    if field == "categories":
        return {"categories": list(c.categories)}
    if field == "crm_id":
        return {"singleValueExtendedProperties": extended_props(c.crm_id)}
    return {}


def _first(values: Any) -> str | None:
    return opt_str(values[0]) if isinstance(values, list) and values else None


def _read_address(obj: Any) -> PostalAddress | None:
    if not isinstance(obj, dict):
        return None
    parts = {attr: opt_str(obj.get(key)) for attr, key in ADDRESS.items()}
    return PostalAddress(**parts) if any(parts.values()) else None


def _birthday(value: Any) -> date | None:
    return parse_dt(str(value)).date() if value else None


def contact_from_json(obj: Json) -> Contact:
    emails = tuple(str(e["address"]) for e in obj.get("emailAddresses") or () if e.get("address"))
    modified = obj.get("lastModifiedDateTime")
    text = {attr: opt_str(obj.get(key)) for attr, key in SIMPLE.items()}
    return Contact(
        given_name=text["given_name"],
        surname=text["surname"],
        display_name=text["display_name"],
        company=text["company"],
        job_title=text["job_title"],
        mobile_phone=text["mobile_phone"],
        notes=text["notes"],
        emails=emails[:3],
        business_phone=_first(obj.get("businessPhones")),
        home_phone=_first(obj.get("homePhones")),
        business_address=_read_address(obj.get("businessAddress")),
        birthday=_birthday(obj.get("birthday")),
        categories=tuple(obj.get("categories") or ()),
        ref=ItemRef(str(obj["id"]), etag_of(obj)) if obj.get("id") else None,
        crm_id=read_crm_prop(obj),
        last_modified=parse_dt(str(modified)) if modified else None,
    )
