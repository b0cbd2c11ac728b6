"""Parsers against recorded responses: every operation and every error shape."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from lxml import etree

from ews_client.errors import (
    ConflictError,
    InvalidSyncStateError,
    ItemNotFoundError,
    ItemRejectedError,
    MailboxError,
    ProtocolError,
    QuotaExceededError,
    ThrottledError,
    TransientError,
)
from ews_client.ews import find, items, notifications, sync, userconfig
from ews_client.ews.codes import CODE_TABLE
from ews_client.ews.convert import item_from_xml, item_to_xml
from ews_client.ews.items import FetchedItem
from ews_client.ews.soap import body_child
from ews_client.ews.xml import t
from ews_client.models import (
    Appointment,
    Contact,
    Importance,
    ItemRef,
    PostalAddress,
    Recurrence,
    Sensitivity,
    Task,
    TaskStatus,
)
from tests.ews.conftest import response, soap_children
from tests.ews.test_builders import APPOINTMENT, CONTACT, TASK

RESPONSES = sorted(p.stem for p in (Path(__file__).parent / "responses").glob("*.xml"))
HOSTILE = {"entity_expansion", "external_entity"}


@pytest.mark.parametrize("name", [n for n in RESPONSES if n not in HOSTILE])
def test_recorded_responses_are_schema_valid(name: str, ews_schema: etree.XMLSchema) -> None:
    for child in soap_children(response(name)):
        if child.tag.endswith("Fault"):
            continue  # SOAP 1.1 faults are outside the EWS schema
        assert ews_schema.validate(child), f"{name}: {ews_schema.error_log}"


def test_sync_page() -> None:
    page = sync.parse_sync_folder_items(response("sync_page"))
    assert page.sync_state == "H4sIAAAAAAAEAO29B2AcSZY"
    assert not page.includes_last
    assert [(c.kind, c.ref.id) for c in page.changes] == [
        ("create", "AAMkC1"), ("update", "AAMkC2"), ("delete", "AAMkC3"), ("read_flag", "AAMkC2")
    ]  # fmt: skip
    upserts, deletes = sync.coalesce(list(page.changes))
    assert [r.id for r in upserts] == ["AAMkC1", "AAMkC2"] and deletes == ["AAMkC3"]


def test_sync_last_page() -> None:
    page = sync.parse_sync_folder_items(response("sync_last"))
    assert page.includes_last and page.changes == ()


def test_sync_invalid_state() -> None:
    with pytest.raises(InvalidSyncStateError) as exc:
        sync.parse_sync_folder_items(response("sync_invalid_state"))
    assert exc.value.code == "ErrorInvalidSyncStateData"


def test_server_busy_per_message_shape() -> None:
    with pytest.raises(ThrottledError) as exc:
        sync.parse_sync_folder_items(response("server_busy_message"))
    assert exc.value.code == "ErrorServerBusy" and exc.value.backoff_s == 1.75


def test_server_busy_fault_shape() -> None:
    with pytest.raises(ThrottledError) as exc:
        body_child(response("fault_server_busy"))
    assert exc.value.code == "ErrorServerBusy" and exc.value.backoff_s == 2.5


def test_connection_count_fault() -> None:
    with pytest.raises(ThrottledError) as exc:
        sync.parse_sync_folder_items(response("fault_connection_count"))
    assert exc.value.code == "ErrorExceededConnectionCount" and exc.value.backoff_s == 0.0


def test_impersonation_fault_is_mailbox_error() -> None:
    with pytest.raises(MailboxError) as exc:
        items.parse_get_item(response("fault_impersonation"))
    assert exc.value.code == "ErrorImpersonateUserDenied"


def test_fault_without_ews_code_is_protocol_error() -> None:
    with pytest.raises(ProtocolError) as exc:
        items.parse_get_item(response("fault_schema"))
    assert "schema validation" in str(exc.value)


def test_get_item_contact_and_missing_item() -> None:
    first, second = items.parse_get_item(response("get_item_contact"))
    assert isinstance(first, FetchedItem) and isinstance(second, ItemNotFoundError)
    assert first.item == Contact(
        given_name="Ada", surname="Lovelace", display_name="Ada Lovelace",
        company="Analytical Engines", job_title="Analyst",
        emails=("ada@example.org", "ada@home.example"), business_phone="+44 1",
        mobile_phone="+44 2",
        business_address=PostalAddress("1 Main St", "London", None, "N1", "UK"),
        birthday=date(1815, 12, 10), categories=("Customer", "VIP"), notes="Met at the fair",
        ref=ItemRef("AAMkC1", "EQAAAA1"), crm_id="crm-42",
        last_modified=datetime(2024, 5, 1, 8, 30, tzinfo=UTC),
    )  # fmt: skip


def test_get_item_recurring_master() -> None:
    [fetched] = items.parse_get_item(response("get_item_calendar"))
    assert isinstance(fetched, FetchedItem)
    appt = fetched.item
    assert isinstance(appt, Appointment)
    assert appt.time_zone == "Europe/Berlin" and appt.sensitivity is Sensitivity.PRIVATE
    assert appt.organizer == "boss@example.org" and appt.is_meeting
    assert appt.crm_id == "crm-7"  # property-set GUID compared case-insensitively
    assert appt.recurrence == Recurrence(
        kind="weekly", days_of_week=("monday",), start_date=date(2024, 3, 4), occurrences=5
    )
    assert appt.deleted_occurrences == (datetime(2024, 3, 18, 8, tzinfo=UTC),)
    assert [o.ref.id for o in fetched.occurrences] == ["AAMkOcc2"]
    assert appt.modified_occurrences[0].original_start == datetime(2024, 3, 11, 8, tzinfo=UTC)


def test_get_occurrence() -> None:
    [occ] = items.parse_get_occurrences(response("get_item_occurrence"))
    assert not isinstance(occ, Exception)
    assert (occ.subject, occ.location, occ.notes) == (
        "Weekly sync (moved)",
        "Room 2",
        "Moved agenda",
    )
    assert occ.start == datetime(2024, 3, 11, 10, tzinfo=UTC)


def test_get_item_task_and_busy_message() -> None:
    task, busy = items.parse_get_item(response("get_item_task"))
    assert isinstance(task, FetchedItem) and isinstance(busy, ThrottledError)
    assert busy.backoff_s == 0.3
    assert task.item == Task(
        subject="Call back", notes="About the offer",
        start=datetime(2024, 5, 30, tzinfo=UTC), due=datetime(2024, 6, 1, tzinfo=UTC),
        completed=datetime(2024, 6, 2, tzinfo=UTC), status=TaskStatus.IN_PROGRESS,
        percent_complete=50, importance=Importance.HIGH,
        reminder_at=datetime(2024, 6, 1, 7, tzinfo=UTC), ref=ItemRef("AAMkT1", "EwAAAA1"),
    )  # fmt: skip


def test_get_item_timeout_is_transient() -> None:
    [err] = items.parse_get_item(response("get_item_timeout"))
    assert isinstance(err, TransientError) and err.code == "ErrorTimeoutExpired"


def test_create_item_mixed_results() -> None:
    ok, rejected, quota = items.parse_create_item(response("create_item"))
    assert ok == ItemRef("AAMkNew1", "EQAAAN1")
    assert isinstance(rejected, ItemRejectedError) and isinstance(quota, QuotaExceededError)


def test_update_item_conflict() -> None:
    ok, conflict = items.parse_update_item(response("update_item"))
    assert ok == ItemRef("AAMkC1", "EQAAAA9")
    assert isinstance(conflict, ConflictError) and conflict.code == "ErrorIrresolvableConflict"


def test_delete_item() -> None:
    ok, missing = items.parse_delete_item(response("delete_item"))
    assert ok is None and isinstance(missing, ItemNotFoundError)


def test_find_item() -> None:
    assert find.parse_find_item(response("find_item")) == [ItemRef("AAMkC1", "EQAAAA1")]
    assert find.parse_find_item(response("find_item_empty")) == []


def test_folders() -> None:
    [info] = find.parse_get_folder(response("get_folder"))
    assert (info.folder.id, info.display_name, info.total_count) == ("AAMkF1", "Contacts", 12)
    [found] = find.parse_find_folder(response("find_folder"))
    assert found.display_name == "CRM"
    with pytest.raises(MailboxError):
        find.parse_get_folder(response("get_folder_no_mailbox"))


def test_user_configuration() -> None:
    entries = userconfig.parse_get_user_configuration(response("get_user_configuration"))
    assert entries == {"generation": "7", "synced_at": "2024-05-01T08:30:00+00:00"}
    with pytest.raises(ItemNotFoundError):
        userconfig.parse_get_user_configuration(response("get_user_configuration_missing"))
    userconfig.parse_create_user_configuration(response("create_user_configuration"))
    userconfig.parse_update_user_configuration(response("update_user_configuration"))


def test_subscriptions() -> None:
    assert notifications.parse_subscribe(response("subscribe")) == "JABzdWIx"
    notifications.parse_unsubscribe(response("unsubscribe"))


def test_streaming_split_and_parse() -> None:
    stream = response("streaming_events") + response("streaming_closed")
    splitter = notifications.EnvelopeSplitter()
    docs = []
    for i in range(0, len(stream), 37):  # arbitrary chunk boundaries, as the network cuts them
        docs.extend(splitter.feed(stream[i : i + 37]))
    assert len(docs) == 2 and not splitter.pending()
    first = notifications.parse_streaming_events(docs[0])
    [note] = first.notifications
    assert [(e.kind, e.item_id) for e in note.events] == [
        ("created", "AAMkC1"),
        ("modified", "AAMkC2"),
    ]
    last = notifications.parse_streaming_events(docs[1])
    assert last.closed and last.error_subscription_ids == ("JABzdWIy",)
    assert isinstance(last.errors[0], ItemNotFoundError)


def test_streaming_truncated_is_pending() -> None:
    splitter = notifications.EnvelopeSplitter()
    assert splitter.feed(response("streaming_events")[:-40]) == []
    assert splitter.pending()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_entity_payloads_rejected_without_expansion(name: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ProtocolError) as exc:
        items.parse_get_item(response(name))
    assert "DOCTYPE" in str(exc.value)
    assert time.perf_counter() - started < 0.1


def test_undeclared_entity_reference_rejected() -> None:
    data = response("find_item").replace(b"AAMkC1", b"&xxe;")
    with pytest.raises(ProtocolError):
        find.parse_find_item(data)


@pytest.mark.parametrize("cut", [10, 200, 600, -30])
def test_truncated_xml_is_protocol_error(cut: int) -> None:
    with pytest.raises(ProtocolError):
        items.parse_get_item(response("get_item_contact")[:cut])


def test_wrong_operation_is_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        items.parse_get_item(response("find_item"))


def test_code_table_covers_the_brief() -> None:
    expected = {
        "ErrorServerBusy": ThrottledError, "ErrorExceededConnectionCount": ThrottledError,
        "ErrorInvalidSyncStateData": InvalidSyncStateError,
        "ErrorSyncFolderNotFound": InvalidSyncStateError, "ErrorItemNotFound": ItemNotFoundError,
        "ErrorIrresolvableConflict": ConflictError, "ErrorStaleObject": ConflictError,
        "ErrorNonExistentMailbox": MailboxError, "ErrorImpersonateUserDenied": MailboxError,
        "ErrorImpersonationDenied": MailboxError, "ErrorQuotaExceeded": QuotaExceededError,
        "ErrorInvalidPropertySet": ItemRejectedError,
        "ErrorPropertyValidationFailure": ItemRejectedError,
    }  # fmt: skip
    assert {k: CODE_TABLE[k] for k in expected} == expected


def test_every_table_code_is_in_the_schema(ews_schema: etree.XMLSchema) -> None:
    xsd = (Path(__file__).parents[2] / ".." / "shared" / "ews-schema" / "messages.xsd").read_text()
    missing = [code for code in CODE_TABLE if f'value="{code}"' not in xsd]
    assert missing == []


@pytest.mark.parametrize("item", [CONTACT, APPOINTMENT, TASK], ids=lambda i: i.kind)
def test_item_xml_round_trip(item: Contact | Appointment | Task) -> None:
    el = item_to_xml(item)
    el.insert(0, etree.Element(t("ItemId"), Id="X", ChangeKey="Y"))
    back = item_from_xml(el)
    assert back == dataclasses.replace(item, ref=ItemRef("X", "Y"))
