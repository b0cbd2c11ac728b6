"""`/api/v1/schedules`: express schedules per entity, server and server groups
(sync_service/operator/schedules.py), with the answers' models."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import Field

from sync_service.operator.http import Doc, ok, operations_of, plain, with_body, with_query
from sync_service.operator.models import Answer, ScheduleFilter, ScheduleInput
from sync_service.operator.schedules import Schedules, ScheduleSpec, check_name, schedule_json

PREFIX = "/api/v1"  # api_routes.PREFIX, which imports this module
SCHEDULES = f"{PREFIX}/schedules"
SCHEDULE = f"{SCHEDULES}/{{name}}"


class ScheduleAnswer(Answer):
    name: str
    server: str | None = Field(description="null: every server")
    groups: list[str] | None = Field(description="null: any group")
    entities: list[str] | None = Field(description="null: every entity")
    every: str = Field(description="the express interval in seconds (e.g. 300s), or off")
    express_interval_seconds: float | None = Field(description="null: no express sweep")
    updated_at: datetime


class ScheduleList(Answer):
    schedules: list[ScheduleAnswer]


def _schedules(request: web.Request) -> Schedules:
    ops = operations_of(request)
    return Schedules(ops)


async def list_schedules(request: web.Request, query: ScheduleFilter) -> web.Response:
    found = await _schedules(request).list(query.server)
    return ok({"schedules": [schedule_json(s) for s in found]})


async def put_schedule(request: web.Request, body: ScheduleInput) -> web.Response:
    spec = ScheduleSpec(body.server, body.groups, body.entities, body.every)
    schedule, _ = await _schedules(request).set(check_name(request.match_info["name"]), spec)
    return ok(schedule_json(schedule))


async def get_schedule(request: web.Request) -> web.Response:
    name = check_name(request.match_info["name"])
    return ok(schedule_json(await _schedules(request).get(name)))


async def remove_schedule(request: web.Request) -> web.Response:
    await _schedules(request).remove(check_name(request.match_info["name"]))
    return web.Response(status=204)


ROUTES = (
    with_query(
        SCHEDULES,
        ScheduleFilter,
        list_schedules,
        Doc("express schedules per entity, server and groups", "the schedules", 200, ScheduleList),
    ),
    plain("GET", SCHEDULE, get_schedule, Doc("one schedule", "the schedule", 200, ScheduleAnswer)),
    with_body(
        "PUT",
        SCHEDULE,
        ScheduleInput,
        put_schedule,
        Doc("add or replace a schedule", "the schedule", 200, ScheduleAnswer),
    ),
    plain("DELETE", SCHEDULE, remove_schedule, Doc("remove a schedule", status=204)),
)
