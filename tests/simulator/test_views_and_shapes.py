"""FindItem paging attributes, GetFolder shapes, occurrence writes the series keeps to itself,
and bodies converted between text and HTML, over raw HTTP."""

from __future__ import annotations

import aiohttp
import pytest

from ews_client.simulator.bodies import html_to_text, text_to_html
from ews_client.simulator.testing import RunningSimulator

from .conftest import BOX
from .helpers import call
from .test_calendar import SERIES, occurrence

CONTACTS = '<t:DistinguishedFolderId Id="contacts"/>'
ALL_TASKS_FOLDER = ["FolderId", "ParentFolderId", "FolderClass", "DisplayName", "TotalCount",
                    "ChildFolderCount", "EffectiveRights", "DistinguishedFolderId",
                    "UnreadCount"]  # fmt: skip


def _find(view: str) -> str:
    return (
        '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>'
        f"</m:ItemShape>{view}<m:ParentFolderIds>{CONTACTS}</m:ParentFolderIds></m:FindItem>"
    )


def _view(offset: int, limit: int, base: str = "Beginning") -> str:
    attrs = f'MaxEntriesReturned="{limit}" Offset="{offset}" BasePoint="{base}"'
    return f"<m:IndexedPageItemView {attrs}/>"


def _paging(answer: object) -> tuple[str, str, str, int]:
    root = answer.xp("//m:RootFolder")[0]  # type: ignore[attr-defined]
    return (
        root.get("IndexedPagingOffset"),
        root.get("TotalItemsInView"),
        root.get("IncludesLastItemInRange"),
        len(answer.xp("//t:Contact")),  # type: ignore[attr-defined]
    )


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        (_view(0, 4), ("4", "10", "false", 4)),
        (_view(8, 4), ("10", "10", "true", 2)),
        (_view(12, 4), ("12", "10", "true", 0)),
        # From the end: the 4 items before the last 2, then the 4 before those.
        (_view(2, 4, "End"), ("6", "10", "false", 4)),
        (_view(6, 5, "End"), ("10", "10", "true", 4)),
    ],
)
async def test_find_item_answers_carry_the_paging_attributes(
    sim: RunningSimulator, session: aiohttp.ClientSession, view: str, expected: tuple[object, ...]
) -> None:
    sim.sim.seed(sim.sim.mailboxes[BOX], 8)  # 2 + 8 contacts
    answer = await call(session, sim, _find(view), BOX)
    assert answer.codes == ["NoError"] and _paging(answer) == expected


async def test_find_item_without_a_view_answers_everything_unpaged(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    answer = await call(session, sim, _find(""), BOX)
    assert _paging(answer) == (None, "2", "true", 2)
    refused = await call(session, sim, _find(_view(-1, 4)), BOX)
    assert refused.codes == ["ErrorInvalidIndexedPagingParameters"]


def _get_folder(shape: str, extra: str = "", folder: str = CONTACTS) -> str:
    add = f"<t:AdditionalProperties>{extra}</t:AdditionalProperties>" if extra else ""
    return (
        f"<m:GetFolder><m:FolderShape><t:BaseShape>{shape}</t:BaseShape>{add}</m:FolderShape>"
        f"<m:FolderIds>{folder}</m:FolderIds></m:GetFolder>"
    )


def _children(answer: object) -> list[str]:
    folder = answer.xp("//m:Folders/*")[0]  # type: ignore[attr-defined]
    return [child.tag.rsplit("}", 1)[1] for child in folder]


@pytest.mark.parametrize(
    ("shape", "extra", "folder", "expected"),
    [
        ("IdOnly", "", CONTACTS, ["FolderId"]),
        (
            "IdOnly",
            '<t:FieldURI FieldURI="folder:TotalCount"/><t:FieldURI FieldURI="folder:DisplayName"/>'
            '<t:FieldURI FieldURI="folder:FolderClass"/>',
            CONTACTS,
            ["FolderId", "FolderClass", "DisplayName", "TotalCount"],  # schema order
        ),
        ("Default", "", CONTACTS, ["FolderId", "DisplayName", "TotalCount", "ChildFolderCount"]),
        (
            "Default",
            "",
            '<t:DistinguishedFolderId Id="calendar"/>',
            ["FolderId", "DisplayName", "ChildFolderCount"],
        ),
        (
            "Default",
            '<t:FieldURI FieldURI="folder:UnreadCount"/>',  # a contacts folder has none
            CONTACTS,
            ["FolderId", "DisplayName", "TotalCount", "ChildFolderCount"],
        ),
        (
            "AllProperties",
            "",
            '<t:DistinguishedFolderId Id="tasks"/>',
            ALL_TASKS_FOLDER,
        ),
    ],
)
async def test_get_folder_returns_the_shape_asked_for(
    sim: RunningSimulator,
    session: aiohttp.ClientSession,
    shape: str,
    extra: str,
    folder: str,
    expected: list[str],
) -> None:
    answer = await call(session, sim, _get_folder(shape, extra, folder), BOX)
    assert answer.codes == ["NoError"] and _children(answer) == expected


async def test_get_folder_refuses_item_properties(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    body = _get_folder("IdOnly", '<t:FieldURI FieldURI="item:Subject"/>')
    assert (await call(session, sim, body, BOX)).codes == ["ErrorInvalidPropertyRequest"]


def _set_on_occurrence(master: str, ck: str, field: str, value: str) -> str:
    ref = occurrence(master, 2).replace("/>", f' ChangeKey="{ck}"/>')
    return (
        '<m:UpdateItem MessageDisposition="SaveOnly" ConflictResolution="AutoResolve" '
        'SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges><t:ItemChange>'
        f'{ref}<t:Updates><t:SetItemField><t:FieldURI FieldURI="{field}"/>'
        f"<t:CalendarItem>{value}</t:CalendarItem></t:SetItemField></t:Updates>"
        "</t:ItemChange></m:ItemChanges></m:UpdateItem>"
    )


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("calendar:StartTimeZone", '<t:StartTimeZone Id="Pacific Standard Time"/>', "NoError"),
        ("calendar:UID", "<t:UID>another</t:UID>", "ErrorInvalidPropertyForOperation"),
        ("calendar:StartTimeZone", '<t:StartTimeZone Id="Mars Standard Time"/>', "ErrorTimeZone"),
        (
            "calendar:End",
            "<t:End>2026-03-27T09:00:00Z</t:End>",  # before the second occurrence's start
            "ErrorCalendarEndDateIsEarlierThanStartDate",
        ),
    ],
)
async def test_an_occurrence_takes_its_own_times_and_zones_not_the_series_identity(
    sim: RunningSimulator, session: aiohttp.ClientSession, field: str, value: str, code: str
) -> None:
    created = await call(session, sim, SERIES, BOX)
    master = created.xp("//t:ItemId")[0]
    body = _set_on_occurrence(master.get("Id", ""), master.get("ChangeKey", ""), field, value)
    assert (await call(session, sim, body, BOX)).codes == [code]
    stored = sim.sim.mailboxes[BOX].items[master.get("Id", "")]
    assert bool(stored.exceptions) is (code == "NoError")


def test_html_to_text_keeps_words_and_lines_and_drops_markup() -> None:
    markup = (
        "<html><head><title>x</title><script>var a = 1;</script></head><body>"
        "<div>First&nbsp;line</div><ul><li>one</li><li>two &lt;3&gt;</li></ul>"
        "<p>  spaced \n  out  </p>tail<br/>end</body></html>"
    )
    assert html_to_text(markup) == "First\xa0line\none\ntwo <3>\nspaced out\ntail\nend"
    assert html_to_text(text_to_html("a & b\n<c>")) == "a & b\n<c>"
