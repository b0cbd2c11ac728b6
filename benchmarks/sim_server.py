"""The EWS simulator as its own process, seeded with different counts per folder.

`python -m ews_client.simulator` puts the same number of items in every folder; the benchmarks
need the issue's mix (200 contacts, 100 appointments, 50 tasks per mailbox), so this launcher
builds the same `SimState` and app and seeds each folder with its own count. Everything else
(throttling, latency, validation) is the simulator's own configuration.

The launcher also tallies, per mailbox, the requests the simulator admitted, the items they
read or wrote (the count the simulator charges per-item latency for), the most requests in
flight at once and the time-weighted number in flight; `GET /_bench/mailboxes` answers them.
benchmarks/bound.py turns them into the round-trip bound of a run.

    python benchmarks/sim_server.py --port P --mailboxes N --contacts 200 --appointments 100 \
        --tasks 50 --latency-ms 20,1 [--no-throttling] [--no-validation]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass, field

from aiohttp import web

from ews_client.simulator.app import make_app
from ews_client.simulator.config import LatencyConfig, SimulatorConfig, ThrottlePolicy
from ews_client.simulator.state import SimState, address_of
from ews_client.simulator.store import FOLDER_ITEM_KIND
from ews_client.simulator.throttle import Refusal, Throttler
from ews_client.simulator.writes import simple_props


def contact_fields(n: int) -> dict[str, str]:
    return {"GivenName": f"Seed{n}", "Surname": "Contact", "CompanyName": "Sim Corp"}


def appointment_fields(n: int) -> dict[str, str]:
    # Distinct (subject, start) pairs: the initial pass matches appointments on both.
    day, hour = n % 28 + 1, 8 + n % 9
    return {
        "Subject": f"Seed meeting {n}",
        "Start": f"2026-01-{day:02d}T{hour:02d}:00:00Z",
        "End": f"2026-01-{day:02d}T{hour:02d}:30:00Z",
    }


def task_fields(n: int) -> dict[str, str]:
    return {"Subject": f"Seed task {n}"}


FIELDS = {"contacts": contact_fields, "calendar": appointment_fields, "tasks": task_fields}


def seed(state: SimState, mailboxes: int, counts: dict[str, int]) -> None:
    for number in range(1, mailboxes + 1):
        box = state.add_mailbox(address_of(number))
        for folder_name, count in counts.items():
            folder = box.folder(folder_name)
            kind = FOLDER_ITEM_KIND[folder.folder_class]
            make = FIELDS[folder_name]
            for n in range(count):
                box.add(folder, kind, simple_props(kind, make(n)))


@dataclass(slots=True)
class MailboxTally:
    """One mailbox's admitted requests as the simulator served them."""

    requests: int = 0
    items: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    busy_s: float = 0.0  # integral of requests in flight over time: in-flight-seconds
    first_s: float | None = None  # monotonic time of the first admission
    last_s: float = 0.0  # of the last change (admission or answer)

    def _advance(self, now: float) -> None:
        if self.first_s is None:
            self.first_s = now
        self.busy_s += self.in_flight * (now - self.last_s)
        self.last_s = now

    def admitted(self, now: float) -> None:
        self._advance(now)
        self.requests += 1
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def answered(self, now: float, items: int) -> None:
        self._advance(now)
        self.in_flight -= 1
        self.items += items


@dataclass(slots=True)
class TallyingThrottler(Throttler):
    """The simulator's own throttler, unchanged in what it admits and refuses, that also
    keeps a `MailboxTally` per mailbox: the simulator counts requests per operation only,
    and the items of a request exist only inside its handler (`Ctx.items`, handed to
    `release`)."""

    tallies: dict[str, MailboxTally] = field(default_factory=dict)

    def admit(self, mailbox: str, is_sync: bool) -> Refusal | None:
        refusal = Throttler.admit(self, mailbox, is_sync)
        if refusal is None:
            self.tallies.setdefault(mailbox, MailboxTally()).admitted(self.clock())
        return refusal

    def release(self, mailbox: str, is_sync: bool, items: int) -> None:
        Throttler.release(self, mailbox, is_sync, items)
        self.tallies[mailbox].answered(self.clock(), items)


async def _tallies(request: web.Request) -> web.Response:
    throttler = request.app[TALLY_KEY]
    return web.json_response({k: asdict(v) for k, v in throttler.tallies.items()})


TALLY_KEY = web.AppKey("bench_tally", TallyingThrottler)


def _latency(text: str) -> LatencyConfig:
    base, _, per_item = text.partition(",")
    return LatencyConfig(float(base) / 1000, float(per_item or 0) / 1000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/sim_server.py")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mailboxes", type=int, default=10)
    parser.add_argument("--contacts", type=int, default=0)
    parser.add_argument("--appointments", type=int, default=0)
    parser.add_argument("--tasks", type=int, default=0)
    parser.add_argument("--latency-ms", type=_latency, default=LatencyConfig())
    parser.add_argument("--no-throttling", action="store_true")
    parser.add_argument("--no-validation", action="store_true")
    args = parser.parse_args(argv)
    config = SimulatorConfig(
        throttle=ThrottlePolicy(enabled=not args.no_throttling),
        latency=args.latency_ms,
        validate_requests=not args.no_validation,
    )
    state = SimState(config)
    state.throttler = throttler = TallyingThrottler(config.throttle)
    counts = {"contacts": args.contacts, "calendar": args.appointments, "tasks": args.tasks}
    seed(state, args.mailboxes, counts)
    print(f"EWS simulator: http://127.0.0.1:{args.port}/EWS/Exchange.asmx", flush=True)
    import uvloop

    uvloop.install()
    app = make_app(state)
    app[TALLY_KEY] = throttler
    app.router.add_get("/_bench/mailboxes", _tallies)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
