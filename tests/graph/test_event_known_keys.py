"""The service's own event writes are not fetched again from the calendar delta (as for
contacts and To Do): an event still at the change key our write returned is not read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ews_client import Appointment, EntityKind, GraphClient, Upsert
from ews_client.simulator.testing import RunningSimulator

from .conftest import BOX

SOON = (datetime.now(UTC) + timedelta(days=3)).replace(minute=0, second=0, microsecond=0)


async def test_own_event_writes_are_not_fetched_again(
    client: GraphClient, sim: RunningSimulator
) -> None:
    assert sim.graph is not None
    base = await client.sync_changes(BOX, EntityKind.APPOINTMENT, None)
    made = [
        await client.create_item(
            BOX,
            Appointment(
                subject=f"Ours {n}",
                start=SOON + timedelta(days=n),
                end=SOON + timedelta(days=n, hours=1),
                crm_id=f"e-{n}",
            ),
        )
        for n in range(3)
    ]
    keys = {r.id: r.change_key for r in made}

    async def known() -> dict[str, str]:
        return keys

    before = sim.graph.throttler.admitted
    result = await client.sync_changes(BOX, EntityKind.APPOINTMENT, base.sync_state, known)
    # The delta listed our three events at the keys our writes returned: only the delta ran.
    assert [c for c in result.changes if isinstance(c, Upsert)] == []
    assert sim.graph.throttler.admitted - before == 1
    # Without the keys the same delta fetches them (the check above is not vacuous).
    again = await client.sync_changes(BOX, EntityKind.APPOINTMENT, base.sync_state)
    subjects = {c.item.subject for c in again.changes if isinstance(c, Upsert)}
    assert {"Ours 0", "Ours 1", "Ours 2"} <= subjects
