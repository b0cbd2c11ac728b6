"""Subscribe (streaming), Unsubscribe and the long-lived GetStreamingEvents response."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from lxml import etree

from . import soap
from .context import Ctx, OpError, resolve_folder
from .state import SimState
from .streaming import Subscription, notification
from .xmlutil import kids, m, sub, t

Writer = Callable[[etree._Element], Awaitable[None]]


def subscribe(ctx: Ctx, req: etree._Element, sim: SimState) -> etree._Element:
    root, messages = soap.response_root("Subscribe")
    request = req.find(m("StreamingSubscriptionRequest"))
    try:
        if request is None:
            raise OpError("ErrorInvalidSubscriptionRequest", "only streaming subscriptions")
        if sim.hub.count(ctx.box.address) >= sim.config.max_subscriptions_per_mailbox:
            raise OpError("ErrorExceededSubscriptionCount", "too many subscriptions")
        folders = frozenset(resolve_folder(ctx, f).id for f in kids(request, t("FolderIds")))
        types = frozenset(e.text or "" for e in kids(request, t("EventTypes")))
    except OpError as exc:
        soap.error(messages, "Subscribe", exc.code, str(exc))
        return root
    sub_id = sim.hub.subscribe(ctx.box, folders, types)
    sub(soap.success(messages, "Subscribe"), m("SubscriptionId"), sub_id)
    return root


def unsubscribe(sim: SimState, req: etree._Element) -> etree._Element:
    root, messages = soap.response_root("Unsubscribe")
    sub_id = req.findtext(m("SubscriptionId")) or ""
    if sim.hub.subscriptions.pop(sub_id, None) is None:
        soap.error(messages, "Unsubscribe", "ErrorSubscriptionNotFound", "No subscription found.")
    else:
        soap.success(messages, "Unsubscribe")
    return root


def check_stream(sim: SimState, req: etree._Element) -> etree._Element | list[Subscription]:
    """The subscriptions to stream, or an immediate error response."""
    ids = [e.text or "" for e in kids(req, m("SubscriptionIds"))]
    root, messages = soap.response_root("GetStreamingEvents")
    if len(ids) > sim.config.max_ids_per_stream:
        soap.error(messages, "GetStreamingEvents", "ErrorInvalidArgument", "at most 200 ids")
        return root
    missing = [i for i in ids if i not in sim.hub.subscriptions]
    if missing:
        msg = soap.error(
            messages, "GetStreamingEvents", "ErrorSubscriptionNotFound", "No subscription found."
        )
        holder = sub(msg, m("ErrorSubscriptionIds"))
        for sub_id in missing:
            sub(holder, t("SubscriptionId"), sub_id)
        return root
    return [sim.hub.subscriptions[i] for i in ids]


async def stream(sim: SimState, subs: list[Subscription], timeout_s: float, write: Writer) -> None:
    """Send events as they come, heartbeats meanwhile, `Closed` at the connection timeout."""
    deadline = time.monotonic() + timeout_s
    broken = sim.hub.broken
    await write(_status("OK"))
    while (remaining := deadline - time.monotonic()) > 0:
        pending = [s for s in subs if s.events]
        if pending:
            await write(_events(pending))
            continue
        if broken.is_set():
            raise ConnectionResetError("streaming connections broken by the admin")
        await _wait(subs, broken, min(remaining, sim.config.heartbeat_s))
        idle = not any(s.events for s in subs) and not broken.is_set()
        if idle and deadline - time.monotonic() > 0:
            await write(_status("OK"))  # a heartbeat keeps the connection open
    await write(_status("Closed"))


async def _wait(subs: list[Subscription], broken: asyncio.Event, timeout: float) -> None:
    for s in subs:
        s.wakeup.clear()
    waiters = [asyncio.ensure_future(s.wakeup.wait()) for s in subs]
    waiters.append(asyncio.ensure_future(broken.wait()))
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def _status(status: str) -> etree._Element:
    root, messages = soap.response_root("GetStreamingEvents")
    sub(soap.success(messages, "GetStreamingEvents"), m("ConnectionStatus"), status)
    return root


def _events(subs: list[Subscription]) -> etree._Element:
    root, messages = soap.response_root("GetStreamingEvents")
    holder = sub(soap.success(messages, "GetStreamingEvents"), m("Notifications"))
    for s in subs:
        events, s.events = s.events, []
        holder.append(notification(s, events))
    return root
