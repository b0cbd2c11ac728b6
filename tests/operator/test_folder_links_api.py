"""Folder links in the admin API: list, set, clear and import (CSV) over a real socket and
database; bad input answered as problems naming the field; a link in error shown by the
mailbox, the link list and the status."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.operator.apiclient import AUTH, SERVER, api_client

BOXES = "crm_user_id,email,server\nu1,alice@example.com,ex1\nu2,bob@example.com,ex1\n"
LINKS = "/api/v1/mailboxes/alice@example.com/folder-links"


async def _call(client: Any, method: str, path: str, status: int, **kw: Any) -> Any:
    headers = AUTH | kw.pop("headers", {})
    resp = await client.request(method, path, headers=headers, **kw)
    assert resp.status == status, await resp.text()
    return await resp.json(content_type=None)


async def test_set_list_clear_and_import(pool: asyncpg.Pool) -> None:
    async with api_client(pool) as c:
        await _call(c, "POST", "/api/v1/servers", 201, json=SERVER)
        await _call(c, "POST", "/api/v1/mailboxes/import", 200, data=BOXES)
        listed = await _call(c, "GET", LINKS, 200)
        assert [f["folder"] for f in listed["folders"]] == ["default"] * 3

        put = await _call(c, "PUT", f"{LINKS}/contacts", 200, json={"folder": "Contacts/CRM"})
        assert (put["folder"], put["state"], put["rematch"]) == (
            "path:Contacts/CRM",
            "pending",
            True,
        )
        by_id = await _call(
            c, "PUT", f"{LINKS}/tasks", 200, json={"folder": "id:AAMkList", "create": False}
        )
        assert by_id["folder"] == "id:AAMkList"
        bad = await _call(c, "PUT", f"{LINKS}/journal", 400, json={"folder": "Contacts/CRM"})
        assert bad["field"] == "entity"
        empty = await _call(c, "PUT", f"{LINKS}/contacts", 400, json={"folder": ""})
        assert empty["field"] == "folder"
        await _call(c, "PUT", "/api/v1/mailboxes/nobody@example.com/folder-links/tasks", 404,
                    json={"folder": "Tasks/CRM"})  # fmt: skip

        # A pass found the folder gone: the link list, the mailbox and the status say so.
        await pool.execute(
            "UPDATE sync.folder_links SET folder_error = 'linked folder gone', "
            "folder_error_at = now() WHERE entity = 'contact'"
        )
        [contacts] = [f for f in (await _call(c, "GET", LINKS, 200))["folders"]
                      if f["entity"] == "contacts"]  # fmt: skip
        assert contacts["state"] == "error" and contacts["error"] == "linked folder gone"
        shown = await _call(c, "GET", "/api/v1/mailboxes/alice@example.com", 200)
        assert [f["state"] for f in shown["folders"]] == ["error", "ok", "pending"]
        status = await _call(c, "GET", "/api/v1/status", 200)
        assert status["folder_links"] == {"errors": 1}
        cleared = await _call(c, "DELETE", f"{LINKS}/contacts", 200)
        assert cleared["folder"] == "default"
        assert (await _call(c, "GET", "/api/v1/status", 200))["folder_links"] == {"errors": 0}

        csv = "email,entity,folder\nbob@example.com,calendar,Calendar/CRM\nbob@example.com,x,y\n"
        report = await _call(c, "POST", "/api/v1/folder-links/import", 200, data=csv)
        assert (report["changed"], report["unchanged"]) == (1, 0)
        assert [(e["line"], e["field"]) for e in report["invalid"]] == [(3, "entity")]
        header = await _call(c, "POST", "/api/v1/folder-links/import", 400, data="email\n")
        assert header["field"] == "header"
