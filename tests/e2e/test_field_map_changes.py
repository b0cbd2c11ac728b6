"""Changing the field map is safe, over HTTP to the simulator: a field turned off is left as it
is on both sides and no pass writes because of it; turned on again, the next complete pass
reconciles it and writes nothing else."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from sync_service.db.queue import PassKind
from sync_service.runtime.runner import PassRunner
from sync_service.runtime.worker import Done
from tests.e2e.harness import Harness, e2e_settings, harness

BOX = "change@sim.example"
JOB_TITLE_OFF = '[contacts.job_title]\ndirection = "off"\n'
PEOPLE = {"Ada": "Countess", "Cy": None, "Dee": "Dentist"}


def _use_map(h: Harness, tmp_path: Path, text: str) -> None:
    """The service restarted with another field map: the same database and mailbox."""
    path = tmp_path / "field-map.toml"
    path.write_text(text)
    settings = e2e_settings({"SYNC_FIELD_MAP_FILE": str(path)})
    h.runner = PassRunner(h.store, h.queue, h.runner.backends, h.crm, settings, "e2e")


async def _writes(h: Harness) -> tuple[int, dict[str, str]]:
    """CRM change-log rows and every contact's change key: any write moves one."""
    logged = await h.pool.fetchval("SELECT count(*) FROM crm.change_log")
    keys = {i["fields"]["Surname"]: i["change_key"] for i in await h.items(BOX, "contacts")}
    return int(logged), keys


async def _sides(h: Harness) -> dict[str, tuple[object, object]]:
    """(CRM job title, Exchange job title) by surname."""
    crm = dict(
        await h.pool.fetch("SELECT last_name, job_title FROM crm.contacts ORDER BY last_name")
    )
    box = {i["fields"]["Surname"]: i for i in await h.items(BOX, "contacts")}
    return {name: (crm[name], box[name]["fields"].get("JobTitle")) for name in sorted(crm)}


async def _outlook(h: Harness, surname: str, fields: dict[str, str]) -> None:
    [item] = [i for i in await h.items(BOX, "contacts") if i["fields"]["Surname"] == surname]
    await h.owner("PATCH", f"/mailboxes/{BOX}/items/{item['id']}", {"fields": fields})


async def _sync(h: Harness, kind: PassKind = PassKind.EXPRESS) -> None:
    assert await h.sync(BOX, kind) == Done("ok")


async def test_turning_a_field_off_and_on_again_writes_only_what_it_must(
    pool: asyncpg.Pool, backend: str, tmp_path: Path
) -> None:
    async with harness(pool, backend=backend) as h:
        user, _ = await h.add_user(BOX)
        for surname, job in PEOPLE.items():
            await pool.execute(
                "INSERT INTO crm.contacts (owner_id, last_name, job_title) VALUES ($1, $2, $3)",
                user,
                surname,
                job,
            )
        await _sync(h, PassKind.INITIAL)
        assert await _sides(h) == {name: (job, job) for name, job in PEOPLE.items()}

        # Off: edits of the field on either side are left where they are.
        _use_map(h, tmp_path, JOB_TITLE_OFF)
        await pool.execute("UPDATE crm.contacts SET job_title = 'Duchess' WHERE last_name = 'Ada'")
        await _outlook(h, "Cy", {"JobTitle": "Chef"})
        before = await _writes(h)
        for kind in (PassKind.EXPRESS, PassKind.COMPLETE):
            await _sync(h, kind)
            assert await _writes(h) == before, kind
        off = {"Ada": ("Duchess", "Countess"), "Cy": (None, "Chef"), "Dee": ("Dentist",) * 2}
        assert await _sides(h) == off

        # Other fields still sync, one write each, and carry no job title.
        await _outlook(h, "Dee", {"CompanyName": "Dental"})
        await _outlook(h, "Ada", {"CompanyName": "Analytical"})
        logged, keys = await _writes(h)
        await _sync(h)
        companies = "SELECT last_name, company FROM crm.contacts ORDER BY last_name"
        assert [tuple(r) for r in await pool.fetch(companies)] == [
            ("Ada", "Analytical"),
            ("Cy", None),
            ("Dee", "Dental"),
        ]
        assert await _writes(h) == (logged + 2, keys)
        assert await _sides(h) == off

        # On again: an express pass with no change writes nothing; the complete pass brings
        # the CRM's new title to Exchange and Outlook's to the CRM, and touches nothing else.
        _use_map(h, tmp_path, "")
        logged, keys = await _writes(h)
        await _sync(h)
        assert await _writes(h) == (logged, keys)
        await _sync(h, PassKind.COMPLETE)
        assert await _sides(h) == {
            "Ada": ("Duchess", "Duchess"),
            "Cy": ("Chef", "Chef"),
            "Dee": ("Dentist", "Dentist"),
        }
        after_logged, after_keys = await _writes(h)
        assert after_logged == logged + 1  # Cy's record
        assert {n for n in keys if after_keys[n] != keys[n]} == {"Ada"}
        for kind in (PassKind.EXPRESS, PassKind.COMPLETE):
            await _sync(h, kind)
            assert await _writes(h) == (after_logged, after_keys), kind
