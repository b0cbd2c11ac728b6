"""The calendar as Microsoft's SDK reads it from the simulator: `Prefer: outlook.timezone`
(answered in that zone and echoed), a series' recurrenceTimeZone as it was written, a
calendarView delta paged to its deltaLink and then reporting a change and a deletion, and the
instances of a weekly series."""

from __future__ import annotations

from datetime import date

from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware.options import HeadersInspectionHandlerOption
from msgraph import GraphServiceClient
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.day_of_week import DayOfWeek
from msgraph.generated.models.event import Event
from msgraph.generated.models.event_type import EventType
from msgraph.generated.models.patterned_recurrence import PatternedRecurrence
from msgraph.generated.models.recurrence_pattern import RecurrencePattern
from msgraph.generated.models.recurrence_pattern_type import RecurrencePatternType
from msgraph.generated.models.recurrence_range import RecurrenceRange
from msgraph.generated.models.recurrence_range_type import RecurrenceRangeType
from msgraph.generated.users.item.calendar_view.delta.delta_request_builder import (
    DeltaRequestBuilder,
)
from msgraph.generated.users.item.events.item.instances.instances_request_builder import (
    InstancesRequestBuilder,
)

from .conftest import BOX

ViewQuery = DeltaRequestBuilder.DeltaRequestBuilderGetQueryParameters
InstancesQuery = InstancesRequestBuilder.InstancesRequestBuilderGetQueryParameters
# What our own client sends with every calendar request, in one header.
CLIENT_PREFER = 'IdType="ImmutableId", outlook.timezone="{}", outlook.body-content-type="text"'


def _when(wall: str, zone: str = "UTC") -> DateTimeTimeZone:
    return DateTimeTimeZone(date_time=wall, time_zone=zone)


async def _event(graph: GraphServiceClient, subject: str, start: str, end: str) -> str:
    made = await graph.users.by_user_id(BOX).events.post(
        Event(subject=subject, start=_when(start), end=_when(end))
    )
    assert made is not None and made.id
    return made.id


def _weekly(start: date, zone: str, count: int | None = None) -> PatternedRecurrence:
    ends = RecurrenceRange(type=RecurrenceRangeType.NoEnd, start_date=start)
    if count is not None:
        ends = RecurrenceRange(
            type=RecurrenceRangeType.Numbered, start_date=start, number_of_occurrences=count
        )
    ends.recurrence_time_zone = zone
    pattern = RecurrencePattern(
        type=RecurrencePatternType.Weekly, interval=1, days_of_week=[DayOfWeek.Monday]
    )
    return PatternedRecurrence(pattern=pattern, range=ends)


async def test_outlook_timezone_gives_an_event_in_that_zone_and_is_echoed(
    graph: GraphServiceClient,
) -> None:
    made = await _event(graph, "Zoned", "2026-07-06T14:30:00", "2026-07-06T15:00:00")
    one = graph.users.by_user_id(BOX).events.by_event_id(made)
    inspect = HeadersInspectionHandlerOption(inspect_response_headers=True)
    config: RequestConfiguration[object] = RequestConfiguration(options=[inspect])
    # The preference among others in one header, then the IANA name in a header of its own.
    config.headers.add("Prefer", CLIENT_PREFER.format("Pacific Standard Time"))
    got = await one.get(request_configuration=config)  # type: ignore[arg-type]
    assert got is not None and got.start is not None and got.end is not None
    assert (got.start.date_time, got.start.time_zone) == (
        "2026-07-06T07:30:00.0000000",  # UTC-7 in July
        "Pacific Standard Time",
    )
    assert got.end.date_time == "2026-07-06T08:00:00.0000000"
    applied = ", ".join(inspect.response_headers.get("Preference-Applied"))
    assert 'outlook.timezone="Pacific Standard Time"' in applied

    iana = HeadersInspectionHandlerOption(inspect_response_headers=True)
    config = RequestConfiguration(options=[iana])
    config.headers.add("Prefer", 'IdType="ImmutableId"')
    config.headers.add("Prefer", 'outlook.timezone="Europe/Berlin"')
    got = await one.get(request_configuration=config)  # type: ignore[arg-type]
    assert got is not None and got.start is not None
    assert (got.start.date_time, got.start.time_zone) == (
        "2026-07-06T16:30:00.0000000",  # UTC+2 in July
        "Europe/Berlin",
    )
    applied = ", ".join(iana.response_headers.get("Preference-Applied"))
    assert 'outlook.timezone="Europe/Berlin"' in applied

    plain = HeadersInspectionHandlerOption(inspect_response_headers=True)
    got = await one.get(RequestConfiguration(options=[plain]))  # type: ignore[arg-type]
    assert got is not None and got.start is not None
    assert (got.start.date_time, got.start.time_zone) == ("2026-07-06T14:30:00.0000000", "UTC")
    echoed = ", ".join(plain.response_headers.get("Preference-Applied") or set())
    assert "outlook.timezone" not in echoed


async def test_recurrence_time_zone_comes_back_as_written(graph: GraphServiceClient) -> None:
    events = graph.users.by_user_id(BOX).events
    written = {"Europe/Berlin": "W. Europe Standard Time", "UTC": "UTC",
               "Pacific Standard Time": "Pacific Standard Time"}  # fmt: skip
    for zone, windows in written.items():
        series = Event(
            subject=f"Weekly {zone}",
            start=_when("2026-03-02T09:00:00", windows),
            end=_when("2026-03-02T09:30:00", windows),
            recurrence=_weekly(date(2026, 3, 2), zone),
        )
        made = await events.post(series)
        assert made is not None and made.id and made.recurrence and made.recurrence.range
        assert made.recurrence.range.recurrence_time_zone == zone
        got = await events.by_event_id(made.id).get()
        assert got is not None and got.recurrence is not None and got.recurrence.range
        assert got.recurrence.range.recurrence_time_zone == zone
        assert got.original_start_time_zone == windows  # the event's own zone: a Windows id

    # A PATCH of the recurrence that names the same zone another way keeps the new name.
    again = Event(recurrence=_weekly(date(2026, 3, 2), "America/Los_Angeles"))
    patched = await events.by_event_id(str(made.id)).patch(again)
    assert patched is not None and patched.recurrence and patched.recurrence.range
    assert patched.recurrence.range.recurrence_time_zone == "America/Los_Angeles"
    got = await events.by_event_id(str(made.id)).get()
    assert got is not None and got.recurrence is not None and got.recurrence.range
    assert got.recurrence.range.recurrence_time_zone == "America/Los_Angeles"
    assert got.original_start_time_zone == "Pacific Standard Time"


async def test_a_calendar_view_delta_pages_to_its_delta_link_then_reports_a_change_and_a_deletion(
    graph: GraphServiceClient,
) -> None:
    made = [
        await _event(
            graph,
            f"In view {n}",
            f"2026-05-{10 + n:02d}T10:00:00",
            f"2026-05-{10 + n:02d}T11:00:00",
        )
        for n in range(5)
    ]
    await _event(graph, "Outside", "2027-01-10T10:00:00", "2027-01-10T11:00:00")
    delta = graph.users.by_user_id(BOX).calendar_view.delta
    query = ViewQuery(start_date_time="2026-05-01T00:00:00Z", end_date_time="2026-06-01T00:00:00Z")
    config = RequestConfiguration(query_parameters=query)
    config.headers.add("Prefer", "odata.maxpagesize=2")
    page = await delta.get(request_configuration=config)
    seen: list[str] = []
    pages = 1
    # The page size is a preference of each request: the SDK sends it with every page.
    paging: RequestConfiguration[object] = RequestConfiguration()
    paging.headers.add("Prefer", "odata.maxpagesize=2")
    while page is not None and page.odata_next_link:
        seen += [str(e.id) for e in page.value or []]
        page = await delta.with_url(page.odata_next_link).get(paging)  # type: ignore[arg-type]
        pages += 1
    assert page is not None and page.odata_delta_link
    seen += [str(e.id) for e in page.value or []]
    assert sorted(seen) == sorted(made) and pages >= 3  # the one outside the window is not seen

    one = graph.users.by_user_id(BOX).events
    await one.by_event_id(made[0]).patch(Event(subject="Moved within the view"))
    await one.by_event_id(made[1]).delete()
    after = await delta.with_url(page.odata_delta_link).get()
    assert after is not None and after.value is not None
    by_id = {str(e.id): e for e in after.value}
    assert set(by_id) == {made[0], made[1]}
    assert by_id[made[0]].subject == "Moved within the view"
    assert by_id[made[1]].additional_data.get("@removed") == {"reason": "deleted"}
    assert after.odata_delta_link


async def test_the_instances_of_a_weekly_series_in_a_range(graph: GraphServiceClient) -> None:
    events = graph.users.by_user_id(BOX).events
    series = Event(
        subject="Weekly standup",
        start=_when("2026-03-02T09:00:00"),
        end=_when("2026-03-02T09:30:00"),
        recurrence=_weekly(date(2026, 3, 2), "UTC", count=10),
    )
    made = await events.post(series)
    assert made is not None and made.id and made.type is EventType.SeriesMaster
    query = InstancesQuery(
        start_date_time="2026-03-08T00:00:00Z", end_date_time="2026-03-31T00:00:00Z"
    )
    config = RequestConfiguration(query_parameters=query)
    got = await events.by_event_id(made.id).instances.get(request_configuration=config)
    assert got is not None and got.value is not None
    starts = [(i.start.date_time, i.start.time_zone) for i in got.value if i.start]
    assert starts == [
        (f"2026-03-{day:02d}T09:00:00.0000000", "UTC") for day in (9, 16, 23, 30)
    ]  # Mondays in the range; the first one (2 March) is before it
    assert {i.type for i in got.value} == {EventType.Occurrence}
    assert {i.series_master_id for i in got.value} == {made.id}
    assert len({i.id for i in got.value}) == 4

    # One occurrence read by its own id, in the zone the client prefers.
    first = str(got.value[0].id)
    zoned: RequestConfiguration[object] = RequestConfiguration()
    zoned.headers.add("Prefer", 'outlook.timezone="Tokyo Standard Time"')
    occurrence = await events.by_event_id(first).get(request_configuration=zoned)  # type: ignore[arg-type]
    assert occurrence is not None and occurrence.start is not None
    assert occurrence.start.date_time == "2026-03-09T18:00:00.0000000"
    assert occurrence.start.time_zone == "Tokyo Standard Time"
