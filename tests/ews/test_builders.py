"""Golden XML for every builder, and every request validated against the EWS XSD."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from lxml import etree

from ews_client.ews import find, items, notifications, sync, userconfig
from ews_client.ews.calendar import occurrence_updates
from ews_client.ews.convert import READ_PATHS, item_to_xml, item_updates
from ews_client.ews.ids import DistinguishedFolder, FolderId, OccurrenceRef
from ews_client.ews.items import ItemChange
from ews_client.models import (
    Appointment,
    Attendee,
    Contact,
    EntityKind,
    Importance,
    ItemRef,
    ModifiedOccurrence,
    PostalAddress,
    Recurrence,
    Sensitivity,
    Task,
    TaskStatus,
)

GOLDEN = Path(__file__).parent / "golden"
MBX = "ada@example.org"
START = datetime(2024, 3, 4, 8, 0, tzinfo=UTC)
CONTACTS = DistinguishedFolder("contacts", MBX)
REF = ItemRef("AAMkC1", "EQAAAA1")

CONTACT = Contact(
    given_name="Ada", surname="Lovelace", display_name="Ada Lovelace",
    company="Analytical Engines", job_title="Analyst",
    emails=("ada@example.org", "ada@home.example"), business_phone="+44 1",
    mobile_phone="+44 2", home_phone="+44 3",
    business_address=PostalAddress("1 Main St", "London", None, "N1", "UK"),
    birthday=date(1815, 12, 10), categories=("Customer", "VIP"), notes="Met at the fair",
    crm_id="crm-42",
)  # fmt: skip
APPOINTMENT = Appointment(
    subject="Weekly sync", start=START, end=START.replace(hour=9), time_zone="Europe/Berlin",
    location="Room 1", notes="Agenda", required_attendees=(Attendee("bob@example.org", "Bob"),),
    optional_attendees=(Attendee("eve@example.org"),), sensitivity=Sensitivity.PRIVATE,
    reminder_minutes=15, categories=("Team",), crm_id="crm-7",
    recurrence=Recurrence(kind="weekly", days_of_week=("monday",), occurrences=5,
                          start_date=date(2024, 3, 4)),
)  # fmt: skip
TASK = Task(
    subject="Call back", notes="About the offer", start=START, due=START.replace(day=8),
    status=TaskStatus.IN_PROGRESS, percent_complete=50, importance=Importance.HIGH,
    reminder_at=START.replace(day=7), categories=("Follow-up",), crm_id="crm-9",
)  # fmt: skip
OCCURRENCE = ModifiedOccurrence(
    original_start=START.replace(day=11), start=START.replace(day=11, hour=10),
    end=START.replace(day=11, hour=11), subject="Moved", location="Room 2", notes="Moved agenda",
)  # fmt: skip
ALL = frozenset(
    {"given_name", "surname", "display_name", "company", "job_title", "emails", "business_phone",
     "mobile_phone", "home_phone", "business_address", "birthday", "categories", "notes"}
)  # fmt: skip

CASES: dict[str, Callable[[], bytes]] = {
    "get_folder": lambda: find.build_get_folder(MBX, [CONTACTS, FolderId("AAMkF1", "AQ1")]),
    "find_folder": lambda: find.build_find_folder(
        MBX, DistinguishedFolder("msgfolderroot", MBX), "CRM"
    ),
    "sync_first": lambda: sync.build_sync_folder_items(MBX, CONTACTS, None),
    "sync_next": lambda: sync.build_sync_folder_items(MBX, CONTACTS, "H4sIAAAA", 100),
    "get_item_contact": lambda: items.build_get_item(MBX, [REF], READ_PATHS[EntityKind.CONTACT]),
    "get_item_calendar": lambda: items.build_get_item(
        MBX, [REF, OccurrenceRef("AAMkA1", 2)], READ_PATHS[EntityKind.APPOINTMENT]
    ),
    "get_item_task": lambda: items.build_get_item(MBX, [REF], READ_PATHS[EntityKind.TASK]),
    "create_contact": lambda: items.build_create_item(MBX, CONTACTS, [item_to_xml(CONTACT)]),
    "create_appointment": lambda: items.build_create_item(
        MBX, DistinguishedFolder("calendar", MBX), [item_to_xml(APPOINTMENT)], calendar=True
    ),
    "create_task": lambda: items.build_create_item(
        MBX, DistinguishedFolder("tasks", MBX), [item_to_xml(TASK)]
    ),
    "update_contact": lambda: items.build_update_item(
        MBX, [ItemChange(REF, tuple(item_updates(CONTACT, ALL)))]
    ),
    "update_contact_deletes": lambda: items.build_update_item(
        MBX, [ItemChange(REF, tuple(item_updates(Contact(), ALL | {"crm_id"})))]
    ),
    "update_appointment": lambda: items.build_update_item(
        MBX,
        [ItemChange(REF, tuple(item_updates(APPOINTMENT, frozenset(Appointment.__slots__))))],
        calendar=True,
    ),
    "update_occurrence": lambda: items.build_update_item(
        MBX,
        [ItemChange(OccurrenceRef("AAMkA1", 2), tuple(occurrence_updates(OCCURRENCE)))],
        calendar=True,
    ),
    "update_task": lambda: items.build_update_item(
        MBX, [ItemChange(REF, tuple(item_updates(TASK, frozenset(Task.__slots__))))]
    ),
    "delete_item": lambda: items.build_delete_item(MBX, [REF, OccurrenceRef("AAMkA1", 3)]),
    "delete_item_soft": lambda: items.build_delete_item(
        MBX, [REF], delete_type="MoveToDeletedItems"
    ),
    "find_by_crm_id": lambda: find.build_find_by_crm_id(MBX, CONTACTS, "crm-42"),
    "create_user_configuration": lambda: userconfig.build_create_user_configuration(
        MBX, DistinguishedFolder("root", MBX), "CrmSync.Marker", {"generation": "1"}
    ),
    "get_user_configuration": lambda: userconfig.build_get_user_configuration(
        MBX, DistinguishedFolder("root", MBX), "CrmSync.Marker"
    ),
    "update_user_configuration": lambda: userconfig.build_update_user_configuration(
        MBX, DistinguishedFolder("root", MBX), "CrmSync.Marker", {"generation": "2", "at": "x"}
    ),
    "subscribe": lambda: notifications.build_subscribe(
        MBX, [CONTACTS, DistinguishedFolder("calendar", MBX)]
    ),
    "get_streaming_events": lambda: notifications.build_get_streaming_events(
        MBX, ["JABzdWIx", "JABzdWIy"], 5
    ),
    "unsubscribe": lambda: notifications.build_unsubscribe(MBX, "JABzdWIx"),
}


def _pretty(data: bytes) -> bytes:
    root = etree.fromstring(data)
    etree.indent(root, space="  ")
    return etree.tostring(root, xml_declaration=True, encoding="utf-8") + b"\n"


@pytest.mark.parametrize("name", sorted(CASES))
def test_builder_matches_golden_and_schema(
    name: str, assert_valid: Callable[[bytes], None]
) -> None:
    data = CASES[name]()
    assert_valid(data)
    path = GOLDEN / f"{name}.xml"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_bytes(_pretty(data))
    assert _pretty(data) == path.read_bytes()


def test_every_request_carries_version_and_impersonation() -> None:
    for name, build in CASES.items():
        root = etree.fromstring(build())
        ns = {"t": "http://schemas.microsoft.com/exchange/services/2006/types"}
        version = root.find(".//t:RequestServerVersion", ns)
        assert version is not None and version.get("Version") == "Exchange2013_SP1", name
        smtp = root.findtext(
            ".//t:ExchangeImpersonation/t:ConnectingSID/t:PrimarySmtpAddress", namespaces=ns
        )
        assert smtp == MBX, name


def test_sync_rejects_out_of_range_page_size() -> None:
    with pytest.raises(ValueError):
        sync.build_sync_folder_items(MBX, CONTACTS, None, 513)


def test_streaming_limits_subscription_count() -> None:
    with pytest.raises(ValueError):
        notifications.build_get_streaming_events(MBX, [f"s{i}" for i in range(201)])
