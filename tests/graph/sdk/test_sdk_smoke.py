from __future__ import annotations

from msgraph import GraphServiceClient
from msgraph.generated.models.contact import Contact

from .conftest import BOX


async def test_the_sdk_authenticates_and_creates_then_reads_a_contact(
    graph: GraphServiceClient,
) -> None:
    made = await graph.users.by_user_id(BOX).contacts.post(Contact(given_name="Ada", surname="L"))
    assert made is not None and made.id
    got = await graph.users.by_user_id(BOX).contacts.by_contact_id(made.id).get()
    assert got is not None and got.given_name == "Ada"
