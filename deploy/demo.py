"""`make demo`: the whole product on embedded defaults, end to end, in a few minutes.

Starts a private PostgreSQL (pgserver), the Exchange simulator with 200 mailboxes holding items,
seeds the bundled CRM with overlapping data, registers the server and mailboxes through the CLI,
runs the service, shows the initial passes, edits both sides and shows the edits arrive, then
prints a summary. `--keep-running` leaves the service and the simulator serving afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from sync_service.db.embedded import embedded_postgres

MAILBOXES = 200
ITEMS_PER_FOLDER = 5
SIM_PASSWORD_ENV = "DEMO_SIM_PASSWORD"  # noqa: S105 - the name of a variable, not a secret
DEMO_DB = "sync_demo"
TTY = sys.stdout.isatty()


def say(text: str) -> None:
    print(f"demo: {text}", flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def cli(env: dict[str, str], *args: str) -> str:
    """Run `sync-service ARGS` as an operator would; fail the demo on a non-zero exit."""
    say("$ sync-service " + " ".join(args))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sync_service",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    text = out.decode()
    if proc.returncode != 0:
        raise SystemExit(f"demo: sync-service {' '.join(args)} failed:\n{text}{err.decode()}")
    for line in text.strip().splitlines()[:12]:
        print(f"    {line}")
    return text


async def start_simulator(port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ews_client.simulator",
        "--port",
        str(port),
        "--mailboxes",
        str(MAILBOXES),
        "--items-per-folder",
        str(ITEMS_PER_FOLDER),
        "--latency-ms",
        "5,0.2",
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    say(f"simulator {line.decode().strip()}")
    return proc


async def fresh_database(admin_url: str) -> str:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DEMO_DB}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DEMO_DB}"')
    finally:
        await conn.close()
    return admin_url.replace("/postgres?", f"/{DEMO_DB}?", 1)


async def seed_crm(url: str, csv_path: Path) -> None:
    """CRM users for every mailbox; contacts that overlap the mailboxes' items and new ones."""
    conn = await asyncpg.connect(url)
    try:
        rows = []
        for n in range(1, MAILBOXES + 1):
            email = f"user{n:05d}@sim.example"
            user = await conn.fetchval(
                "INSERT INTO crm.users (email, display_name) VALUES ($1, $2) RETURNING id",
                email,
                f"User {n}",
            )
            # Seed0..Seed2 exist in the mailbox too (matched by name, not duplicated).
            await conn.execute(
                "INSERT INTO crm.contacts (owner_id, first_name, last_name, company) "
                "SELECT $1, 'Seed' || g, 'Contact', 'Overlap Inc' FROM generate_series(0, 2) g",
                user,
            )
            await conn.execute(
                "INSERT INTO crm.contacts (owner_id, first_name, last_name, email) "
                "SELECT $1, 'Crm', 'Person ' || g, 'p' || g || '.' || $2 || '@example.com' "
                "FROM generate_series(1, 3) g",
                user,
                str(n),
            )
            await conn.execute(
                "INSERT INTO crm.tasks (owner_id, subject, status) "
                "VALUES ($1, 'Prepare proposal', 'in_progress')",
                user,
            )
            rows.append((str(user), email, "sim", "emea" if n % 2 else "amer"))
    finally:
        await conn.close()
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["crm_user_id", "email", "server", "group"])
        writer.writerows(rows)


async def progress(url: str, started: float, timeout: float = 240.0) -> None:
    """Show initial passes until every mailbox had one (a bar on a terminal)."""
    conn = await asyncpg.connect(url)
    last_print = 0.0
    try:
        while True:
            done = await conn.fetchval("SELECT count(*) FROM sync.mailboxes WHERE initial_done")
            linked = await conn.fetchval("SELECT count(*) FROM sync.item_links")
            bad = await conn.fetchval("SELECT count(*) FROM sync.mailboxes WHERE state <> 'active'")
            elapsed = time.monotonic() - started
            if TTY:
                filled = int(40 * done / MAILBOXES)
                bar = "#" * filled + "." * (40 - filled)
                print(
                    f"\r  initial passes [{bar}] {done}/{MAILBOXES}, {linked} items linked,"
                    f" {elapsed:5.1f}s",
                    end="",
                    flush=True,
                )
            elif elapsed - last_print >= 5 or done == MAILBOXES:
                say(f"initial passes: {done}/{MAILBOXES} done, {linked} linked, {elapsed:.1f}s")
                last_print = elapsed
            if done + bad >= MAILBOXES:
                break
            if elapsed > timeout:
                raise SystemExit("demo: initial passes did not finish in time")
            await asyncio.sleep(0.5)
        if TTY:
            print()
    finally:
        await conn.close()


async def sim_request(
    http: aiohttp.ClientSession,
    base: str,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
) -> Any:
    async with http.request(method, f"{base}/_sim{path}", json=body) as resp:
        resp.raise_for_status()
        return await resp.json()


async def edit_both_sides(url: str, http: aiohttp.ClientSession, sim: str) -> dict[str, Any]:
    say("a user edits Outlook: new contact in user00001, job title changed in user00002")
    await sim_request(
        http,
        sim,
        "POST",
        "/mailboxes/user00001@sim.example/items",
        {"folder": "contacts", "fields": {"GivenName": "Olivia", "Surname": "Outlook"}},
    )
    items = await sim_request(http, sim, "GET", "/mailboxes/user00002@sim.example/items")
    target = next(i for i in items["items"] if i["fields"].get("GivenName") == "Crm")
    await sim_request(
        http,
        sim,
        "PATCH",
        f"/mailboxes/user00002@sim.example/items/{target['id']}",
        {"fields": {"JobTitle": "Head of Demo"}},
    )
    say("a user edits the CRM: new contact for user00003, company changed for user00004")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO crm.contacts (owner_id, first_name, last_name) "
            "SELECT id, 'Carl', 'Crm' FROM crm.users WHERE email = 'user00003@sim.example'"
        )
        await conn.execute(
            "UPDATE crm.contacts SET company = 'Renamed GmbH' WHERE id = ("
            "SELECT c.id FROM crm.contacts c JOIN crm.users u ON u.id = c.owner_id "
            "WHERE u.email = 'user00004@sim.example' AND c.first_name = 'Crm' LIMIT 1)"
        )
    finally:
        await conn.close()
    return {"edited_at": time.monotonic()}


async def arrived(url: str, http: aiohttp.ClientSession, sim: str) -> dict[str, bool]:
    conn = await asyncpg.connect(url)
    try:
        olivia = await conn.fetchval(
            "SELECT count(*) FROM crm.contacts WHERE last_name = 'Outlook'"
        )
        head = await conn.fetchval(
            "SELECT count(*) FROM crm.contacts WHERE job_title = 'Head of Demo'"
        )
    finally:
        await conn.close()
    box3 = await sim_request(http, sim, "GET", "/mailboxes/user00003@sim.example/items")
    box4 = await sim_request(http, sim, "GET", "/mailboxes/user00004@sim.example/items")
    return {
        "Outlook contact -> CRM": olivia == 1,
        "Outlook job title -> CRM": head == 1,
        "CRM contact -> Outlook": any(i["fields"].get("Surname") == "Crm" for i in box3["items"]),
        "CRM company -> Outlook": any(
            i["fields"].get("CompanyName") == "Renamed GmbH" for i in box4["items"]
        ),
    }


async def wait_arrival(
    url: str, http: aiohttp.ClientSession, sim: str, env: dict[str, str], edited: float
) -> None:
    requested = False
    while True:
        seen = await arrived(url, http, sim)
        if all(seen.values()):
            say(f"all four edits arrived {time.monotonic() - edited:.1f}s after they were made")
            for name in seen:
                print(f"    ok  {name}")
            return
        if not requested and time.monotonic() - edited > 20:
            say("no push yet; asking for an express pass as an operator would")
            await cli(env, "sync", "--server", "sim", "--mode", "express")
            requested = True
        if time.monotonic() - edited > 120:
            raise SystemExit(f"demo: edits did not arrive: {seen}")
        await asyncio.sleep(0.5)


async def summary(url: str, sim: str, http: aiohttp.ClientSession, started: float) -> None:
    conn = await asyncpg.connect(url)
    try:
        states = await conn.fetch("SELECT state, count(*) AS n FROM sync.mailboxes GROUP BY 1")
        runs = await conn.fetch("SELECT counts, requests, throttled FROM sync.runs")
    finally:
        await conn.close()
    totals: dict[str, int] = {}
    for run in runs:
        counts = run["counts"]
        for entity, directions in (
            json.loads(counts) if isinstance(counts, str) else counts
        ).items():
            for direction, ops in directions.items():
                key = f"{entity} {direction}"
                totals[key] = totals.get(key, 0) + sum(ops.values())
    counters = await sim_request(http, sim, "GET", "/counters")
    print()
    say("summary")
    print(f"    mailboxes        {dict((r['state'], r['n']) for r in states)}")
    for key, value in sorted(totals.items()):
        print(f"    items written    {key:32s} {value}")
    print(f"    passes           {len(runs)}")
    print(
        f"    requests         {sum(r['requests'] for r in runs)} "
        f"(simulator counted {sum(counters['requests'].values())})"
    )
    print(
        f"    throttled        {sum(r['throttled'] for r in runs)} answers, "
        f"early retries {counters['early_retries']}"
    )
    print(f"    duration         {time.monotonic() - started:.1f}s")


async def main(keep_running: bool) -> int:
    started = time.monotonic()
    data_dir = Path(os.environ.get("SYNC_DATA_DIR", ".sync-data"))
    say(f"starting the embedded PostgreSQL in {data_dir}")
    async with embedded_postgres(data_dir) as admin_url, aiohttp.ClientSession() as http:
        url = await fresh_database(admin_url)
        sim_port, api_port = free_port(), free_port()
        simulator = await start_simulator(sim_port)
        sim = f"http://127.0.0.1:{sim_port}"
        token = "demo-token"  # noqa: S105 - the demo's own throwaway API token
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_")}
        env.update(
            SYNC_DATABASE_URL=url,
            SYNC_API_BIND=f"127.0.0.1:{api_port}",
            SYNC_API_TOKEN=token,
            SYNC_EXPRESS_INTERVAL="1m",
            **{SIM_PASSWORD_ENV: "sim-password"},
        )
        service = None
        try:
            await cli(env, "migrate")
            with tempfile.TemporaryDirectory() as tmp:
                csv_path = Path(tmp) / "mailboxes.csv"
                say(f"seeding the CRM: {MAILBOXES} users with contacts and tasks")
                await seed_crm(url, csv_path)
                await cli(
                    env,
                    "servers",
                    "add",
                    "sim",
                    "--backend",
                    "ews",
                    "--url",
                    f"{sim}/EWS/Exchange.asmx",
                    "--username",
                    "svc-sync@sim.example",
                    "--password-env",
                    SIM_PASSWORD_ENV,
                    "--timezone",
                    "Europe/Berlin",
                    "--rate",
                    "1000",
                    "--max-concurrency",
                    "200",
                )
                await cli(env, "mailboxes", "import", str(csv_path))
            await cli(env, "sync", "--server", "sim", "--mode", "initial")
            say("starting the service (engine, dispatcher, API)")
            # A one-off open before the service starts; the file outlives this function's steps.
            log = open(Path(tempfile.gettempdir()) / "sync-demo-service.log", "wb")  # noqa: SIM115, ASYNC230
            service = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "sync_service", "run", env=env, stdout=log, stderr=log
            )
            await progress(url, time.monotonic())
            edit = await edit_both_sides(url, http, sim)
            await wait_arrival(url, http, sim, env, edit["edited_at"])
            await cli(env, "status")
            await summary(url, sim, http, started)
            say(
                f"API: http://127.0.0.1:{api_port}/api/v1/ (Bearer {token}), "
                f"metrics: http://127.0.0.1:{api_port}/metrics, service log: {log.name}"
            )
            if keep_running:
                say("--keep-running: serving until Ctrl-C")
                with contextlib.suppress(asyncio.CancelledError):
                    await service.wait()
        finally:
            if service is not None and service.returncode is None:
                service.terminate()
                await service.wait()
            simulator.terminate()
            await simulator.wait()
    say("done")
    return 0


def run() -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="keep the service and the simulator running after the demo",
    )
    args = parser.parse_args()
    try:
        return asyncio.run(main(args.keep_running))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(run())
