"""Subscriptions through Microsoft's SDK: create (with changeType and a lifecycle URL), list,
get, renew, the To Do lifetime limit refused as Graph refuses it, delete."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from msgraph import GraphServiceClient
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.subscription import Subscription

from ews_client.simulator.testing import RunningSimulator

from .conftest import BOX


async def _echo(request: web.Request) -> web.Response:
    token = request.query.get("validationToken")
    if token is not None:
        return web.Response(text=token, content_type="text/plain")
    return web.Response(status=202)


@pytest.fixture
async def hook() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hook", _echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    await runner.cleanup()


def _in(minutes: int) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


async def test_the_sdk_manages_subscriptions(
    graph: GraphServiceClient, sim: RunningSimulator, hook: str
) -> None:
    made = await graph.subscriptions.post(
        Subscription(
            change_type="created,updated",
            notification_url=hook,
            lifecycle_notification_url=hook,
            resource=f"users/{BOX}/contacts",
            expiration_date_time=_in(60),
            client_state="sdk-state",
        )
    )
    assert made is not None and made.id and made.change_type == "created,updated"
    assert made.lifecycle_notification_url == hook
    listed = await graph.subscriptions.get()
    assert listed is not None and [s.id for s in listed.value or []] == [made.id]
    got = await graph.subscriptions.by_subscription_id(made.id).get()
    assert got is not None and got.resource == f"users/{BOX}/contacts"
    later = _in(3 * 24 * 60)
    renewed = await graph.subscriptions.by_subscription_id(made.id).patch(
        Subscription(expiration_date_time=later)
    )
    assert renewed is not None and renewed.expiration_date_time is not None
    assert abs((renewed.expiration_date_time - later).total_seconds()) < 2
    await graph.subscriptions.by_subscription_id(made.id).delete()
    listed = await graph.subscriptions.get()
    assert listed is not None and listed.value == []


async def test_the_sdk_sees_lifetime_and_change_type_refusals(
    graph: GraphServiceClient, hook: str
) -> None:
    lists = await graph.users.by_user_id(BOX).todo.lists.get()
    assert lists is not None and lists.value
    tasks = f"users/{BOX}/todo/lists/{lists.value[0].id}/tasks"
    too_long = Subscription(change_type="created", notification_url=hook, resource=tasks,
                            expiration_date_time=_in(4_231))  # fmt: skip
    with pytest.raises(ODataError) as caught:
        await graph.subscriptions.post(too_long)
    assert caught.value.response_status_code == 400
    assert caught.value.error is not None and caught.value.error.code == "ExtensionError"
    assert "4230 minutes" in (caught.value.error.message or "")
    wrong = Subscription(change_type="moved", notification_url=hook, resource=tasks,
                         expiration_date_time=_in(60))  # fmt: skip
    with pytest.raises(ODataError) as caught:
        await graph.subscriptions.post(wrong)
    assert caught.value.response_status_code == 400
