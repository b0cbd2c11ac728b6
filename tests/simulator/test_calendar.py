"""Recurring series: occurrences by InstanceIndex, exceptions, deletions, CalendarView."""

from __future__ import annotations

import aiohttp

from ews_client.simulator import SimulatorConfig
from ews_client.simulator.testing import RunningSimulator, running_simulator

from .conftest import BOX
from .helpers import EXT_URI, call, create_contact_body

SERIES = (
    '<m:CreateItem MessageDisposition="SaveOnly" SendMeetingInvitations="SendToNone">'
    '<m:SavedItemFolderId><t:DistinguishedFolderId Id="calendar"/></m:SavedItemFolderId><m:Items>'
    "<t:CalendarItem><t:Subject>Standup</t:Subject>"
    "<t:Start>2026-03-27T08:00:00Z</t:Start><t:End>2026-03-27T08:15:00Z</t:End>"
    "<t:Recurrence><t:DailyRecurrence><t:Interval>1</t:Interval></t:DailyRecurrence>"
    "<t:NumberedRecurrence><t:StartDate>2026-03-27</t:StartDate>"
    "<t:NumberOfOccurrences>4</t:NumberOfOccurrences></t:NumberedRecurrence></t:Recurrence>"
    '<t:StartTimeZone Id="W. Europe Standard Time"/></t:CalendarItem></m:Items></m:CreateItem>'
)


def occurrence(master: str, index: int) -> str:
    return f'<t:OccurrenceItemId RecurringMasterId="{master}" InstanceIndex="{index}"/>'


async def test_series_with_modified_and_deleted_occurrence(
    sim: RunningSimulator, session: aiohttp.ClientSession
) -> None:
    created = await call(session, sim, SERIES, BOX)
    assert created.codes == ["NoError"]
    master = created.xp("//t:ItemId")[0]
    master_id, ck = master.get("Id", ""), master.get("ChangeKey", "")
    update = (
        '<m:UpdateItem MessageDisposition="SaveOnly" ConflictResolution="AutoResolve" '
        'SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges><t:ItemChange>'
        f"{occurrence(master_id, 2).replace('/>', f' ChangeKey={chr(34)}{ck}{chr(34)}/>')}"
        '<t:Updates><t:SetItemField><t:FieldURI FieldURI="item:Subject"/>'
        "<t:CalendarItem><t:Subject>Moved standup</t:Subject></t:CalendarItem></t:SetItemField>"
        "</t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>"
    )
    assert (await call(session, sim, update, BOX)).codes == ["NoError"]
    delete = (
        '<m:DeleteItem DeleteType="HardDelete" SendMeetingCancellations="SendToNone">'
        f"<m:ItemIds>{occurrence(master_id, 3)}</m:ItemIds></m:DeleteItem>"
    )
    assert (await call(session, sim, delete, BOX)).codes == ["NoError"]
    get = (
        "<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape>"
        f'<m:ItemIds><t:ItemId Id="{master_id}"/>{occurrence(master_id, 2)}</m:ItemIds></m:GetItem>'
    )
    got = await call(session, sim, get, BOX)
    assert got.codes == ["NoError", "NoError"]
    assert got.text("(//t:CalendarItem)[1]/t:CalendarItemType") == "RecurringMaster"
    # Local 09:00 Berlin is kept across the DST change of 29 March (08:00Z -> 07:00Z).
    assert got.text("//t:DeletedOccurrences/t:DeletedOccurrence/t:Start") == "2026-03-29T07:00:00Z"
    assert (
        got.text("//t:ModifiedOccurrences/t:Occurrence/t:OriginalStart") == "2026-03-28T08:00:00Z"
    )
    assert got.text("(//t:CalendarItem)[2]/t:Subject") == "Moved standup"
    assert got.text("(//t:CalendarItem)[2]/t:CalendarItemType") == "Exception"
    view = (
        '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>Default</t:BaseShape>'
        '</m:ItemShape><m:CalendarView StartDate="2026-03-26T00:00:00Z" '
        'EndDate="2026-04-05T00:00:00Z"/><m:ParentFolderIds>'
        '<t:DistinguishedFolderId Id="calendar"/></m:ParentFolderIds></m:FindItem>'
    )
    found = await call(session, sim, view, BOX)
    starts = [e.text for e in found.xp("//t:CalendarItem/t:Start")]
    assert starts == ["2026-03-27T08:00:00Z", "2026-03-28T08:00:00Z", "2026-03-30T07:00:00Z"]


async def test_named_property_quota(session: aiohttp.ClientSession) -> None:
    async with running_simulator(SimulatorConfig(named_props_per_guid=1)) as sim:
        sim.sim.add_numbered(1)
        assert (await call(session, sim, create_contact_body("A", "c1"), BOX)).codes == ["NoError"]
        other = create_contact_body("B", "c2").replace(
            'PropertyName="CrmId"', 'PropertyName="Other"'
        )
        assert EXT_URI not in other
        assert (await call(session, sim, other, BOX)).codes == ["ErrorQuotaExceeded"]
