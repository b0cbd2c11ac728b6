"""`$batch` through Microsoft's SDK (which sends absolute inner URLs): the inner answers carry
the `Content-Type` the SDK needs to read their bodies, and an inner error its own status."""

from __future__ import annotations

import pytest
from kiota_abstractions.api_error import APIError
from msgraph import GraphServiceClient
from msgraph.generated.models.contact import Contact
from msgraph_core.requests.batch_request_builder import BatchRequestBuilder
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem
from msgraph_core.requests.batch_response_content import BatchResponseContent

from .conftest import BOX


async def test_the_sdk_reads_inner_bodies_and_statuses(graph: GraphServiceClient) -> None:
    contacts = graph.users.by_user_id(BOX).contacts
    made = await contacts.post(Contact(given_name="Bat", surname="Ch"))
    gone = await contacts.post(Contact(given_name="Gone", surname="Soon"))
    assert made is not None and made.id and gone is not None and gone.id
    await contacts.by_contact_id(gone.id).delete()
    items = {
        "found": BatchRequestItem(contacts.by_contact_id(made.id).to_get_request_information()),
        "gone": BatchRequestItem(contacts.by_contact_id(gone.id).to_get_request_information()),
    }
    content = BatchRequestContent({rid: item for rid, item in items.items()})
    answer = await BatchRequestBuilder(graph.request_adapter).post(content)
    assert isinstance(answer, BatchResponseContent)
    statuses = answer.get_response_status_codes()
    assert statuses == {items["found"].id: 200, items["gone"].id: 404}
    # The SDK reads an inner body by its Content-Type (`response_body`); that it names one:
    for item in items.values():
        inner = answer.get_response_by_id(item.id)
        assert inner is not None and (inner.content_type or "").startswith("application/json")


async def test_a_batch_with_a_request_id_twice_is_refused_whole(graph: GraphServiceClient) -> None:
    """Graph answers 400 to a `$batch` whose requests share an id (an id is how the caller
    pairs answers with requests); the SDK's batch builder raises it as an API error. The same
    two requests under two ids are answered (the test before this one)."""
    contacts = graph.users.by_user_id(BOX).contacts
    first = BatchRequestItem(contacts.to_get_request_information(), id="same")
    second = BatchRequestItem(contacts.to_get_request_information(), id="other")
    content = BatchRequestContent({"same": first, "other": second})
    second.id = "same"  # the SDK keys its own map by id; the wire carries the item's id
    with pytest.raises(APIError) as refused:
        await BatchRequestBuilder(graph.request_adapter).post(content)
    assert refused.value.response_status_code == 400
