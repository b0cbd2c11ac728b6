"""`make demo`: the whole product on embedded defaults, end to end, in a few minutes.

Starts a private PostgreSQL (pgserver) and the Exchange simulator over HTTPS (a throwaway CA)
with 200 mailboxes holding items, seeds the bundled CRM with overlapping data, and registers two
servers through the CLI side by side: `exchange`, an Exchange Server reached through EWS, and
`online`, Exchange Online reached through Microsoft Graph with an app-only token that msal
obtains from the simulator's token endpoint. Odd mailboxes sync through EWS, even ones through
Graph. It runs the service, shows the initial passes, edits both sides on both backends, shows
the edits arrive, and prints a summary per server. It ends by printing the web console's URL
and keeps the service and the simulator serving until Enter or Ctrl-C (or the end of standard
input); `--exit` ends right after the summary, for unattended runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from sync_service.db.embedded import embedded_postgres

MAILBOXES = 200
ITEMS_PER_FOLDER = 5
SIM_PASSWORD_ENV = "EXCHANGE_DEMO_SIM_PASSWORD"  # noqa: S105 - the name of a variable, not a secret
GRAPH_SECRET_ENV = "EXCHANGE_DEMO_GRAPH_SECRET"  # noqa: S105 - the name of a variable, not a secret
SERVERS = ("exchange", "online")  # EWS for odd mailboxes, Graph for even ones
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


async def start_simulator(port: int, ca_file: Path) -> tuple[asyncio.subprocess.Process, Any]:
    """The simulator over HTTPS; what it prints on start (URLs, tenant, client credentials)."""
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
        "--tls",
        "--ca-out",
        str(ca_file),
        "--json",
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    try:
        facts = json.loads(line)
    except ValueError:
        proc.terminate()
        raise SystemExit(f"demo: the simulator did not start: {line!r}") from None
    say(f"simulator: EWS {facts['ews_url']}, Graph {facts['graph_url']}")
    say(f"simulator: token authority {facts['authority']} (tenant {facts['tenant']})")
    return proc, facts


async def add_servers(env: dict[str, str], facts: dict[str, Any], ca_file: Path) -> None:
    """The two servers, as an operator registers them (secrets by variable name)."""
    limits = ["--timezone", "Europe/Berlin", "--rate", "1000", "--max-concurrency", "200"]
    await cli(env, "servers", "add", "exchange", "--backend", "ews", "--url", facts["ews_url"],
              "--username", "svc-sync@sim.example", "--password-env", SIM_PASSWORD_ENV,
              "--ca-file", str(ca_file), *limits)  # fmt: skip
    await cli(env, "servers", "add", "online", "--backend", "graph", "--url", facts["graph_url"],
              "--tenant", facts["tenant"], "--client-id", facts["client_id"],
              "--authority", facts["authority"], "--secret-env", GRAPH_SECRET_ENV,
              "--ca-file", str(ca_file), *limits)  # fmt: skip


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
            rows.append((str(user), email, SERVERS[(n + 1) % 2], "emea" if n % 2 else "amer"))
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
    say("Outlook: a new contact in user00001 (EWS), a job title changed in user00002 (Graph)")
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
    say("the CRM: a new contact for user00003 (EWS), a company changed for user00004 (Graph)")
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
            for server in SERVERS:
                await cli(env, "sync", "--server", server, "--mode", "express")
            requested = True
        if time.monotonic() - edited > 120:
            raise SystemExit(f"demo: edits did not arrive: {seen}")
        await asyncio.sleep(0.5)


PER_SERVER = """
SELECT s.name, count(DISTINCT m.id) AS mailboxes,
       count(DISTINCT m.id) FILTER (WHERE m.state = 'active') AS active,
       count(r.id) AS passes, coalesce(sum(r.requests), 0) AS requests,
       coalesce(sum(r.throttled), 0) AS throttled,
       coalesce(array_agg(r.counts) FILTER (WHERE r.id IS NOT NULL), '{}') AS counts
FROM sync.servers s JOIN sync.mailboxes m ON m.server_id = s.id
LEFT JOIN sync.runs r ON r.mailbox_id = m.id
GROUP BY s.name ORDER BY s.name
"""


def written(counts: list[Any]) -> dict[str, int]:
    """Items written per entity and direction, over the runs' counts."""
    totals: dict[str, int] = {}
    for run in counts:
        for entity, directions in (json.loads(run) if isinstance(run, str) else run).items():
            for direction, ops in directions.items():
                key = f"{entity} {direction}"
                totals[key] = totals.get(key, 0) + sum(ops.values())
    return totals


async def summary(url: str, sim: str, http: aiohttp.ClientSession, started: float) -> None:
    conn = await asyncpg.connect(url)
    try:
        servers = await conn.fetch(PER_SERVER)
    finally:
        await conn.close()
    counters = await sim_request(http, sim, "GET", "/counters")
    graph = await sim_request(http, sim, "GET", "/graph/counters")
    print()
    say("summary: EWS (exchange) and Microsoft Graph (online) side by side")
    for row in servers:
        backend = "EWS" if row["name"] == "exchange" else "Graph, msal over TLS"
        print(f"    {row['name']} ({backend})")
        print(f"      mailboxes      {row['active']} active of {row['mailboxes']}")
        print(f"      passes         {row['passes']}, {row['requests']} requests, "
              f"{row['throttled']} throttled")  # fmt: skip
        for key, value in sorted(written(row["counts"]).items()):
            print(f"      items written  {key:32s} {value}")
    sent = counters["sent"]
    print(
        f"    simulator        {sum(counters['requests'].values())} EWS and "
        f"{sum(graph['requests'].values())} Graph requests served; meeting messages sent to "
        f"people: {sent['invitations']} invitations, {sent['updates']} updates, "
        f"{sent['cancellations']} cancellations"
    )
    print(f"    duration         {time.monotonic() - started:.1f}s")


async def main(keep_running: bool) -> int:
    started = time.monotonic()
    data_dir = Path(os.environ.get("SYNC_DATA_DIR", ".sync-data"))
    with tempfile.TemporaryDirectory(prefix="sync-demo-") as workdir:
        ca_file = Path(workdir) / "simulator-ca.pem"
        simulator, facts = await start_simulator(free_port(), ca_file)
        try:
            say(f"starting the embedded PostgreSQL in {data_dir}")
            async with embedded_postgres(data_dir) as admin_url:
                await run_demo(admin_url, facts, ca_file, keep_running, started)
        finally:
            simulator.terminate()
            await simulator.wait()
    say("done")
    return 0


async def run_demo(
    admin_url: str, facts: dict[str, Any], ca_file: Path, keep_running: bool, started: float
) -> None:
    url = await fresh_database(admin_url)
    sim = facts["graph_url"].removesuffix("/v1.0")
    api_port = free_port()
    token = "demo-token"  # noqa: S105 - the demo's own throwaway API token
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_")}
    env.update(
        SYNC_DATABASE_URL=url,
        SYNC_API_BIND=f"127.0.0.1:{api_port}",
        SYNC_API_TOKEN=token,
        SYNC_EXPRESS_INTERVAL="1m",
        SYNC_SECRET_DIR=str(ca_file.parent),  # the simulator's CA is a server's ca_file
        **{SIM_PASSWORD_ENV: facts["password"], GRAPH_SECRET_ENV: facts["client_secret"]},
    )
    await cli(env, "migrate")
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "mailboxes.csv"
        say(f"seeding the CRM: {MAILBOXES} users with contacts and tasks")
        await seed_crm(url, csv_path)
        await add_servers(env, facts, ca_file)
        await cli(env, "mailboxes", "import", str(csv_path))
    for server in SERVERS:
        await cli(env, "sync", "--server", server, "--mode", "initial")
    say("starting the service (engine, dispatcher, API)")
    # A one-off open before the service starts; the file outlives this function's steps.
    log = open(Path(tempfile.gettempdir()) / "sync-demo-service.log", "wb")  # noqa: SIM115, ASYNC230
    service = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sync_service", "run", env=env, stdout=log, stderr=log
    )
    tls = aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=str(ca_file)))
    try:
        async with aiohttp.ClientSession(connector=tls) as http:
            await progress(url, time.monotonic())
            edit = await edit_both_sides(url, http, sim)
            await wait_arrival(url, http, sim, env, edit["edited_at"])
            await cli(env, "status")
            await summary(url, sim, http, started)
        say(
            f"API: http://127.0.0.1:{api_port}/api/v1/ (Bearer {token}), "
            f"metrics: http://127.0.0.1:{api_port}/metrics, service log: {log.name}"
        )
        say(f"console: http://127.0.0.1:{api_port}/console/ (sign in with the API token {token})")
        if keep_running:
            say("serving until Enter or Ctrl-C (make demo DEMO_ARGS=--exit does not wait)")
            with contextlib.suppress(asyncio.CancelledError):
                await until_enter_or_exit(service)
    finally:
        if service.returncode is None:
            service.terminate()
            await service.wait()


async def until_enter_or_exit(service: asyncio.subprocess.Process) -> None:
    """Return when a line (or the end) of standard input arrives, or when the service exits.

    stdin is read by a daemon thread, not asyncio.to_thread: after Ctrl-C, asyncio.run waits
    for its executor's threads, and one blocked in readline would hold the demo open."""
    loop = asyncio.get_running_loop()
    entered = asyncio.Event()

    def read() -> None:
        sys.stdin.readline()
        loop.call_soon_threadsafe(entered.set)

    threading.Thread(target=read, name="demo-stdin", daemon=True).start()
    waits = [asyncio.ensure_future(entered.wait()), asyncio.ensure_future(service.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()
    if service.returncode is not None:
        say(f"the service exited ({service.returncode}); see its log")


def run() -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument(
        "--exit",
        action="store_true",
        help="end after the summary instead of serving the console until Enter or Ctrl-C",
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="serve until Enter or Ctrl-C (the default now; kept for old command lines)",
    )
    args = parser.parse_args()
    try:
        return asyncio.run(main(not args.exit))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(run())
