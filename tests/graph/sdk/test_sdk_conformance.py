"""Microsoft's Graph SDK drives the simulator as an application developer would: one test per
behaviour (paging, fields kept, folders, delta forms and errors, etags)."""

from __future__ import annotations

import dataclasses

import pytest
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.models.contact import Contact
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.users.item.contacts.contacts_request_builder import ContactsRequestBuilder
from msgraph_core.tasks.page_iterator import PageIterator

from ews_client.simulator.testing import RunningSimulator

from .conftest import BOX

Query = ContactsRequestBuilder.ContactsRequestBuilderGetQueryParameters


async def _contacts(graph: GraphServiceClient, count: int) -> list[str]:
    made = []
    for n in range(count):
        one = await graph.users.by_user_id(BOX).contacts.post(
            Contact(given_name=f"Page{n:02d}", surname="Sdk")
        )
        assert one is not None and one.id
        made.append(one.id)
    return made


async def test_top_pages_a_contact_list_with_next_links_the_page_iterator_follows(
    graph: GraphServiceClient,
) -> None:
    made = await _contacts(graph, 5)
    config = RequestConfiguration(query_parameters=Query(top=2))
    first = await graph.users.by_user_id(BOX).contacts.get(request_configuration=config)
    assert first is not None and first.value is not None
    assert len(first.value) == 2 and first.odata_next_link
    seen: list[str] = []

    def keep(contact: Contact) -> bool:
        seen.append(str(contact.id))
        return True

    pages = PageIterator(first, graph.request_adapter)
    await pages.iterate(keep)
    assert seen == made  # every contact once, in order, over three pages


async def test_maxpagesize_preference_pages_and_is_echoed(
    graph: GraphServiceClient, sim: RunningSimulator
) -> None:
    await _contacts(graph, 3)
    config: RequestConfiguration[Query] = RequestConfiguration()
    config.headers.add("Prefer", "odata.maxpagesize=2")
    page = await graph.users.by_user_id(BOX).contacts.get(request_configuration=config)
    assert page is not None and page.value is not None
    assert len(page.value) == 2 and page.odata_next_link
    rest = await graph.users.by_user_id(BOX).contacts.with_url(page.odata_next_link).get()
    assert rest is not None and rest.value is not None and len(rest.value) == 1
    assert rest.odata_next_link is None


async def test_contact_fields_are_kept_as_written(graph: GraphServiceClient) -> None:
    written = Contact(
        given_name="Grace",
        surname="Hopper",
        display_name="Rear Admiral Grace Hopper",
        email_addresses=[EmailAddress(name="Grace H.", address="grace@navy.example")],
        business_phones=["+1 555 0100", "+1 555 0101"],
    )
    made = await graph.users.by_user_id(BOX).contacts.post(written)
    assert made is not None and made.id
    got = await graph.users.by_user_id(BOX).contacts.by_contact_id(made.id).get()
    assert got is not None
    assert got.display_name == "Rear Admiral Grace Hopper"
    assert got.email_addresses is not None
    assert [(e.name, e.address) for e in got.email_addresses] == [
        ("Grace H.", "grace@navy.example")
    ]
    assert got.business_phones == ["+1 555 0100", "+1 555 0101"]
    assert got.parent_folder_id


async def test_contact_folders_are_served_and_lead_to_a_contacts_delta(
    graph: GraphServiceClient,
) -> None:
    [made] = await _contacts(graph, 1)
    user = graph.users.by_user_id(BOX)
    listed = await user.contact_folders.get()
    assert listed is not None and listed.value == []  # no folders inside the default one
    contact = await user.contacts.by_contact_id(made).get()
    assert contact is not None and contact.parent_folder_id
    folder = await user.contact_folders.by_contact_folder_id(contact.parent_folder_id).get()
    assert folder is not None and folder.display_name
    delta = await user.contact_folders.by_contact_folder_id(folder.id or "").contacts.delta.get()
    assert delta is not None and delta.value is not None
    assert [c.id for c in delta.value] == [made]


async def test_a_delta_of_an_unknown_contact_folder_is_404(graph: GraphServiceClient) -> None:
    folder = graph.users.by_user_id(BOX).contact_folders.by_contact_folder_id("AAMkNoSuchFolder")
    with pytest.raises(ODataError) as refused:
        await folder.contacts.delta.get()
    assert refused.value.response_status_code == 404
    assert refused.value.error is not None and refused.value.error.code == "ErrorItemNotFound"


async def test_the_delta_function_form_pages_and_ends_in_a_delta_link(
    graph: GraphServiceClient, sim: RunningSimulator
) -> None:
    # The generated SDK calls `contacts/delta()`, with the function's parentheses.
    made = await _contacts(graph, 3)
    delta = graph.users.by_user_id(BOX).contacts.delta
    config: RequestConfiguration[object] = RequestConfiguration()
    config.headers.add("Prefer", "odata.maxpagesize=2")
    page = await delta.get(request_configuration=config)  # type: ignore[arg-type]
    seen: list[str] = []
    while page is not None and page.odata_next_link:
        seen += [str(c.id) for c in page.value or []]
        page = await delta.with_url(page.odata_next_link).get()
    assert page is not None and page.odata_delta_link
    seen += [str(c.id) for c in page.value or []]
    assert seen == made
    await graph.users.by_user_id(BOX).contacts.by_contact_id(made[0]).delete()
    after = await delta.with_url(page.odata_delta_link).get()
    assert after is not None and after.value is not None
    assert [c.id for c in after.value] == [made[0]]
    assert after.value[0].additional_data.get("@removed") == {"reason": "deleted"}


async def test_an_expired_delta_token_is_410_sync_state_not_found(
    graph: GraphServiceClient, sim: RunningSimulator
) -> None:
    delta = graph.users.by_user_id(BOX).contacts.delta
    first = await delta.get()
    assert first is not None and first.odata_delta_link
    config = sim.sim.config
    sim.sim.config = dataclasses.replace(
        config, graph=dataclasses.replace(config.graph, delta_max_age_s=0.0)
    )
    with pytest.raises(ODataError) as refused:
        await delta.with_url(first.odata_delta_link).get()
    assert refused.value.response_status_code == 410
    error = refused.value.error
    assert error is not None and error.code == "syncStateNotFound"
    assert error.message == (
        "The sync state generation is not found. The delta token is expired and data must "
        "be synchronized again."
    )


async def test_a_stale_etag_is_refused_with_412_and_the_current_one_accepted(
    graph: GraphServiceClient,
) -> None:
    [made] = await _contacts(graph, 1)
    item = graph.users.by_user_id(BOX).contacts.by_contact_id(made)
    got = await item.get()
    assert got is not None
    etag = str(got.additional_data["@odata.etag"])
    stale: RequestConfiguration[object] = RequestConfiguration()
    stale.headers.add("If-Match", 'W/"CQAAAAstale"')
    with pytest.raises(ODataError) as refused:
        await item.patch(Contact(surname="Stale"), request_configuration=stale)  # type: ignore[arg-type]
    assert refused.value.response_status_code == 412
    fresh: RequestConfiguration[object] = RequestConfiguration()
    fresh.headers.add("If-Match", etag)
    patched = await item.patch(Contact(surname="Fresh"), request_configuration=fresh)  # type: ignore[arg-type]
    assert patched is not None and patched.surname == "Fresh"
    assert patched.additional_data["@odata.etag"] != etag
