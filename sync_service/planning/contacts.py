"""The contact mapping: CRM `CrmContact` <-> Exchange `Contact`."""

from __future__ import annotations

from typing import Any

from ews_client.models import Contact, EntityKind, PostalAddress

from . import values as v
from .mapping import EntityMap, FieldSpec
from .records import CrmContact
from .values import Fields, JsonValue


def _address(item: Contact, part: str) -> object:
    return None if item.business_address is None else getattr(item.business_address, part)


def _simple(name: str, codec: v.Codec, model: str | None = None) -> FieldSpec:
    """A field held in one CRM column and one model attribute."""
    model = model or name
    return FieldSpec(
        name=name,
        codec=codec,
        crm_read=lambda record: getattr(record, name),
        exchange_read=lambda item: getattr(item, model),
        crm_attrs=(name,),
        model_fields=(model,),
    )


def _address_part(part: str) -> FieldSpec:
    # Exchange writes the business address as one property group, so a change of one part
    # rewrites the address (built from all its canonical parts).
    return FieldSpec(
        name=part,
        codec=v.LINE,
        crm_read=lambda record: getattr(record, part),
        exchange_read=lambda item: _address(item, part),
        crm_attrs=(part,),
        model_fields=("business_address",),
    )


def _crm_emails(record: CrmContact) -> tuple[str | None, ...]:
    return (record.email, record.email2, record.email3)


SPECS: tuple[FieldSpec, ...] = (
    FieldSpec(
        name="first_name",
        codec=v.NAME,
        crm_read=lambda record: record.first_name,
        exchange_read=lambda item: item.given_name,
        crm_attrs=("first_name",),
        model_fields=("given_name", "display_name"),
    ),
    FieldSpec(
        name="last_name",
        codec=v.NAME,
        crm_read=lambda record: record.last_name,
        exchange_read=lambda item: item.surname,
        crm_attrs=("last_name",),
        model_fields=("surname", "display_name"),
    ),
    # One ordered list: EmailAddress1..3 are positions, not independent properties.
    FieldSpec(
        name="emails",
        codec=v.EMAILS,
        crm_read=_crm_emails,
        exchange_read=lambda item: item.emails,
        crm_attrs=("email", "email2", "email3"),
        model_fields=("emails",),
    ),
    _simple("company", v.LINE),
    _simple("job_title", v.LINE),
    _simple("business_phone", v.PHONE),
    _simple("mobile_phone", v.PHONE),
    _simple("home_phone", v.PHONE),
    _address_part("street"),
    _address_part("city"),
    _address_part("state"),
    _address_part("postal_code"),
    _address_part("country"),
    _simple("birthday", v.DATE),
    _simple("categories", v.CATEGORIES),
    _simple("notes", v.TEXT),
)


def _text(fields: Fields, name: str) -> str | None:
    value = fields.get(name)
    return None if value is None else str(value)


def _strings(value: JsonValue) -> tuple[str, ...]:
    return tuple(str(item) for item in value) if isinstance(value, list) else ()


def build_record(fields: Fields, crm_id: str, owner_id: str) -> CrmContact:
    emails = [*_strings(fields.get("emails"))[:3], None, None, None]
    return CrmContact(
        id=crm_id,
        owner_id=owner_id,
        first_name=_text(fields, "first_name"),
        last_name=_text(fields, "last_name"),
        email=emails[0],
        email2=emails[1],
        email3=emails[2],
        company=_text(fields, "company"),
        job_title=_text(fields, "job_title"),
        business_phone=_text(fields, "business_phone"),
        mobile_phone=_text(fields, "mobile_phone"),
        home_phone=_text(fields, "home_phone"),
        street=_text(fields, "street"),
        city=_text(fields, "city"),
        state=_text(fields, "state"),
        postal_code=_text(fields, "postal_code"),
        country=_text(fields, "country"),
        birthday=v.parse_date(fields.get("birthday")),
        categories=_strings(fields.get("categories")),
        notes=_text(fields, "notes"),
    )


def build_item(fields: Fields, crm_id: str) -> Contact:
    parts: dict[str, Any] = {
        part: _text(fields, part) for part in ("street", "city", "state", "postal_code", "country")
    }
    address = PostalAddress(**parts) if any(parts.values()) else None
    return Contact(
        given_name=_text(fields, "first_name"),
        surname=_text(fields, "last_name"),
        display_name=title(fields) or None,
        company=_text(fields, "company"),
        job_title=_text(fields, "job_title"),
        emails=_strings(fields.get("emails"))[:3],
        business_phone=_text(fields, "business_phone"),
        mobile_phone=_text(fields, "mobile_phone"),
        home_phone=_text(fields, "home_phone"),
        business_address=address,
        birthday=v.parse_date(fields.get("birthday")),
        categories=_strings(fields.get("categories")),
        notes=_text(fields, "notes"),
        crm_id=crm_id,
    )


def title(fields: Fields) -> str:
    """ "First Last", or the first e-mail address when there is no name."""
    name = " ".join(filter(None, (_text(fields, "first_name"), _text(fields, "last_name"))))
    return name or next(iter(_strings(fields.get("emails"))), "")


CONTACTS = EntityMap(
    entity=EntityKind.CONTACT,
    specs=SPECS,
    build_record=build_record,
    build_item=build_item,
    title=title,
)
