"""Folder links end to end, both backends, over HTTP to the simulator: a mailbox linked to
`Contacts/CRM` syncs that folder and never the default one (the default folder's contacts
stay where they are, no CRM record is deleted because they are not in the new folder); the
folder renamed and moved in Outlook stays linked (by id); deleted, the mailbox shows the
error, the other entities go on, and no CRM record is deleted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from sync_service.db.queue import PassKind
from sync_service.operator.folder_links import FolderLinks
from sync_service.operator.operations import Operations
from sync_service.runtime.worker import Done
from tests.e2e.harness import Harness, harness

BOX = "linked@sim.example"
T = "http://schemas.microsoft.com/exchange/services/2006/types"


async def _sync(h: Harness, kind: PassKind = PassKind.EXPRESS) -> None:
    assert await h.sync(BOX, kind) == Done("ok")


async def _crm_names(h: Harness) -> list[str]:
    rows = await h.pool.fetch("SELECT last_name FROM crm.contacts ORDER BY last_name")
    return [r["last_name"] for r in rows]


async def _in_folder(h: Harness, folder_id: str) -> list[str]:
    listing = await h.owner("GET", f"/mailboxes/{BOX}/items")
    return sorted(i["fields"].get("Surname", "") for i in listing["items"]
                  if i["folder_id"] == folder_id)  # fmt: skip


async def _contacts_link(ops: Operations) -> dict[str, object]:
    [link] = [k for k in await FolderLinks(ops).show(BOX) if k["entity"] == "contacts"]
    return link


async def test_a_linked_folder_syncs_alone_stays_linked_and_fails_safe(
    pool: asyncpg.Pool, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        user, _ = await h.add_user(BOX)
        ops = Operations(pool)
        await pool.execute(
            "INSERT INTO crm.contacts (owner_id, last_name) VALUES ($1, 'Ada'), ($1, 'Bob')", user
        )
        await _sync(h, PassKind.INITIAL)
        default = h.sim.sim.mailboxes[BOX].folder("contacts").id
        assert await _in_folder(h, default) == ["Ada", "Bob"]

        # The user keeps CRM contacts in Contacts/CRM: one is there already.
        crm = await h.owner(
            "POST", f"/mailboxes/{BOX}/folders", {"parent": "contacts", "display_name": "CRM"}
        )
        fid = crm["id"]
        await h.owner(
            "POST", f"/mailboxes/{BOX}/items", {"folder": fid, "fields": {"Surname": "Cy"}}
        )
        link = await FolderLinks(ops).set(BOX, "contacts", "Contacts/CRM", False)
        assert link["state"] == "pending" and link["rematch"]
        await _sync(h)
        link = await _contacts_link(ops)
        assert link["state"] == "resolved" and link["path"] == "Contacts/CRM"
        assert not link["rematch"]
        # The CRM records are written to the new folder, its contact reaches the CRM; the
        # default folder is left as it was and nothing was deleted anywhere.
        assert await _in_folder(h, fid) == ["Ada", "Bob", "Cy"]
        assert await _crm_names(h) == ["Ada", "Bob", "Cy"]
        assert await _in_folder(h, default) == ["Ada", "Bob"]

        # A new CRM record goes to the linked folder only, by express and complete passes.
        await pool.execute(
            "INSERT INTO crm.contacts (owner_id, last_name) VALUES ($1, 'Dee')", user
        )
        await _sync(h)
        await _sync(h, PassKind.COMPLETE)
        assert await _in_folder(h, fid) == ["Ada", "Bob", "Cy", "Dee"]
        assert await _in_folder(h, default) == ["Ada", "Bob"]

        # Renamed and moved in Outlook: still the linked folder.
        other = await h.owner(
            "POST", f"/mailboxes/{BOX}/folders", {"parent": "contacts", "display_name": "Work"}
        )
        await h.owner(
            "PATCH", f"/mailboxes/{BOX}/folders/{fid}",
            {"display_name": "Customers", "parent": other["id"]},
        )  # fmt: skip
        await h.owner(
            "POST", f"/mailboxes/{BOX}/items", {"folder": fid, "fields": {"Surname": "Eve"}}
        )
        await _sync(h)
        await _sync(h, PassKind.COMPLETE)
        assert await _crm_names(h) == ["Ada", "Bob", "Cy", "Dee", "Eve"]
        assert (await _contacts_link(ops))["state"] == "resolved"

        # Deleted in Outlook: the entity shows the error, the pass goes on with the others,
        # and no CRM record is deleted.
        await h.owner("DELETE", f"/mailboxes/{BOX}/folders/{fid}")
        await pool.execute(
            "INSERT INTO crm.tasks (owner_id, subject) VALUES ($1, 'call back')", user
        )
        await _sync(h)
        link = await _contacts_link(ops)
        assert link["state"] == "error" and "cannot be read" in str(link["error"])
        assert [i["fields"]["Subject"] for i in await h.items(BOX, "tasks")] == ["call back"]
        for kind in (PassKind.EXPRESS, PassKind.COMPLETE):
            await _sync(h, kind)
        assert await _crm_names(h) == ["Ada", "Bob", "Cy", "Dee", "Eve"]
        shown = await ops.show_mailbox(BOX)
        assert shown["state"] == "active"  # the mailbox goes on; its contacts wait
        assert [f["state"] for f in shown["folders"]] == ["error", "ok", "ok"]
        assert (await ops.status())["folder_links"] == {"errors": 1}

        # Cleared: the default folder again, matched afresh: nothing deleted, nothing doubled.
        await FolderLinks(ops).clear(BOX, "contacts")
        await _sync(h)
        assert await _crm_names(h) == ["Ada", "Bob", "Cy", "Dee", "Eve"]
        assert await _in_folder(h, default) == ["Ada", "Bob", "Cy", "Dee", "Eve"]


async def test_create_makes_the_folder_at_the_next_pass_and_a_dry_run_makes_nothing(
    pool: asyncpg.Pool, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        user, mailbox = await h.add_user(BOX)
        ops = Operations(pool)
        await pool.execute(
            "INSERT INTO crm.contacts (owner_id, last_name) VALUES ($1, 'Ada')", user
        )
        await _sync(h, PassKind.INITIAL)
        await FolderLinks(ops).set(BOX, "contacts", "Contacts/New CRM", True)
        row = "SELECT * FROM sync.folder_links WHERE mailbox_id = $1 ORDER BY entity"
        before = [tuple(r) for r in await pool.fetch(row, mailbox.id)]
        folders = len(h.sim.sim.mailboxes[BOX].folders)

        # A dry run resolves without making anything: the folder is missing, nothing stored.
        assert await h.sync(BOX, dry_run=True) == Done("ok")
        assert len(h.sim.sim.mailboxes[BOX].folders) == folders
        assert [tuple(r) for r in await pool.fetch(row, mailbox.id)] == before

        await _sync(h)
        link = await _contacts_link(ops)
        assert link["state"] == "resolved" and link["path"] == "Contacts/New CRM"
        made = [f for f in h.sim.sim.mailboxes[BOX].folders.values()
                if f.display_name == "New CRM"]  # fmt: skip
        assert len(made) == 1 and await _in_folder(h, made[0].id) == ["Ada"]
        assert await _crm_names(h) == ["Ada"]


async def test_items_the_user_moved_into_the_linked_folder_pair_again(
    pool: asyncpg.Pool, backend: str
) -> None:
    async with harness(pool, backend=backend) as h:
        user, _ = await h.add_user(BOX)
        ops = Operations(pool)
        await pool.execute(
            "INSERT INTO crm.contacts (owner_id, last_name) VALUES ($1, 'Ada'), ($1, 'Bob')", user
        )
        await _sync(h, PassKind.INITIAL)
        default = h.sim.sim.mailboxes[BOX].folder("contacts").id
        crm = await h.owner(
            "POST", f"/mailboxes/{BOX}/folders", {"parent": "contacts", "display_name": "CRM"}
        )
        [ada] = [i for i in await h.items(BOX, "contacts") if i["fields"]["Surname"] == "Ada"]
        await h.owner("POST", f"/mailboxes/{BOX}/items/{ada['id']}/move", {"folder": crm["id"]})
        links = "SELECT crm_id FROM sync.item_links WHERE entity = 'contact' ORDER BY 1"
        before = [r["crm_id"] for r in await pool.fetch(links)]

        await FolderLinks(ops).set(BOX, "contacts", "contacts/crm", False)
        await _sync(h)
        # Ada is found by the CRM id she carries (no copy made), Bob is written to the new
        # folder; the CRM keeps both records, each linked once, to the same CRM ids.
        assert await _in_folder(h, crm["id"]) == ["Ada", "Bob"]
        assert await _in_folder(h, default) == ["Bob"]
        assert await _crm_names(h) == ["Ada", "Bob"]
        assert [r["crm_id"] for r in await pool.fetch(links)] == before
        await _sync(h, PassKind.COMPLETE)
        assert await _in_folder(h, crm["id"]) == ["Ada", "Bob"]
        assert await _crm_names(h) == ["Ada", "Bob"]


async def test_a_linked_calendar_and_task_list_are_made_and_synced(
    pool: asyncpg.Pool, backend: str
) -> None:
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    async with harness(pool, backend=backend) as h:
        user, _ = await h.add_user(BOX)
        ops = Operations(pool)
        await _sync(h, PassKind.INITIAL)
        await FolderLinks(ops).set(BOX, "calendar", "Calendar/CRM", True)
        await FolderLinks(ops).set(BOX, "tasks", "Tasks/CRM", True)
        await pool.execute(
            "INSERT INTO crm.appointments (owner_id, subject, starts_at, ends_at) "
            "VALUES ($1, 'review', $2, $3)",
            user,
            soon,
            soon + timedelta(hours=1),
        )
        await pool.execute("INSERT INTO crm.tasks (owner_id, subject) VALUES ($1, 'call')", user)
        await _sync(h)
        box = h.sim.sim.mailboxes[BOX]
        calendars = [f for f in box.folders.values() if f.folder_class == "IPF.Appointment"]
        lists = [f for f in box.folders.values() if f.folder_class == "IPF.Task"]
        [calendar] = [f for f in calendars if f.display_name == "CRM"]
        [task_list] = [f for f in lists if f.display_name == "CRM"]
        subjects = {box.items[i].props.findtext(f"{{{T}}}Subject") for i in calendar.items}
        assert subjects == {"review"}
        assert [box.items[i].props.findtext(f"{{{T}}}Subject") for i in task_list.items] == ["call"]
        assert not box.folder("calendar").items and not box.folder("tasks").items
        states = {
            k["entity"]: (k["state"], k.get("path")) for k in await FolderLinks(ops).show(BOX)
        }
        assert states["calendar"] == ("resolved", "Calendar/CRM")
        assert states["tasks"] == ("resolved", "Tasks/CRM")

        # The owner adds an event to the linked calendar: it reaches the CRM.
        await h.owner(
            "POST",
            f"/mailboxes/{BOX}/items",
            {
                "folder": calendar.id,
                "fields": {
                    "Subject": "lunch",
                    "Start": (soon + timedelta(days=1)).isoformat().replace("+00:00", "Z"),
                    "End": (soon + timedelta(days=1, hours=1)).isoformat().replace("+00:00", "Z"),
                },
            },
        )
        await _sync(h)
        rows = await pool.fetch("SELECT subject FROM crm.appointments ORDER BY subject")
        assert [r["subject"] for r in rows] == ["lunch", "review"]
