"""Two `api,dispatcher` and three `engine` replicas, two Exchange servers (EWS and Graph), a
SIGKILLed engine and leader: every mailbox converges, nothing lost or duplicated, no mailbox
synced by two engines at once, every run closed (tests/scale/replicas.py).

SCALE_MAILBOXES sets the size (200 here; `make bench-full` runs 2,000 through
benchmarks/bench_replicas.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg

from tests.scale.private_pg import PrivatePostgres
from tests.scale.replicas import ReplicaConfig, run_replicas

MAILBOXES = int(os.environ.get("SCALE_MAILBOXES", "200"))


async def test_five_replicas_two_servers_kills_mid_pass_converge(
    private_pg: PrivatePostgres, private_url: str, private_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    cfg = ReplicaConfig(mailboxes=MAILBOXES)
    figures = await run_replicas(cfg, private_pool, private_url, tmp_path, private_pg.cpu_s)
    print(figures.line())
