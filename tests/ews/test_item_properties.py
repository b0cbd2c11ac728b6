"""Property tests: any model value the XML can carry survives item -> XML -> bytes -> item."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from ews_client.errors import ItemRejectedError
from ews_client.ews.convert import item_from_xml, item_to_xml
from ews_client.ews.xml import parse_xml, t
from ews_client.models import Contact, Importance, ItemRef, Task, TaskStatus

# XML 1.0 characters; CR is excluded because XML parsers normalize line ends (CRLF -> LF).
XML_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r")
    .filter(lambda c: c in "\t\n" or ord(c) >= 0x20)
    .filter(lambda c: c not in "\ufffe\uffff"),
    max_size=40,
)
OPT = st.none() | XML_TEXT
MOMENT = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))


def _round_trip(item: Contact | Task) -> Contact | Task:
    el = item_to_xml(item)
    el.insert(0, etree.Element(t("ItemId"), Id="X", ChangeKey="Y"))
    back = item_from_xml(parse_xml(etree.tostring(el)))
    assert isinstance(back, Contact | Task)
    return back


@settings(max_examples=60, deadline=None)
@given(
    given_name=OPT, surname=OPT, company=OPT, notes=OPT,
    emails=st.lists(XML_TEXT.filter(bool), max_size=3).map(tuple),
    categories=st.lists(XML_TEXT, max_size=3).map(tuple),
    crm_id=OPT,
)  # fmt: skip
def test_contact_round_trip(**fields: object) -> None:
    contact = Contact(**fields)  # type: ignore[arg-type]
    assert _round_trip(contact) == dataclasses.replace(contact, ref=ItemRef("X", "Y"))


@settings(max_examples=60, deadline=None)
@given(
    subject=OPT, notes=OPT, start=st.none() | MOMENT, due=st.none() | MOMENT,
    status=st.sampled_from(TaskStatus), importance=st.sampled_from(Importance),
    percent_complete=st.integers(0, 100), reminder_at=st.none() | MOMENT,
)  # fmt: skip
def test_task_round_trip(**fields: object) -> None:
    task = Task(**fields)  # type: ignore[arg-type]
    assert _round_trip(task) == dataclasses.replace(task, ref=ItemRef("X", "Y"))


@pytest.mark.parametrize("bad", ["bell\x07", "nul\x00", "vt\x0b"])
def test_unrepresentable_text_rejects_the_item(bad: str) -> None:
    with pytest.raises(ItemRejectedError):
        item_to_xml(Contact(notes=bad))
