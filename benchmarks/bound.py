"""The round-trip bound of a run: the least wall time its Exchange requests allowed.

Every request the simulator answers costs `base + per_item x items` seconds of latency (its
`--latency-ms BASE,PER_ITEM`; items as the simulator counts them for that latency, tallied
per mailbox by benchmarks/sim_server.py). A client that keeps `c` requests of a mailbox in
flight can finish the mailbox no sooner than the sum of its requests' latencies divided by
`c`; the same holds server-wide for the client's server concurrency, and a rate limit of
`r` requests per second needs at least requests / r seconds. The bound of the run is the
largest of the three. It ignores everything else (CPU, database, the order of requests),
so a measured wall time can only be above it; measured / bound says how much of the wall
time is not Exchange latency.

The simulator's throttling adds a fourth: each mailbox has a recharging budget (`burst`
units, `recharge_per_s` back per second; a request costs 1 unit plus `item_cost` per item it
returns or writes, ews_client/simulator/config.py), so a mailbox whose requests cost `u`
units cannot be served in under (u - burst) / recharge seconds without being refused.

One order the protocol imposes is given beside it: the pages of one folder's SyncFolderItems
follow one another (each needs the SyncState of the page before) and carry at most 512
changes (MaxChangesReturned, ews_client/PROTOCOL_NOTES.md), so a mailbox's largest folder
takes at least ceil(n / 512) x base + n x per_item to read, however many requests are in
flight. The floor of a run is the larger of the bound and that chain.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ews_client.simulator.config import ThrottlePolicy

# MaxChangesReturned lies within 1..512 (ews_client/PROTOCOL_NOTES.md, SyncFolderItems).
EWS_MAX_CHANGES = 512


@dataclass(frozen=True, slots=True)
class Latency:
    base_s: float
    per_item_s: float

    @classmethod
    def parse(cls, text: str) -> Latency:
        """`"150,2"` (milliseconds per request, per item), as sim_server.py takes it."""
        base, _, per_item = text.partition(",")
        try:
            return cls(float(base) / 1000, float(per_item or 0) / 1000)
        except ValueError:
            raise ValueError(f"latency {text!r}: expected BASE_MS[,PER_ITEM_MS]") from None

    def total_s(self, requests: int, items: int) -> float:
        """The latency of `requests` requests carrying `items` items, one after another."""
        return self.base_s * requests + self.per_item_s * items


@dataclass(frozen=True, slots=True)
class Limits:
    """Requests a client may have in flight: per mailbox, to the server; its rate limit."""

    per_mailbox: int
    server: int
    rate_per_s: float | None = None

    def __post_init__(self) -> None:
        if self.per_mailbox < 1 or self.server < 1:
            raise ValueError(f"limits must allow a request in flight: {self}")


@dataclass(frozen=True, slots=True)
class Budget:
    """A mailbox's recharging request budget, as the simulator's throttling charges it."""

    burst: float
    recharge_per_s: float
    item_cost: float
    request_cost: float = 1.0

    def units(self, requests: int, items: int) -> float:
        return self.request_cost * requests + self.item_cost * items

    def floor_s(self, requests: int, items: int) -> float:
        """The least time in which a mailbox's budget pays for `requests` carrying `items`."""
        return max(0.0, self.units(requests, items) - self.burst) / self.recharge_per_s


def simulator_budget(policy: ThrottlePolicy | None = None) -> Budget:
    """The budget the simulator's throttling charges (its defaults unless given)."""
    p = policy or ThrottlePolicy()
    return Budget(p.burst, p.recharge_per_s, p.item_cost)


@dataclass(frozen=True, slots=True)
class Tally:
    """One mailbox's admitted requests and their items (a delta of sim_server's tallies)."""

    requests: int
    items: int
    peak_in_flight: int = 0
    busy_s: float = 0.0  # in-flight-seconds
    span_s: float = 0.0  # first admission to last answer


def tallies_between(
    after: Mapping[str, Mapping[str, Any]], before: Mapping[str, Mapping[str, Any]]
) -> dict[str, Tally]:
    """Per-mailbox tallies of the requests between two `/_bench/mailboxes` answers.

    The peak and the span are the after answer's: the runs snapshot `before` when no
    request of the run has been sent yet."""
    out: dict[str, Tally] = {}
    for mailbox, a in after.items():
        b = before.get(mailbox, {})
        requests = int(a["requests"]) - int(b.get("requests", 0))
        if requests <= 0:
            continue
        span = float(a["last_s"]) - float(a["first_s"]) if a.get("first_s") is not None else 0.0
        out[mailbox] = Tally(
            requests=requests,
            items=int(a["items"]) - int(b.get("items", 0)),
            peak_in_flight=int(a["peak_in_flight"]),
            busy_s=float(a["busy_s"]) - float(b.get("busy_s", 0.0)),
            span_s=span,
        )
    return out


def sync_chain_s(
    folder_items: Iterable[int], latency: Latency, max_changes: int = EWS_MAX_CHANGES
) -> float:
    """The largest folder's SyncFolderItems chain: full pages one after another (a folder
    of n items needs ceil(n / max_changes) pages, at least one), every item charged."""
    chains = [latency.total_s(max(1, math.ceil(n / max_changes)), n) for n in folder_items]
    return max(chains, default=0.0)


def _r(value: float, digits: int = 2) -> float:
    return round(value, digits)


def round_trip_bound(
    tallies: Mapping[str, Tally],
    latency: Latency,
    limits: Limits,
    wall_s: float | None = None,
    folder_items: Iterable[int] = (),
    budget: Budget | None = None,
) -> dict[str, Any]:
    """The bound of a run beside its measured wall time, and the floor with the largest
    folder's sync chain (`folder_items`: the Exchange items of each folder of a mailbox)."""
    if not tallies:
        return {"error": "the simulator answered no request of this run"}
    per_mailbox = {m: latency.total_s(t.requests, t.items) for m, t in tallies.items()}
    worst = max(per_mailbox, key=lambda m: per_mailbox[m])
    requests = sum(t.requests for t in tallies.values())
    items = sum(t.items for t in tallies.values())
    candidates = {
        "per-mailbox concurrency": per_mailbox[worst] / limits.per_mailbox,
        "server concurrency": sum(per_mailbox.values()) / limits.server,
        "server rate": requests / limits.rate_per_s if limits.rate_per_s else 0.0,
    }
    if budget is not None:
        candidates["per-mailbox budget"] = max(
            budget.floor_s(t.requests, t.items) for t in tallies.values()
        )
    binding = max(candidates, key=lambda k: candidates[k])
    bound = candidates[binding]
    chain = sync_chain_s(folder_items, latency)
    floor = max(bound, chain)
    spans = [t.span_s for t in tallies.values() if t.span_s > 0]
    return {
        "latency_ms": {"base": latency.base_s * 1000, "per_item": latency.per_item_s * 1000},
        "limits": {
            "in_flight_per_mailbox": limits.per_mailbox,
            "in_flight_server": limits.server,
            "rate_per_s": limits.rate_per_s,
        },
        "mailboxes": len(tallies),
        "requests": requests,
        "items_in_requests": items,
        "mean_items_per_request": _r(items / requests, 1),
        "mean_latency_per_request_ms": _r(1000 * latency.total_s(requests, items) / requests, 1),
        **(
            {}
            if budget is None
            else {
                "budget_units_per_mailbox": _r(
                    max(budget.units(t.requests, t.items) for t in tallies.values()), 1
                )
            }
        ),
        "slowest_mailbox": {
            "requests": tallies[worst].requests,
            "items_in_requests": tallies[worst].items,
            "round_trips_one_at_a_time_s": _r(per_mailbox[worst]),
        },
        "bounds_s": {k: _r(v) for k, v in candidates.items()},
        "binding": binding,
        "bound_s": _r(bound),
        "measured_wall_s": None if wall_s is None else _r(wall_s),
        "measured_over_bound": _r(wall_s / bound) if wall_s and bound else None,
        "largest_folder_sync_chain_s": _r(chain),
        "floor_s": _r(floor),
        "measured_over_floor": _r(wall_s / floor) if wall_s and floor else None,
        # What the client really kept in flight per mailbox (the simulator's view).
        "peak_in_flight_per_mailbox": max(t.peak_in_flight for t in tallies.values()),
        "mean_in_flight_per_mailbox": _r(
            sum(t.busy_s for t in tallies.values()) / sum(spans) if spans else 0.0
        ),
    }
