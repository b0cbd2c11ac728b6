"""`python -m ews_client.simulator --port P --mailboxes N ...`: serve the simulator.

With `--tls` it serves HTTPS with a certificate from a throwaway CA whose PEM it writes to
`--ca-out` (or with `--cert` / `--key` given); msal and azure-identity accept only an https
authority. On start it prints what an application needs, one `name: value` line each, or one
JSON object with `--json`: the EWS URL, the Graph base URL, the token authority, the tenant,
the client id and secret (and the CA file, the client certificate file when asked for one).
The first text line stays `EWS simulator: <url>`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import signal
import ssl
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from .app import make_app
from .config import FAULT_KINDS, FaultConfig, LatencyConfig, SimulatorConfig, ThrottlePolicy
from .graph.credentials import make_client_certificate
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


def _addresses(text: str) -> frozenset[str]:
    found = frozenset(a.strip().lower() for a in text.split(",") if a.strip())
    bad = sorted(a for a in found if "@" not in a)
    if bad:
        raise argparse.ArgumentTypeError(f"not an SMTP address: {', '.join(bad)}")
    return found


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ews_client.simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8950, help="0: any free port (printed)")
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
    access = parser.add_argument_group(
        "mailbox access", "comma-separated addresses; PUT /_sim/mailboxes/ADDRESS/... changes them"
    )
    access.add_argument(
        "--refuse-impersonation",
        type=_addresses,
        default=frozenset(),
        metavar="ADDRESSES",
        help="refuse impersonating these mailboxes (SOAP fault ErrorImpersonateUserDenied)",
    )
    access.add_argument(
        "--moving",
        type=_addresses,
        default=frozenset(),
        metavar="ADDRESSES",
        help="these mailboxes are being moved (every call: ErrorMailboxMoveInProgress)",
    )
    access.add_argument(
        "--moved",
        type=_addresses,
        default=frozenset(),
        metavar="ADDRESSES",
        help="these mailboxes moved to another server (every call: ErrorNonExistentMailbox)",
    )
    tls = parser.add_argument_group("HTTPS")
    tls.add_argument("--tls", action="store_true", help="serve HTTPS with a throwaway CA")
    tls.add_argument("--ca-out", metavar="FILE", help="with --tls: write the CA's PEM here")
    tls.add_argument("--cert", metavar="FILE", help="serve HTTPS with this certificate (PEM)")
    tls.add_argument("--key", metavar="FILE", help="the private key of --cert (PEM)")
    parser.add_argument(
        "--client-cert-out",
        metavar="FILE",
        help="register a new client certificate for the app; write its key and certificate here",
    )
    parser.add_argument("--json", action="store_true", help="print the start-up facts as JSON")
    return parser


def _server_tls(args: argparse.Namespace, workdir: Path) -> tuple[ssl.SSLContext | None, str]:
    """The server's TLS context and the CA file clients should trust ("" when none)."""
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        return context, ""
    if not args.tls:
        return None, ""
    import trustme  # a dev dependency: only HTTPS mode needs it

    ca = trustme.CA()
    # A wildcard bind address is no name a client connects to; the loopback names are.
    wildcard = ("0.0.0.0", "::")  # noqa: S104 - compared against, not bound
    names = dict.fromkeys(n for n in (args.host, "127.0.0.1", "localhost") if n not in wildcard)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    ca_file = Path(args.ca_out) if args.ca_out else workdir / "sim-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, str(ca_file)


def _config(args: argparse.Namespace) -> tuple[SimulatorConfig, str]:
    """The configuration, and the file of the client certificate registered for the app."""
    config = SimulatorConfig(
        throttle=ThrottlePolicy(enabled=not args.no_throttling),
        latency=args.latency_ms,
        faults=FaultConfig(probabilities=args.faults),
        validate_requests=not args.no_validation,
        impersonation_refused=args.refuse_impersonation,
        moving=args.moving,
        moved=args.moved,
    )
    if not args.client_cert_out:
        return config, ""
    pair = make_client_certificate()
    out = Path(args.client_cert_out)
    out.touch(mode=0o600)
    out.write_text(pair.combined_pem)
    graph = dataclasses.replace(config.graph, client_certificates=(pair.certificate_pem,))
    return dataclasses.replace(config, graph=graph), str(out)


def facts(
    config: SimulatorConfig, base: str, mailboxes: int, ca_file: str, cert_file: str
) -> dict[str, Any]:
    """What an application needs to reach the simulator, by name."""
    policy = config.graph
    authority = f"{base}/{policy.tenant}"
    return {
        "ews_url": f"{base}/EWS/Exchange.asmx",
        "graph_url": f"{base}/v1.0",
        "authority": authority,
        "token_endpoint": f"{authority}/oauth2/v2.0/token",
        "tenant": policy.tenant,
        "tenant_id": policy.tenant_id,
        "client_id": policy.client_id,
        "client_secret": policy.client_secret,
        "client_certificate_file": cert_file or None,
        "ca_file": ca_file or None,
        "username": config.username,
        "password": config.password,
        "mailboxes": [address_of(1), address_of(mailboxes)],
    }


def _print_facts(found: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(found), flush=True)
        return
    lines = [
        f"EWS simulator: {found['ews_url']}",
        f"Graph base URL: {found['graph_url']}",
        f"token authority: {found['authority']}",
        f"tenant: {found['tenant']} (id {found['tenant_id']})",
        f"client id: {found['client_id']}",
        f"client secret: {found['client_secret']}",
    ]
    if found["client_certificate_file"]:
        lines.append(f"client certificate: {found['client_certificate_file']}")
    if found["ca_file"]:
        lines.append(f"CA file: {found['ca_file']}")
    lines += [
        f"service account: {found['username']} password: {found['password']}",
        f"mailboxes: {found['mailboxes'][0]} .. {found['mailboxes'][1]}",
    ]
    print("\n".join(lines), flush=True)


async def _serve(
    app: web.Application,
    host: str,
    port: int,
    context: ssl.SSLContext | None,
    ready: Callable[[int], None],
) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await web.TCPSite(runner, host, port, ssl_context=context).start()
        ready(int(runner.addresses[0][1]))  # the bound port: --port 0 picks a free one
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if bool(args.cert) != bool(args.key):
        _parser().error("--cert and --key go together")
    config, cert_file = _config(args)
    state = SimState(config)
    state.add_numbered(args.mailboxes, args.items_per_folder)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    with tempfile.TemporaryDirectory(prefix="sim-") as workdir:
        context, ca_file = _server_tls(args, Path(workdir))
        scheme = "https" if context is not None else "http"

        def ready(port: int) -> None:
            base = f"{scheme}://{args.host}:{port}"
            _print_facts(facts(config, base, args.mailboxes, ca_file, cert_file), args.json)

        asyncio.run(_serve(make_app(state), args.host, args.port, context, ready))
    return 0


if __name__ == "__main__":
    sys.exit(main())
