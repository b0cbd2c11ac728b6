"""GetFolder honours the FolderShape exchangelib sends (IdOnly plus AdditionalProperties):
names, classes, counts and the distinguished id come back as Exchange returns them."""

from __future__ import annotations

from typing import Any

from ews_client.simulator.testing import RunningSimulator

from .conftest import account, add_contacts, in_thread


async def test_distinguished_folders_carry_their_properties(sim: RunningSimulator) -> None:
    add_contacts(sim, 7)
    acc = account(sim)

    def read() -> dict[str, tuple[Any, ...]]:
        out = {}
        for folder in (acc.contacts, acc.calendar, acc.tasks):
            out[folder.name] = (
                folder.folder_class,
                folder.total_count,
                folder.child_folder_count,
                folder.unread_count,
                folder.parent_folder_id is not None,
            )
        return out

    assert await in_thread(read) == {
        # A contacts or calendar folder has no UnreadCount; tasks and mail folders do.
        "Contacts": ("IPF.Contact", 7, 0, None, True),
        "Calendar": ("IPF.Appointment", 0, 0, None, True),
        "Tasks": ("IPF.Task", 0, 0, 0, True),
    }
    top = await in_thread(
        lambda: (acc.msg_folder_root.name, acc.msg_folder_root.child_folder_count)
    )
    assert top == ("Top of Information Store", 4)


async def test_a_folder_read_again_by_its_id_has_the_same_properties(
    sim: RunningSimulator,
) -> None:
    add_contacts(sim, 3)
    acc = account(sim)

    def twice() -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        folder = acc.contacts  # GetFolder by DistinguishedFolderId
        first = (folder.id, folder.name, folder.total_count, folder.folder_class)
        folder.name = folder.total_count = folder.folder_class = None
        folder.refresh()  # GetFolder by FolderId this time
        return first, (folder.id, folder.name, folder.total_count, folder.folder_class)

    first, again = await in_thread(twice)
    assert first == again and first[1:] == ("Contacts", 3, "IPF.Contact")
