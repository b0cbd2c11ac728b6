"""Bodies: exchangelib writes an HTML body and reads it back as HTML (BodyType Best) and as
TextBody (plain text); a request with BodyType=Text gets the body as text, one with
BodyType=HTML gets a text body as HTML."""

from __future__ import annotations

import aiohttp
from exchangelib import Contact, HTMLBody

from ews_client.simulator.testing import RunningSimulator

from ..helpers import call, get_item_body
from .conftest import BOX, account, in_thread

MARKUP = (
    "<html><head><style>p {color: red}</style></head><body>"
    "<p>Met at the <b>trade fair</b>.</p><p>Call back &amp; send the offer<br>before Friday</p>"
    "</body></html>"
)
TEXT = "Met at the trade fair.\nCall back & send the offer\nbefore Friday"


async def test_an_html_body_reads_back_as_html_and_as_text_body(sim: RunningSimulator) -> None:
    acc = account(sim)

    def write_and_read() -> Contact:
        contact = Contact(
            account=acc,
            folder=acc.contacts,
            given_name="Ann",
            display_name="Ann",
            body=HTMLBody(MARKUP),
        )
        contact.save()
        return acc.contacts.get(id=contact.id)

    found = await in_thread(write_and_read)
    assert isinstance(found.body, HTMLBody) and found.body == MARKUP
    assert found.text_body == TEXT


async def test_body_type_text_and_html_convert_what_is_stored(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    acc = account(sim)

    def write() -> list[tuple[str, str]]:
        made = [
            Contact(
                account=acc,
                folder=acc.contacts,
                given_name="Html",
                display_name="Html",
                body=HTMLBody(MARKUP),
            ),
            Contact(
                account=acc,
                folder=acc.contacts,
                given_name="Text",
                display_name="Text",
                body="a < b\nc",
            ),
        ]
        return [(c.id, c.changekey) for c in acc.bulk_create(folder=acc.contacts, items=made)]

    ids = await in_thread(write)
    body = '<t:FieldURI FieldURI="item:Body"/>'
    as_text = await call(session, sim, get_item_body(ids, "IdOnly", body, "Text"), BOX)
    assert [(b.get("BodyType"), b.text) for b in as_text.xp("//t:Body")] == [
        ("Text", TEXT),
        ("Text", "a < b\nc"),
    ]
    as_html = await call(session, sim, get_item_body(ids, "IdOnly", body, "HTML"), BOX)
    bodies = as_html.xp("//t:Body")
    kinds, texts = [b.get("BodyType") for b in bodies], [b.text or "" for b in bodies]
    assert kinds == ["HTML", "HTML"] and texts[0] == MARKUP
    assert "a &lt; b<br>c" in texts[1] and texts[1].startswith("<html>")
    best = await call(session, sim, get_item_body(ids, "IdOnly", body), BOX)
    assert [b.get("BodyType") for b in best.xp("//t:Body")] == ["HTML", "Text"]
