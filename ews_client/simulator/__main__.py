"""`python -m ews_client.simulator --port P --mailboxes N ...`: serve the simulator."""

from __future__ import annotations

import argparse
import sys

from aiohttp import web

from .app import make_app
from .config import FAULT_KINDS, FaultConfig, LatencyConfig, SimulatorConfig, ThrottlePolicy
from .state import SimState, address_of


def _latency(text: str) -> LatencyConfig:
    base, _, per_item = text.partition(",")
    return LatencyConfig(float(base) / 1000, float(per_item or 0) / 1000)


def _faults(text: str) -> dict[str, float]:
    out = {}
    for part in filter(None, text.split(",")):
        kind, _, p = part.partition("=")
        if kind not in FAULT_KINDS:
            raise argparse.ArgumentTypeError(f"unknown fault {kind!r}; one of {FAULT_KINDS}")
        out[kind] = float(p)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ews_client.simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8950)
    parser.add_argument("--mailboxes", type=int, default=10)
    parser.add_argument("--items-per-folder", type=int, default=0)
    parser.add_argument(
        "--latency-ms", type=_latency, default=LatencyConfig(), help="BASE[,PER_ITEM]"
    )
    parser.add_argument("--no-throttling", action="store_true")
    parser.add_argument(
        "--faults", type=_faults, default={}, help="KIND=P,... " + ",".join(FAULT_KINDS)
    )
    parser.add_argument("--no-validation", action="store_true", help="skip XSD checks of requests")
    args = parser.parse_args(argv)
    config = SimulatorConfig(
        throttle=ThrottlePolicy(enabled=not args.no_throttling),
        latency=args.latency_ms,
        faults=FaultConfig(probabilities=args.faults),
        validate_requests=not args.no_validation,
    )
    state = SimState(config)
    state.add_numbered(args.mailboxes, args.items_per_folder)
    url = f"http://{args.host}:{args.port}/EWS/Exchange.asmx"
    print(f"EWS simulator: {url}", flush=True)
    print(f"service account: {config.username} password: {config.password}", flush=True)
    print(f"mailboxes: {address_of(1)} .. {address_of(args.mailboxes)}", flush=True)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(make_app(state), host=args.host, port=args.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
