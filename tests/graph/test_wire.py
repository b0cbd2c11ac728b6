"""Pure builders and parsers: JSON shapes, the error table, delta pages, $batch, series."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from urllib.parse import unquote

import pytest

from ews_client.errors import (
    ConflictError,
    InvalidSyncStateError,
    ItemNotFoundError,
    ItemRejectedError,
    MailboxError,
    ProtocolError,
    ThrottledError,
    TransientError,
)
from ews_client.graph import requests as rq
from ews_client.graph.calendar_delta import (
    DeltaIds,
    EventState,
    EventWindow,
    decode_state,
    delta_ids,
)
from ews_client.graph.convert import create_body, item_from_json, patch_body
from ews_client.graph.recurrence import recurrence_from_json, recurrence_to_json
from ews_client.graph.responses import coalesce, error_for, parse_batch, parse_page
from ews_client.graph.series import fold_instances, plan_occurrence_writes
from ews_client.graph.wire import CRM_PROP_ID, parse_dt
from ews_client.models import (
    Appointment,
    Contact,
    EntityKind,
    ModifiedOccurrence,
    Recurrence,
    Task,
)

START = datetime(2026, 3, 23, 8, 0, tzinfo=UTC)  # a Monday, 09:00 in Berlin (before DST)


def test_contact_body_carries_the_crm_property() -> None:
    body = create_body(Contact(given_name="A", emails=("a@x",), crm_id="c1"))
    assert body["givenName"] == "A"
    assert body["emailAddresses"] == [{"address": "a@x"}]
    assert body["singleValueExtendedProperties"] == [{"id": CRM_PROP_ID, "value": "c1"}]
    assert "surname" not in body  # None values are not sent on create
    assert CRM_PROP_ID == "String {6c3f4b2e-8a1d-4e57-9b0c-2d5e7f9a1c34} Name CrmId"


def test_patch_clears_with_null_and_task_link() -> None:
    body = patch_body(Contact(given_name="A"), {"surname", "business_phone", "ref"})
    assert body == {"surname": None, "businessPhones": []}
    task = create_body(Task(subject="T", crm_id="t1"))
    assert task["linkedResources"][0]["externalId"] == "t1"
    assert task["title"] == "T"


def test_event_times_in_their_zone_and_back() -> None:
    a = Appointment(
        subject="S",
        start=START,
        end=START + timedelta(hours=1),
        time_zone="Europe/Berlin",
        reminder_minutes=10,
    )
    body = create_body(a)
    assert body["start"] == {"dateTime": "2026-03-23T09:00:00.0000000", "timeZone": "Europe/Berlin"}
    assert body["isReminderOn"] is True and body["reminderMinutesBeforeStart"] == 10
    back = item_from_json(EntityKind.APPOINTMENT, body)
    assert (
        isinstance(back, Appointment) and back.start == START and back.time_zone == "Europe/Berlin"
    )
    # Windows zone names (originalStartTimeZone) map to IANA.
    windows = dict(body, originalStartTimeZone="W. Europe Standard Time")
    assert item_from_json(EntityKind.APPOINTMENT, windows).time_zone == "Europe/Berlin"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "rec",
    [
        Recurrence("weekly", 2, ("monday", "friday"), start_date=date(2026, 3, 23), occurrences=5),
        Recurrence(
            "relative_monthly", 1, ("tuesday",), week_index="last", start_date=date(2026, 3, 1)
        ),
        Recurrence(
            "absolute_yearly",
            1,
            (),
            day_of_month=5,
            month=7,
            start_date=date(2026, 7, 5),
            end_date=date(2030, 7, 5),
        ),
    ],
)
def test_recurrence_round_trip(rec: Recurrence) -> None:
    assert recurrence_from_json(recurrence_to_json(rec, "UTC")) == rec


def test_graph_dates_with_seven_digits() -> None:
    assert parse_dt("2026-03-23T09:00:00.1234567Z") == datetime(
        2026, 3, 23, 9, 0, 0, 123456, tzinfo=UTC
    )
    with pytest.raises(ProtocolError):
        parse_dt("yesterday")


@pytest.mark.parametrize(
    ("status", "code", "retry", "cls"),
    [
        (429, "ApplicationThrottled", "1.5", ThrottledError),
        (503, "ServiceUnavailable", "2", ThrottledError),
        (503, "ServiceUnavailable", None, TransientError),
        (410, "", None, InvalidSyncStateError),
        (400, "syncStateNotFound", None, InvalidSyncStateError),
        (400, "resyncRequired", None, InvalidSyncStateError),
        (412, "PreconditionFailed", None, ConflictError),
        (404, "ErrorItemNotFound", None, ItemNotFoundError),
        (404, "ErrorInvalidUser", None, MailboxError),
        (400, "ErrorInvalidProperty", None, ItemRejectedError),
        (418, "", None, ProtocolError),
    ],
)
def test_error_table(status: int, code: str, retry: str | None, cls: type[Exception]) -> None:
    err = error_for(status, {"error": {"code": code, "message": "m"}}, retry)
    assert type(err) is cls
    assert err.code == (code or f"HTTP{status}") or status == 503
    if isinstance(err, ThrottledError):
        assert err.backoff_s == float(retry or 0)


def test_delta_page_and_coalesce() -> None:
    page = parse_page(
        {
            "value": [{"id": "a"}, {"id": "b", "@removed": {"reason": "deleted"}}],
            "@odata.nextLink": "https://g/next",
        }
    )
    assert page.removed == ("b",) and page.next_link == "https://g/next"
    last = parse_page(
        {"value": [{"id": "b"}, {"id": "a", "@removed": {}}], "@odata.deltaLink": "https://g/delta"}
    )
    assert coalesce([page, last]) == (["b"], ["a"])  # the last word on an id wins
    with pytest.raises(ProtocolError):
        parse_page({"value": [{"no": "id"}]})


def test_batch_body_and_answers() -> None:
    reqs = [rq.get_item("u@x", EntityKind.CONTACT, f"id{i}") for i in range(2)]
    body = rq.batch_body(reqs, ["0", "1"])
    assert body["requests"][0]["url"].startswith("/users/u@x/contacts/id0?$expand=")
    assert body["requests"][0]["headers"]["Prefer"] == 'IdType="ImmutableId"'
    with pytest.raises(ValueError, match="20"):
        rq.batch_body(reqs * 11, [str(i) for i in range(22)])
    answer = parse_batch(
        {
            "responses": [
                {"id": "0", "status": 200, "body": {"id": "x"}},
                {"id": "1", "status": 429, "headers": {"Retry-After": "0.5"}, "body": {}},
            ]
        }
    )
    assert answer["0"].error() is None
    err = answer["1"].error()
    assert isinstance(err, ThrottledError) and err.backoff_s == 0.5


def test_crm_filter_quotes_literal() -> None:
    url = unquote(rq.find_by_crm_id("u@x", EntityKind.CONTACT, "o'brien").url)
    assert "ep/value eq 'o''brien'" in url
    task_url = unquote(rq.find_by_crm_id("u@x", EntityKind.TASK, "t", "L1").url)
    assert "/todo/lists/L1/tasks?" in task_url and "r/externalId eq 't'" in task_url


def _instance(i: int, kind: str = "occurrence", **extra: object) -> dict[str, object]:
    original = START + timedelta(days=7 * i)
    start = original + timedelta(hours=1) if kind == "exception" else original
    return {
        "id": f"occ{i}",
        "type": kind,
        "originalStart": original.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {
            "dateTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
            "timeZone": "UTC",
        },
        **extra,
    }


def test_fold_and_plan_occurrences() -> None:
    rec = Recurrence("weekly", 1, ("monday",), start_date=date(2026, 3, 23), occurrences=4)
    master = Appointment(
        subject="W", start=START, end=START + timedelta(hours=1), time_zone="UTC", recurrence=rec
    )
    instances = [_instance(0), _instance(1, "exception", subject="Moved"), _instance(3)]
    folded = fold_instances(master, instances, START + timedelta(days=60))
    assert folded.deleted_occurrences == (START + timedelta(days=14),)
    [moved] = folded.modified_occurrences
    assert moved.subject == "Moved" and moved.start == START + timedelta(days=7, hours=1)
    wanted = ModifiedOccurrence(
        START + timedelta(days=21),
        START + timedelta(days=21, hours=2),
        START + timedelta(days=21, hours=3),
        "Later",
    )
    plan = plan_occurrence_writes(
        Appointment(
            start=START,
            time_zone="UTC",
            recurrence=rec,
            modified_occurrences=(moved, wanted),
            deleted_occurrences=(START,),
        ),
        instances,
    )
    assert [p[0] for p in plan.patches] == ["occ3"]  # occ1 is already as wanted
    assert plan.deletes == ("occ0",)


def test_calendar_delta_names_masters_once_and_state_round_trips() -> None:
    page = parse_page({"value": [
        {"id": "s1", "type": "singleInstance"},
        {"id": "o1", "type": "occurrence", "seriesMasterId": "m1"},
        {"id": "e1", "type": "exception", "seriesMasterId": "m1"},
        {"id": "m2", "type": "seriesMaster"},
        {"id": "s1", "@removed": {"reason": "deleted"}},
        {"id": "gone", "@removed": {"reason": "deleted"}},
    ]})  # fmt: skip
    assert delta_ids([page]) == DeltaIds(("s1",), ("m1", "m2"), ("gone",))
    start = datetime(2025, 1, 1, tzinfo=UTC)
    state = EventState("https://g/delta?token=1", start, start + timedelta(days=365))
    assert decode_state(state.encode()) == state
    with pytest.raises(InvalidSyncStateError):
        decode_state("{not json")
    assert EventWindow().around(start) == (start - timedelta(days=30), start + timedelta(days=365))
