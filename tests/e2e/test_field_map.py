"""The operator's field map over HTTP to the simulator: a field turned off is written neither
way, a pick list value maps both ways, a bad file stops start-up naming its line, and the API
serves the map in effect."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from urllib.request import Request, urlopen

import asyncpg

from sync_service.db.queue import PassKind
from sync_service.operator.api_field_map import FieldMapAnswer
from sync_service.planning.field_map import parse
from sync_service.runtime.worker import Done
from tests.e2e.harness import Harness, harness
from tests.service_process import ServiceProcess, free_port, run_cli, service_env

BOX = "map@sim.example"
TOKEN = "field-map-token-0123456789"
JOB_TITLE_OFF = '[contacts.job_title]\ndirection = "off"\n'
# The CRM's "deferred" is Exchange's "waiting on others", and the other way round.
STATUS_SWAPPED = """
[tasks.status]
to_exchange = { deferred = "waiting_on_others", waiting_on_others = "deferred" }
to_crm = { waiting_on_others = "deferred", deferred = "waiting_on_others" }
"""


def _map_file(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "field-map.toml"
    path.write_text(text)
    return {"SYNC_FIELD_MAP_FILE": str(path)}


async def _writes(h: Harness, folder: str) -> tuple[int, dict[str, str]]:
    """CRM change-log rows and the change key of every item of the folder: a write moves one."""
    logged = await h.pool.fetchval("SELECT count(*) FROM crm.change_log")
    keys = {i["id"]: i["change_key"] for i in await h.items(BOX, folder)}
    return int(logged), keys


async def _by(h: Harness, folder: str, field: str) -> dict[str, dict[str, object]]:
    return {i["fields"][field]: i for i in await h.items(BOX, folder)}


async def test_a_field_turned_off_is_not_written_either_way(
    pool: asyncpg.Pool, backend: str, tmp_path: Path
) -> None:
    env = _map_file(tmp_path, JOB_TITLE_OFF)
    async with harness(pool, env=env, backend=backend) as h:
        user, _ = await h.add_user(BOX)
        ada = await pool.fetchval(
            "INSERT INTO crm.contacts (owner_id, last_name, job_title) "
            "VALUES ($1, 'Lovelace', 'Countess') RETURNING id",
            user,
        )
        await h.owner(
            "POST",
            f"/mailboxes/{BOX}/items",
            {"folder": "contacts", "fields": {"Surname": "Hopper", "JobTitle": "Admiral"}},
        )
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        items = await _by(h, "contacts", "Surname")
        assert "JobTitle" not in items["Lovelace"]["fields"]  # type: ignore[operator]
        assert items["Hopper"]["fields"]["JobTitle"] == "Admiral"  # type: ignore[index]
        titles = "SELECT last_name, job_title, company FROM crm.contacts ORDER BY last_name"
        assert [tuple(r) for r in await pool.fetch(titles)] == [
            ("Hopper", None, None),
            ("Lovelace", "Countess", None),
        ]

        # The field edited on both sides: no pass writes anything.
        await pool.execute("UPDATE crm.contacts SET job_title = 'Duchess' WHERE id = $1", ada)
        hopper = f"/mailboxes/{BOX}/items/{items['Hopper']['id']}"
        await h.owner("PATCH", hopper, {"fields": {"JobTitle": "Rear Admiral"}})
        before = await _writes(h, "contacts")
        for kind in (PassKind.EXPRESS, PassKind.COMPLETE):
            assert await h.sync(BOX, kind) == Done("ok")
            assert await _writes(h, "contacts") == before, kind

        # Items written for other fields do not carry it either.
        await pool.execute("UPDATE crm.contacts SET company = 'Analytical' WHERE id = $1", ada)
        await h.owner("PATCH", hopper, {"fields": {"CompanyName": "Navy"}})
        assert await h.sync(BOX) == Done("ok")
        items = await _by(h, "contacts", "Surname")
        assert items["Lovelace"]["fields"]["CompanyName"] == "Analytical"  # type: ignore[index]
        assert "JobTitle" not in items["Lovelace"]["fields"]  # type: ignore[operator]
        assert items["Hopper"]["fields"]["JobTitle"] == "Rear Admiral"  # type: ignore[index]
        assert [tuple(r) for r in await pool.fetch(titles)] == [
            ("Hopper", None, "Navy"),
            ("Lovelace", "Duchess", "Analytical"),
        ]


async def test_a_pick_list_value_maps_both_ways(
    pool: asyncpg.Pool, backend: str, tmp_path: Path
) -> None:
    env = _map_file(tmp_path, STATUS_SWAPPED)
    async with harness(pool, env=env, backend=backend) as h:
        user, _ = await h.add_user(BOX)
        chase = await pool.fetchval(
            "INSERT INTO crm.tasks (owner_id, subject, status) "
            "VALUES ($1, 'Chase', 'deferred') RETURNING id",
            user,
        )
        await h.owner(
            "POST",
            f"/mailboxes/{BOX}/items",
            {"folder": "tasks", "fields": {"Subject": "Review", "Status": "Deferred"}},
        )
        assert await h.sync(BOX, PassKind.INITIAL) == Done("ok")
        items = await _by(h, "tasks", "Subject")
        assert items["Chase"]["fields"]["Status"] == "WaitingOnOthers"  # type: ignore[index]
        status = "SELECT subject, status FROM crm.tasks ORDER BY subject"
        assert [tuple(r) for r in await pool.fetch(status)] == [
            ("Chase", "deferred"),
            ("Review", "waiting_on_others"),
        ]

        # Each side's edit reaches the other side translated.
        chase_item = f"/mailboxes/{BOX}/items/{items['Chase']['id']}"
        await h.owner("PATCH", chase_item, {"fields": {"Status": "Deferred"}})
        await pool.execute(
            "UPDATE crm.tasks SET status = 'deferred' WHERE subject = 'Review' AND owner_id = $1",
            user,
        )
        assert await h.sync(BOX) == Done("ok")
        items = await _by(h, "tasks", "Subject")
        assert items["Chase"]["fields"]["Status"] == "Deferred"  # type: ignore[index]
        assert items["Review"]["fields"]["Status"] == "WaitingOnOthers"  # type: ignore[index]
        assert await pool.fetchval("SELECT status FROM crm.tasks WHERE id = $1", chase) == (
            "waiting_on_others"
        )

        # Settled: a translated value is not seen as a change on the next passes.
        before = await _writes(h, "tasks")
        for kind in (PassKind.EXPRESS, PassKind.COMPLETE):
            assert await h.sync(BOX, kind) == Done("ok")
            assert await _writes(h, "tasks") == before, kind


def test_a_bad_file_stops_start_up_naming_the_line(tmp_path: Path) -> None:
    text = '# our map\n[contacts.notes]\ndirection = "off"\n\n[contacts.nickname]\n'
    env = service_env(**_map_file(tmp_path, text), SYNC_DATA_DIR=str(tmp_path / "data"))
    done = run_cli(env, "run", timeout=60)
    assert done.returncode == 2, done.stderr
    path = tmp_path / "field-map.toml"
    assert done.stderr.strip() == (
        f"sync-service: invalid configuration: SYNC_FIELD_MAP_FILE: {path}: line 5: "
        "contacts.nickname: unknown field of contacts; its fields are first_name, last_name, "
        "emails, company, job_title, business_phone, mobile_phone, home_phone, street, city, "
        "state, postal_code, country, birthday, categories, notes"
    )
    assert not (tmp_path / "data").exists(), "nothing was started"
    checked = run_cli(env, "check-config", timeout=60)
    assert (checked.returncode, checked.stderr) == (2, done.stderr)


async def test_the_api_serves_the_map_in_effect(db_url: str, tmp_path: Path) -> None:
    text = JOB_TITLE_OFF + STATUS_SWAPPED
    env = service_env(
        **_map_file(tmp_path, text),
        SYNC_DATABASE_URL=db_url,
        SYNC_API_TOKEN=TOKEN,
        SYNC_ROLES="api",
        SYNC_API_BIND=f"127.0.0.1:{free_port()}",
    )
    service = ServiceProcess(env, tmp_path / "service.log")
    try:
        await asyncio.to_thread(service.wait_ready)
        request = Request(f"http://127.0.0.1:{service.port}/api/v1/field-map")
        request.add_header("Authorization", f"Bearer {TOKEN}")
        with await asyncio.to_thread(urlopen, request, timeout=10) as resp:
            answer = json.loads(resp.read())
    finally:
        service.terminate()
    path = env["SYNC_FIELD_MAP_FILE"]
    assert answer == parse(text, path).describe()
    FieldMapAnswer.model_validate(answer)
    assert answer["source"] == path
    assert answer["entities"]["contacts"]["job_title"] == {"enabled": False, "direction": "off"}
    status = answer["entities"]["tasks"]["status"]
    assert status["values"]["to_crm"] == {
        "waiting_on_others": "deferred",
        "deferred": "waiting_on_others",
    }
    assert status["values"]["default"] == "not_started" and status["enabled"] is True
