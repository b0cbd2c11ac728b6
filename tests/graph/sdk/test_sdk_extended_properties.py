"""Extended properties as Microsoft's SDK writes and reads them: any named property is kept,
`$expand` with a `$filter` on the id returns the ones asked for, and a PATCH that lists one
property leaves the others as they are."""

from __future__ import annotations

from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph import GraphServiceClient
from msgraph.generated.models.contact import Contact
from msgraph.generated.models.single_value_legacy_extended_property import (
    SingleValueLegacyExtendedProperty as Prop,
)
from msgraph.generated.users.item.contacts.item.contact_item_request_builder import (
    ContactItemRequestBuilder,
)

from .conftest import BOX

Query = ContactItemRequestBuilder.ContactItemRequestBuilderGetQueryParameters
COLOR = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name Color"
SIZE = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name Size"


async def expanded(graph: GraphServiceClient, contact_id: str, *ids: str) -> dict[str, str]:
    wanted = " or ".join(f"id eq '{i}'" for i in ids)
    config = RequestConfiguration(
        query_parameters=Query(expand=[f"singleValueExtendedProperties($filter={wanted})"])
    )
    got = await graph.users.by_user_id(BOX).contacts.by_contact_id(contact_id).get(config)
    assert got is not None
    return {p.id or "": p.value or "" for p in got.single_value_extended_properties or []}


async def test_named_properties_are_kept_filtered_and_patched_one_by_one(
    graph: GraphServiceClient,
) -> None:
    made = await graph.users.by_user_id(BOX).contacts.post(
        Contact(
            given_name="Props",
            single_value_extended_properties=[
                Prop(id=COLOR, value="green"),
                Prop(id=SIZE, value="L"),
            ],
        )
    )
    assert made is not None and made.id
    assert await expanded(graph, made.id, COLOR, SIZE) == {COLOR: "green", SIZE: "L"}
    assert await expanded(graph, made.id, SIZE) == {SIZE: "L"}

    await (
        graph.users.by_user_id(BOX)
        .contacts.by_contact_id(made.id)
        .patch(Contact(single_value_extended_properties=[Prop(id=COLOR, value="blue")]))
    )
    assert await expanded(graph, made.id, COLOR, SIZE) == {COLOR: "blue", SIZE: "L"}
