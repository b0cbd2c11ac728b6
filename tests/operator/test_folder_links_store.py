"""Folder links in the database (real PostgreSQL): a link changed while a pass of the old
folder runs is not settled by that pass (its end writes the old folder's sync state, but the
new link keeps `rematch`, so the next pass reads the new folder in full and ignores that
state); setting the link already in place resets nothing; a pass's end keeps the folder id."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from sync_service.db.folder_links import FolderLinkStore
from sync_service.db.store import Store
from tests.dispatcher.conftest import add_mailboxes, add_server


async def _row(pool: asyncpg.Pool, mailbox_id: int) -> asyncpg.Record:
    row = await pool.fetchrow(
        "SELECT folder_id, sync_state, rematch, link_generation, folder_error "
        "FROM sync.folder_links WHERE mailbox_id = $1 AND entity = 'contact'",
        mailbox_id,
    )
    assert row is not None
    return row


async def test_a_link_changed_during_a_pass_is_matched_afresh_by_the_next(
    pool: asyncpg.Pool,
) -> None:
    [box] = await add_mailboxes(pool, await add_server(pool), ["a@example.com"])
    links, store = FolderLinkStore(pool), Store(pool)
    assert await links.set(box, "contact", "path", "Contacts/CRM", False)
    assert not await links.set(box, "contact", "path", "Contacts/CRM", False)  # unchanged
    await links.resolved(box, "contact", 1, "F-CRM", "Contacts/CRM")
    # A pass read generation 1 (folder F-CRM) and ends: its state is kept, the id too.
    await store.pass_succeeded(box, "express", (1, datetime.now(UTC)), [("contact", "S1", 5)])
    await links.settled(box, [("contact", 1, "F-CRM")])
    row = await _row(pool, box)
    assert (row["folder_id"], row["sync_state"], row["rematch"]) == ("F-CRM", "S1", False)

    # The next pass reads generation 1 too; meanwhile the operator links another folder.
    assert await links.set(box, "contact", "path", "Contacts/Clients", False)
    await store.pass_succeeded(box, "express", (2, datetime.now(UTC)), [("contact", "S2", 6)])
    await links.settled(box, [("contact", 1, "F-CRM")])
    row = await _row(pool, box)
    # The old pass's state landed, but the new link is still to be resolved and rematched:
    # the next pass reads the new folder in full and does not use that state.
    assert (row["folder_id"], row["rematch"], row["link_generation"]) == (None, True, 2)
    await links.failed(box, "contact", 1, "an old pass's error")  # generation 1: ignored
    assert (await _row(pool, box))["folder_error"] is None
    await links.failed(box, "contact", 2, "linked folder gone")
    assert await links.error_count() == 1
    # Setting the link again clears the error and asks for a fresh resolution.
    assert await links.set(box, "contact", "path", "Contacts/Clients", False)
    row = await _row(pool, box)
    assert (row["folder_error"], row["rematch"], row["link_generation"]) == (None, True, 3)


async def test_bulk_set_reports_unknown_mailboxes(pool: asyncpg.Pool) -> None:
    from sync_service.db.folder_links import LinkRequest

    [box] = await add_mailboxes(pool, await add_server(pool), ["a@example.com"])
    rows = [
        LinkRequest(2, "a@example.com", "task", "path", "Tasks/CRM", True),
        LinkRequest(3, "b@example.com", "task", "path", "Tasks/CRM", False),
    ]
    result = await FolderLinkStore(pool).set_many(rows)
    assert (result.changed, result.unknown) == (1, [(3, "b@example.com")])
    link = (await FolderLinkStore(pool).links(box))["task"]
    assert (link.choice_value, link.create_missing, link.rematch) == ("Tasks/CRM", True, True)
