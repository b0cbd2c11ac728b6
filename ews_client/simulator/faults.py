"""Injected faults, each with its own probability (config.FaultConfig).

Before the operation runs (no side effects): `soap_fault` (ErrorInternalServerTransientError),
`http_503`, `reset` (connection dropped), `slow` (an answer later than any sane client timeout).
After it ran (the write happened, the client cannot know): `truncated` (the connection drops
half-way through the body), `invalid_xml` (a 200 whose body is not XML).
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from . import soap
from .state import SimState


def _roll(sim: SimState, kind: str) -> bool:
    p = sim.config.faults.probabilities.get(kind, 0.0)
    if p > 0 and sim.rng.random() < p:
        sim.faults[kind] += 1
        return True
    return False


async def pre_fault(request: web.Request, sim: SimState) -> web.StreamResponse | None:
    if not sim.config.faults.probabilities:
        return None
    if _roll(sim, "soap_fault"):
        body = soap.fault("ErrorInternalServerTransientError")
        return web.Response(status=500, body=body, content_type="text/xml", charset="utf-8")
    if _roll(sim, "http_503"):
        return web.Response(status=503, text="Service Unavailable", headers={"Retry-After": "1"})
    if _roll(sim, "reset"):
        await request.read()
        _abort(request)
        return web.Response(status=500)  # never reaches the client: the transport is gone
    if _roll(sim, "slow"):
        await asyncio.sleep(sim.config.faults.slow_s)
    return None


async def post_fault(request: web.Request, sim: SimState, body: bytes) -> web.StreamResponse | None:
    if not sim.config.faults.probabilities:
        return None
    if _roll(sim, "truncated"):
        response = web.StreamResponse(headers={"Content-Type": "text/xml; charset=utf-8"})
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        _abort(request)
        return response
    if _roll(sim, "invalid_xml"):
        garbage = body[: len(body) // 3] + b"<<&&not xml"
        return web.Response(body=garbage, content_type="text/xml", charset="utf-8")
    return None


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()
