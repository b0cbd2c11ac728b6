"""Extended-property filters and open extensions as Microsoft's SDK sends them.

A list filtered on an extended property matches its id as well as its value (a property of
another id that holds the same value is no match); open extensions on contacts and events are
created, read, merged by a PATCH, expanded on the item and deleted; each answer names the
immutable id preference it applied."""

from __future__ import annotations

from typing import Any

import pytest
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_http.middleware.options import HeadersInspectionHandlerOption
from msgraph import GraphServiceClient
from msgraph.generated.models.contact import Contact
from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
from msgraph.generated.models.event import Event
from msgraph.generated.models.open_type_extension import OpenTypeExtension
from msgraph.generated.models.single_value_legacy_extended_property import (
    SingleValueLegacyExtendedProperty as Prop,
)
from msgraph.generated.users.item.contacts.contacts_request_builder import ContactsRequestBuilder
from msgraph.generated.users.item.contacts.item.contact_item_request_builder import (
    ContactItemRequestBuilder,
)
from msgraph.generated.users.item.events.events_request_builder import EventsRequestBuilder
from msgraph.generated.users.item.events.item.event_item_request_builder import (
    EventItemRequestBuilder,
)

from .conftest import BOX

SET = "{4d1c6e6a-0f3b-4a8e-9c27-5b8f1e2d7a90}"
TICKET = f"String {SET} Name Ticket"
OTHER = f"String {SET} Name Other"
NAME = "Com.Example.Referral"
IMMUTABLE = 'IdType="ImmutableId"'


class Inspected:
    """A request configuration that asks for immutable ids and keeps the answer's headers."""

    def __init__(self, query: Any = None) -> None:
        self.option = HeadersInspectionHandlerOption(inspect_response_headers=True)
        self.config: RequestConfiguration[Any] = RequestConfiguration(
            query_parameters=query, options=[self.option]
        )
        self.config.headers.add("Prefer", IMMUTABLE)

    def applied(self) -> set[str]:
        return self.option.response_headers.get("preference-applied")


def assert_immutable(call: Inspected) -> None:
    assert any(IMMUTABLE in value for value in call.applied()), call.applied()


def props(*pairs: tuple[str, str]) -> list[Prop]:
    return [Prop(id=i, value=v) for i, v in pairs]


async def test_filter_matches_the_property_id_and_its_value(graph: GraphServiceClient) -> None:
    contacts = graph.users.by_user_id(BOX).contacts
    wanted = await contacts.post(
        Contact(given_name="Wanted", single_value_extended_properties=props((TICKET, "T-7")))
    )
    # Same value, another property: Graph matches on both, so this one is not found.
    await contacts.post(
        Contact(given_name="Decoy", single_value_extended_properties=props((OTHER, "T-7")))
    )
    assert wanted is not None
    flt = f"singleValueExtendedProperties/any(ep: ep/id eq '{TICKET}' and ep/value eq 't-7')"
    call = Inspected(ContactsRequestBuilder.ContactsRequestBuilderGetQueryParameters(filter=flt))
    found = await contacts.get(call.config)
    assert found is not None
    assert [c.id for c in found.value or []] == [wanted.id]
    assert_immutable(call)


async def test_filter_on_events_matches_id_and_value(graph: GraphServiceClient) -> None:
    events = graph.users.by_user_id(BOX).events
    made = await events.post(
        Event(
            subject="Filtered",
            start=DateTimeTimeZone(date_time="2030-01-02T10:00:00", time_zone="UTC"),
            end=DateTimeTimeZone(date_time="2030-01-02T11:00:00", time_zone="UTC"),
            single_value_extended_properties=props((TICKET, "E-1"), (OTHER, "E-2")),
        )
    )
    assert made is not None
    Query = EventsRequestBuilder.EventsRequestBuilderGetQueryParameters

    async def ids(flt: str) -> list[str | None]:
        got = await events.get(Inspected(Query(filter=flt)).config)
        assert got is not None
        return [e.id for e in got.value or []]

    one = "singleValueExtendedProperties/any(ep: ep/id eq '{}' and ep/value eq '{}')"
    assert await ids(one.format(TICKET, "E-1")) == [made.id]
    assert await ids(one.format(OTHER, "E-2")) == [made.id]
    assert await ids(one.format(TICKET, "E-2")) == []


async def test_a_filter_the_simulator_cannot_apply_is_a_400(graph: GraphServiceClient) -> None:
    Query = ContactsRequestBuilder.ContactsRequestBuilderGetQueryParameters
    contacts = graph.users.by_user_id(BOX).contacts
    for flt in (
        "singleValueExtendedProperties/any(ep: ep/value eq 'T-7')",  # no id: Graph refuses
        "givenName eq 'Wanted'",
        f"singleValueExtendedProperties/any(ep: ep/id eq '{TICKET}' and x/value eq 'T')",
    ):
        with pytest.raises(APIError) as raised:
            await contacts.get(RequestConfiguration(query_parameters=Query(filter=flt)))
        assert raised.value.response_status_code == 400, flt


def extension(**values: Any) -> OpenTypeExtension:
    made = OpenTypeExtension(odata_type="#microsoft.graph.openTypeExtension", extension_name=NAME)
    made.additional_data.update(values)
    return made


async def test_open_extension_lifecycle_on_a_contact(graph: GraphServiceClient) -> None:
    contacts = graph.users.by_user_id(BOX).contacts
    made = await contacts.post(Contact(given_name="Extended"))
    assert made is not None and made.id
    item = contacts.by_contact_id(made.id)

    call = Inspected()
    created = await item.extensions.post(extension(referrer="Ada", score=3), call.config)
    assert isinstance(created, OpenTypeExtension)
    assert created.extension_name == NAME
    assert created.additional_data["referrer"] == "Ada"
    assert_immutable(call)

    patched = await item.extensions.by_extension_id(NAME).patch(extension(score=5, tier="gold"))
    assert isinstance(patched, OpenTypeExtension)
    call = Inspected()
    got = await item.extensions.by_extension_id(NAME).get(call.config)
    assert isinstance(got, OpenTypeExtension)
    assert {k: got.additional_data[k] for k in ("referrer", "score", "tier")} == {
        "referrer": "Ada",
        "score": 5,
        "tier": "gold",
    }
    assert_immutable(call)

    Query = ContactItemRequestBuilder.ContactItemRequestBuilderGetQueryParameters
    call = Inspected(Query(expand=[f"extensions($filter=id eq '{NAME}')"]))
    expanded = await item.get(call.config)
    assert expanded is not None
    assert [e.additional_data.get("tier") for e in expanded.extensions or []] == ["gold"]
    # Kept apart from the item's extended properties.
    assert not expanded.single_value_extended_properties
    assert_immutable(call)

    await item.extensions.by_extension_id(NAME).delete()
    with pytest.raises(APIError) as raised:
        await item.extensions.by_extension_id(NAME).get()
    assert raised.value.response_status_code == 404


async def test_open_extension_lifecycle_on_an_event(graph: GraphServiceClient) -> None:
    events = graph.users.by_user_id(BOX).events
    made = await events.post(
        Event(
            subject="Extended",
            start=DateTimeTimeZone(date_time="2030-01-03T10:00:00", time_zone="UTC"),
            end=DateTimeTimeZone(date_time="2030-01-03T11:00:00", time_zone="UTC"),
        )
    )
    assert made is not None and made.id
    item = events.by_event_id(made.id)
    await item.extensions.post(extension(room="B2"))
    with pytest.raises(APIError) as raised:  # one extension of a name per item
        await item.extensions.post(extension(room="C3"))
    assert raised.value.response_status_code == 409

    await item.extensions.by_extension_id(NAME).patch(extension(room="C3"))
    Query = EventItemRequestBuilder.EventItemRequestBuilderGetQueryParameters
    call = Inspected(Query(expand=[f"extensions($filter=id eq '{NAME}')"]))
    expanded = await item.get(call.config)
    assert expanded is not None
    assert [e.additional_data.get("room") for e in expanded.extensions or []] == ["C3"]
    assert_immutable(call)

    call = Inspected()
    await item.extensions.by_extension_id(NAME).delete(call.config)
    assert_immutable(call)
    expanded = await item.get(Inspected(Query(expand=["extensions"])).config)
    assert expanded is not None and not expanded.extensions
