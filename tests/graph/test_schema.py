"""The Graph metadata validator (simulator/graph/schema.py) on objects right and wrong, and the
validation hook that records what the simulator sends and what clients send."""

from __future__ import annotations

import ssl

import aiohttp
import pytest

from ews_client.simulator.graph import conform, schema
from ews_client.simulator.testing import RunningSimulator

from .conftest import BOX, credentials

CONTACT = {
    "@odata.etag": 'W/"1"',
    "id": "AAMk1",
    "givenName": "Ada",
    "emailAddresses": [{"name": "Ada", "address": "ada@x.example"}],
    "businessPhones": ["+1 555", "+1 556"],
    "birthday": "1990-05-01T00:00:00Z",
    "categories": [],
    "changeKey": "CQAAAB",
}


def test_a_contact_graph_would_send_has_no_problems() -> None:
    assert schema.check("contact", CONTACT) == []


def test_the_metadata_is_parsed_once_and_knows_the_base_types() -> None:
    assert schema.metadata() is schema.metadata()
    names = [t.name for t in schema.metadata().lineage("microsoft.graph.contact")]
    assert names == ["microsoft.graph.contact", "microsoft.graph.outlookItem",
                     "microsoft.graph.entity"]  # fmt: skip


def test_an_undeclared_property_is_named_with_its_type() -> None:
    problems = schema.check("contact", {**CONTACT, "emails": []})
    assert problems == ["contact.emails: not declared by contact or its base types"]


def test_a_todo_task_has_no_change_key() -> None:
    # todoTask derives from entity, not outlookItem.
    assert schema.check("todoTask", {"id": "1", "changeKey": "x"}) == [
        "todoTask.changeKey: not declared by todoTask or its base types"
    ]


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (
            {"birthday": "1990-05-01"},
            "contact.birthday: '1990-05-01' is not a valid Edm.DateTimeOffset",
        ),
        ({"birthday": "1990-05-01T00:00:00"}, "not a valid Edm.DateTimeOffset"),
        ({"givenName": 3}, "contact.givenName: expected a string (Edm.String), got int"),
        ({"businessPhones": "+1 555"}, "contact.businessPhones: expected a list"),
        (
            {"emailAddresses": [{"mail": "a@x"}]},
            "emailAddresses[0].mail: not declared by emailAddress",
        ),
        ({"id": None}, "contact.id: null, but Edm.String is not nullable"),
        ({"businessPhones": None}, "contact.businessPhones: null, but Collection(Edm.String)"),
    ],
)
def test_wrong_values_are_reported(obj: dict[str, object], expected: str) -> None:
    problems = schema.check("contact", obj)
    assert len(problems) == 1 and expected in problems[0], problems


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"importance": "urgent"}, "'urgent' is not a member of importance"),
        ({"isAllDay": "true"}, "expected a boolean"),
        ({"reminderMinutesBeforeStart": 1.5}, "expected an integer (Edm.Int32)"),
        ({"reminderMinutesBeforeStart": 2**31}, "out of range for Edm.Int32"),
        ({"recurrence": {"range": {"type": "noEnd", "startDate": "2026-1-5"}}}, "Edm.Date"),
        (
            {"recurrence": {"pattern": {"daysOfWeek": ["mon"]}}},
            "'mon' is not a member of dayOfWeek",
        ),
        (
            {"start": {"dateTime": "2026-01-05T09:00:00", "timeZone": 1}},
            "timeZone: expected a string",
        ),
    ],
)
def test_wrong_event_values_are_reported(obj: dict[str, object], expected: str) -> None:
    problems = schema.check("event", obj)
    assert len(problems) == 1 and expected in problems[0], problems


def test_primitive_formats() -> None:
    assert schema.check("timeSlot", {"start": {"dateTime": "x", "timeZone": "UTC"}}) == []
    assert schema.check("workingHours", {"startTime": "08:00:00.0000000"}) == []
    assert schema.check("workingHours", {"startTime": "8 am"}) != []
    assert schema.check("assignedLicense", {"skuId": "not-a-guid"}) != []
    assert schema.check("assignedLicense", {"skuId": "6fd2c87f-b296-42f0-b197-1e91e994b900"}) == []
    assert schema.check("fileAttachment", {"contentBytes": "aGVsbG8="}) == []
    assert schema.check("fileAttachment", {"contentBytes": "not base64!"}) != []


def test_odata_annotations_and_a_delta_removal_are_allowed() -> None:
    removed = {"@odata.type": "#microsoft.graph.contact", "id": "AAMk1",
               "@removed": {"reason": "deleted"}, "name@odata.type": "x"}  # fmt: skip
    assert schema.check("contact", removed) == []


def test_odata_type_selects_the_derived_type_and_must_derive() -> None:
    ext = {"@odata.type": "microsoft.graph.openTypeExtension", "id": "x", "extensionName": "a",
           "anything": [1, 2]}  # fmt: skip
    assert schema.check("extension", ext) == []  # an open extension's data is its own
    assert schema.check("extension", {"id": "x", "extensionName": "a"}) == [
        "extension.extensionName: not declared by extension or its base types"
    ]
    wrong = schema.check("extension", {"@odata.type": "#microsoft.graph.contact"})
    assert wrong == ["extension: @odata.type '#microsoft.graph.contact' is not a extension"]


def test_navigation_properties_are_checked_against_their_entity_type() -> None:
    good = [{"id": "String {00020329-0000-0000-C000-000000000046} Name x", "value": "1"}]
    assert schema.check("contact", {"singleValueExtendedProperties": good}) == []
    bad = [{"propertyId": "x", "value": "1"}]
    problems = schema.check("contact", {"singleValueExtendedProperties": bad})
    assert problems == ["contact.singleValueExtendedProperties[0].propertyId: not declared by "
                        "singleValueLegacyExtendedProperty or its base types"]  # fmt: skip


def test_routes_name_their_entity_types() -> None:
    assert conform.entity_type("users/a@b/contacts") == "contact"
    assert conform.entity_type("users/a@b/contacts/delta()") == "contact"
    assert conform.entity_type("users/a@b/contactFolders/x/contacts/delta") == "contact"
    assert conform.entity_type("users/a@b/contactFolders") == "contactFolder"
    assert conform.entity_type("users/a@b/calendarView/delta") == "event"
    assert conform.entity_type("users/a@b/events/x/instances") == "event"
    assert conform.entity_type("users/a@b/events/x/extensions") == "extension"
    assert conform.entity_type("users/a@b/todo/lists/l/tasks/t") == "todoTask"
    assert conform.entity_type("users/a@b/todo/lists/l/tasks/t/linkedResources") == "linkedResource"
    assert conform.entity_type("users/a@b/events/x/cancel") is None
    assert conform.entity_type("$batch") is None


def test_a_page_may_carry_only_value_and_odata_links() -> None:
    page = {"@odata.nextLink": "https://x", "value": [CONTACT], "count": 1}
    assert conform.problems("contact", page) == ["page.count: not part of a collection answer"]


async def test_the_hook_records_a_client_body_graph_does_not_declare(
    sim: RunningSimulator,
) -> None:
    creds = credentials(sim)
    tls = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=sim.ca_file))
    try:
        async with aiohttp.ClientSession(connector=tls) as http:
            headers = {**await creds.headers(), "Prefer": 'IdType="ImmutableId"'}
            url = f"{sim.graph_url}/users/{BOX}/contacts"
            body = {"givenName": "A", "email": "a@x"}
            async with http.post(url, json=body, headers=headers) as answer:
                # Graph may refuse an unknown property; what matters here is the record.
                status = answer.status
    finally:
        creds.close()
    assert sim.sim.invalid_requests == [
        f"POST /users/{BOX}/contacts: contact.email: not declared by contact or its base types"
    ]
    assert status in (201, 400)
    sim.sim.invalid_requests.clear()  # recorded as intended: the fixture's check stays strict
