from __future__ import annotations

from typing import Any

import asyncpg

from sync_service.operator.gauges import GaugeRefresher
from tests.operator.apiclient import AUTH, SERVER, api_client

CSV = """crm_user_id,email,server,group
u1,alice@example.com,ex1,paris
u2,bob@example.com,ex1,london
u3,carol@example.com,ex1,paris
u4,dan@example.com,ex1,
u5,erin@example.com,ex1,paris
"""


async def _call(client: Any, method: str, path: str, status: int, **kw: Any) -> Any:
    headers = AUTH | kw.pop("headers", {})
    resp = await client.request(method, path, headers=headers, **kw)
    assert resp.status == status, await resp.text()
    return await resp.json(content_type=None)


async def _dump(pool: asyncpg.Pool) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for name in ("servers", "mailboxes", "jobs"):
        out[name] = [tuple(r) for r in await pool.fetch(f"SELECT * FROM sync.{name} ORDER BY 1")]
    return out


async def test_servers_crud_and_bad_input(pool: asyncpg.Pool) -> None:
    async with api_client(pool) as c:
        bad = {
            b"{not json": "body",
            b"[1, 2]": "body",
            b'{"backend": "ews"}': "name",
        }
        for raw, field in bad.items():
            body = await _call(c, "POST", "/api/v1/servers", 400, data=raw)
            assert body["field"] == field, body
        for extra, field in (
            ({"password": "hunter2"}, "password"),
            ({"colour": "red"}, "colour"),
            ({"max_concurrency": "many"}, "max_concurrency"),
            ({"max_concurrency": True}, "max_concurrency"),
            ({"time_zone": "Nowhere/Land"}, "time_zone"),
            ({"backend": "imap"}, "backend"),
        ):
            body = await _call(c, "POST", "/api/v1/servers", 400, json=SERVER | extra)
            assert body["field"] == field, body
        assert await pool.fetchval("SELECT count(*) FROM sync.servers") == 0

        created = await _call(
            c, "POST", "/api/v1/servers", 201, json=SERVER | {"express_interval": "10m"}
        )
        assert created["express_interval"] == "10m" and created["auth_kind"] == "basic"
        await _call(c, "POST", "/api/v1/servers", 409, json=SERVER)
        listed = await _call(c, "GET", "/api/v1/servers", 200)
        assert [s["name"] for s in listed["servers"]] == ["ex1"]
        one = await _call(c, "GET", "/api/v1/servers/ex1", 200)
        assert one["secret_env"] == "EXCHANGE_EX1_PASSWORD" and "password" not in one
        await _call(c, "GET", "/api/v1/servers/nope", 404)
        patched = await _call(c, "PATCH", "/api/v1/servers/ex1", 200, json={"complete_at": "04:15"})
        assert patched["complete_at"] == "04:15" and patched["express_interval"] == "10m"
        renamed = await _call(c, "PATCH", "/api/v1/servers/ex1", 400, json={"name": "ex2"})
        assert renamed["field"] == "name"
        await _call(c, "PATCH", "/api/v1/servers/nope", 404, json={"rate_per_second": 3})
        await _call(
            c,
            "POST",
            "/api/v1/mailboxes/import",
            200,
            data="crm_user_id,email,server\nu1,a@b.example,ex1\n",
        )
        busy = await _call(c, "DELETE", "/api/v1/servers/ex1", 409)
        assert "still has 1 mailbox(es)" in busy["detail"]
        await pool.execute("DELETE FROM sync.mailboxes")
        gone = await c.delete("/api/v1/servers/ex1", headers=AUTH)
        assert gone.status == 204 and await pool.fetchval("SELECT count(*) FROM sync.servers") == 0
        await _call(c, "DELETE", "/api/v1/servers/ex1", 404)


async def test_import_list_and_paginate(pool: asyncpg.Pool) -> None:
    async with api_client(pool) as c:
        await _call(c, "POST", "/api/v1/servers", 201, json=SERVER)
        before = await _dump(pool)
        header = await _call(c, "POST", "/api/v1/mailboxes/import", 400, data="email,server\n")
        assert header["field"] == "header" and "crm_user_id" in header["detail"]
        empty = await _call(c, "POST", "/api/v1/mailboxes/import", 400, data="")
        assert empty["field"] == "body"
        assert await _dump(pool) == before

        mixed = CSV + "u6,bad address,ex1,\nu7,gina@example.com,nowhere,\n"
        report = await _call(
            c,
            "POST",
            "/api/v1/mailboxes/import",
            200,
            data=mixed,
            headers={"Content-Type": "text/csv"},
        )
        assert report["inserted"] == 5 and report["updated"] == 0
        assert [e["line"] for e in report["invalid"]] == [7, 8]

        page = await _call(c, "GET", "/api/v1/mailboxes?limit=2", 200)
        seen = [m["email"] for m in page["mailboxes"]]
        while page["next_cursor"]:
            page = await _call(
                c, "GET", f"/api/v1/mailboxes?limit=2&cursor={page['next_cursor']}", 200
            )
            seen += [m["email"] for m in page["mailboxes"]]
        assert seen == [
            "alice@example.com",
            "bob@example.com",
            "carol@example.com",
            "dan@example.com",
            "erin@example.com",
        ]
        paris = await _call(c, "GET", "/api/v1/mailboxes?group=paris&group=london&server=ex1", 200)
        assert len(paris["mailboxes"]) == 4
        for query, field in (
            ("cursor=garbage", "cursor"),
            ("limit=0", "limit"),
            ("limit=ten", "limit"),
            ("state=sleeping", "state"),
        ):
            body = await _call(c, "GET", f"/api/v1/mailboxes?{query}", 400)
            assert body["field"] == field
        body = await _call(c, "GET", "/api/v1/mailboxes?server=nope", 404)
        assert body["field"] == "server"


async def test_mailbox_show_set_enable_disable(pool: asyncpg.Pool) -> None:
    async with api_client(pool) as c:
        await _call(c, "POST", "/api/v1/servers", 201, json=SERVER)
        await _call(c, "POST", "/api/v1/mailboxes/import", 200, data=CSV)
        shown = await _call(c, "GET", "/api/v1/mailboxes/alice@example.com", 200)
        assert shown["state"] == "active" and shown["items"]["contact"] == 0
        await _call(c, "GET", "/api/v1/mailboxes/zed@example.com", 404)
        assert (await _call(c, "GET", "/api/v1/mailboxes/zed", 400))["field"] == "mailbox"

        changed = await _call(
            c,
            "PATCH",
            "/api/v1/mailboxes/alice@example.com",
            200,
            json={"group": None, "calendar": "off"},
        )
        assert changed["group"] is None and changed["calendar"] == "off"
        for body, field in (
            ({"contacts": "both"}, "contacts"),
            ({"tasks": 3}, "tasks"),
            ({"x": 1}, "x"),
        ):
            problem = await _call(c, "PATCH", "/api/v1/mailboxes/alice@example.com", 400, json=body)
            assert problem["field"] == field
        off = await _call(
            c, "POST", "/api/v1/mailboxes/bob@example.com/disable", 200, json={"reason": "on leave"}
        )
        assert (off["state"], off["reason"]) == ("disabled", "on leave")
        on = await _call(c, "POST", "/api/v1/mailboxes/bob@example.com/enable", 200)
        assert (on["state"], on["reason"]) == ("active", None)


async def test_sync_recover_jobs_runs_status(pool: asyncpg.Pool) -> None:
    async with api_client(pool) as c:
        await _call(c, "POST", "/api/v1/servers", 201, json=SERVER)
        await _call(c, "POST", "/api/v1/mailboxes/import", 200, data=CSV)
        await _call(c, "POST", "/api/v1/mailboxes/dan@example.com/disable", 200)
        for body, field in (
            ({}, "target"),
            ({"mailbox": "alice@example.com", "mode": "fast"}, "mode"),
            ({"groups": "paris"}, "groups"),
            ({"groups": [""]}, "groups"),
            ({"mailbox": "alice@example.com", "dry_run": "yes"}, "dry_run"),
            ({"mailbox": "alice@example.com", "priority": 99}, "priority"),
        ):
            problem = await _call(c, "POST", "/api/v1/sync", 400, json=body)
            assert problem["field"] == field, problem
        conflict = await _call(c, "POST", "/api/v1/sync", 409, json={"mailbox": "dan@example.com"})
        assert "enable it first" in conflict["detail"]
        await _call(c, "POST", "/api/v1/sync", 404, json={"server": "nope"})
        assert await pool.fetchval("SELECT count(*) FROM sync.jobs") == 0

        queued = await _call(
            c, "POST", "/api/v1/sync", 202, json={"groups": ["paris"], "mode": "complete"}
        )
        assert sorted(j["mailbox"] for j in queued["jobs"]) == [
            "alice@example.com",
            "carol@example.com",
            "erin@example.com",
        ]
        rec = await _call(
            c, "POST", "/api/v1/mailboxes/bob@example.com/recover", 202, json={"dry_run": True}
        )
        assert rec["kind"] == "recover" and rec["dry_run"] is True
        ids = ",".join(str(j["job_id"]) for j in queued["jobs"] + rec["jobs"])
        states = await _call(c, "GET", f"/api/v1/jobs?ids={ids}", 200)
        assert {j["status"] for j in states["jobs"]} == {"queued"}
        assert (await _call(c, "GET", "/api/v1/jobs?ids=a,b", 400))["field"] == "ids"
        rows = await pool.fetch("SELECT kind, priority, source FROM sync.jobs ORDER BY id")
        assert [tuple(r) for r in rows] == [("complete", 10, "operator")] * 3 + [
            ("recover", 10, "operator")
        ]

        mailbox_id = await pool.fetchval(
            "SELECT id FROM sync.mailboxes WHERE email = 'bob@example.com'"
        )
        await pool.execute(
            "INSERT INTO sync.runs (mailbox_id, kind, started_at, finished_at, outcome, counts,"
            " requests) VALUES ($1, 'express', now(), now(), 'ok', $2, 5)",
            mailbox_id,
            {"task": {"crm_to_exchange": {"create": 4}}},
        )
        runs = await _call(c, "GET", "/api/v1/runs?mailbox=bob@example.com&since=1h", 200)
        assert [(r["mailbox"], r["outcome"], r["counts"]) for r in runs["runs"]] == [
            ("bob@example.com", "ok", {"task": {"crm_to_exchange": {"create": 4}}})
        ]
        assert (await _call(c, "GET", "/api/v1/runs?since=soon", 400))["field"] == "since"
        status = await _call(c, "GET", "/api/v1/status", 200)
        assert status["mailboxes"]["disabled"] == 1 and status["queue"]["queued"] == 4
        assert status["last_hour"]["items"] == [
            {"entity": "task", "direction": "crm_to_exchange", "operation": "create", "n": 4}
        ]


async def test_metrics_refresh_queue_and_mailbox_gauges(pool: asyncpg.Pool) -> None:
    async with api_client(pool) as c:
        await _call(c, "POST", "/api/v1/servers", 201, json=SERVER)
        await _call(c, "POST", "/api/v1/mailboxes/import", 200, data=CSV)
        await _call(c, "POST", "/api/v1/mailboxes/dan@example.com/disable", 200)
        await _call(c, "POST", "/api/v1/sync", 202, json={"server": "ex1"})
        # One tick of the refresher the api role runs (scrapes do not query the database).
        assert await GaugeRefresher.for_pool(pool, 15.0).refresh_once()
        resp = await c.get("/metrics")
        text = await resp.text()
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    assert 'sync_mailboxes{state="active"} 4.0' in text
    assert 'sync_mailboxes{state="disabled"} 1.0' in text
    assert 'sync_mailboxes{state="needs_recovery"} 0.0' in text
    assert "sync_jobs_queued 4.0" in text and "sync_jobs_running 0.0" in text
    assert "process_cpu_seconds_total" in text


async def test_move_names_what_it_cannot_move(pool: asyncpg.Pool) -> None:
    """`POST /mailboxes/{email}/move`: the API face of `mailboxes move` (the moves themselves
    are tested end to end in tests/e2e/test_mailbox_move.py)."""
    async with api_client(pool) as client:
        await _call(client, "POST", "/api/v1/servers", 201, json=SERVER)
        url = "/api/v1/mailboxes/nobody@example.com/move"
        missing = await _call(client, "POST", url, 404, json={"server": "ex1"})
        assert "nobody@example.com" in missing["detail"]
        bad = await _call(client, "POST", url, 400, json={})
        assert bad["field"] == "server"
        extra = await _call(client, "POST", url, 400, json={"server": "ex1", "to": "x"})
        assert extra["field"] == "to"
