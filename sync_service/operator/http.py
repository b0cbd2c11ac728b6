"""What the admin API's modules share: the application's keys, its answers, and the entries of
its route table. One table serves twice: it registers the aiohttp routes and it is what the
OpenAPI document describes, so a route cannot be served undocumented or documented unserved.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar

from aiohttp import web
from multidict import MultiMapping
from pydantic import BaseModel

from sync_service.config import Settings
from sync_service.operator.models import Input, Problem, Query, validated
from sync_service.operator.operations import InvalidInput, Operations, to_jsonable

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ReadyCheck = Callable[[], Awaitable[list[str]]]
READY_CHECK: web.AppKey[ReadyCheck] = web.AppKey("ready_check")
OPERATIONS: web.AppKey[Operations | None] = web.AppKey("operations")


def operations_of(request: web.Request) -> Operations:
    """The app's operations; 503 on a replica that serves no operator API (no database)."""
    ops = request.app[OPERATIONS]
    if ops is None:
        raise web.HTTPServiceUnavailable(text="this replica serves no operator API (no database)")
    return ops


SETTINGS: web.AppKey[Settings | None] = web.AppKey("settings")
TOKEN: web.AppKey[bytes | None] = web.AppKey("token")
PUBLIC_PATHS: web.AppKey[frozenset[str]] = web.AppKey("public_paths")
OPENER: web.AppKey[Any] = web.AppKey("opener")
PROBLEM_TYPES = {400: "invalid-input", 401: "unauthorized", 404: "not-found", 409: "conflict"}
B = TypeVar("B", bound=Input)
Q = TypeVar("Q", bound=Query)


def problem(status: int, detail: str, *, field: str | None = None, title: str = "") -> web.Response:
    """An RFC 9457 problem document."""
    body = Problem(
        type=f"urn:sync-service:problem:{PROBLEM_TYPES.get(status, 'http-error')}",
        title=title or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        field=field,
    )
    return web.Response(
        status=status,
        text=json.dumps(body.model_dump(exclude_none=True)),
        content_type="application/problem+json",
    )


def ok(value: Any, status: int = 200) -> web.Response:
    return web.json_response(to_jsonable(value), status=status)


@dataclass(frozen=True, slots=True)
class Doc:
    """What the OpenAPI document says of a route besides its inputs."""

    summary: str
    answer: str = "success"  # what the success answer is
    status: int = 200
    schema: type[BaseModel] | None = None  # of the success answer; None: a JSON object
    csv: bool = False  # the body is a CSV file, read by the handler itself
    public: bool = False  # no bearer token needed
    responses: Mapping[str, Any] = field(default_factory=dict)  # written out instead


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    doc: Doc
    body: type[Input] | None = None
    query: type[Query] | None = None


def plain(method: str, path: str, handler: Handler, doc: Doc) -> Route:
    return Route(method, path, handler, doc)


def with_body(
    method: str,
    path: str,
    model: type[B],
    handler: Callable[[web.Request, B], Awaitable[web.StreamResponse]],
    doc: Doc,
) -> Route:
    """A route whose JSON body is validated as `model` before `handler` sees it."""

    async def endpoint(request: web.Request) -> web.StreamResponse:
        return await handler(request, validated(model, await json_object(request)))

    return Route(method, path, endpoint, doc, body=model)


def with_query(
    path: str,
    model: type[Q],
    handler: Callable[[web.Request, Q], Awaitable[web.StreamResponse]],
    doc: Doc,
) -> Route:
    """A GET route whose query parameters are validated as `model` before `handler`."""

    async def endpoint(request: web.Request) -> web.StreamResponse:
        return await handler(request, validated(model, query_values(model, request.query)))

    return Route("GET", path, endpoint, doc, query=model)


async def json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object; an empty body is an empty object."""
    raw = await request.read()
    if not raw.strip():
        return {}
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise InvalidInput("body", "expected a JSON object")
    return body


def parse_json(raw: bytes) -> Any:
    """JSON text (RFC 8259) as Python values; InvalidInput("body") for anything else."""
    try:
        return json.loads(raw, parse_constant=_not_a_number)
    except RecursionError:  # e.g. 50,000 nested brackets: the decoder's stack ends first
        raise InvalidInput("body", "invalid JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, _not_a_number
        raise InvalidInput("body", f"invalid JSON: {exc}") from None


def _not_a_number(literal: str) -> Any:
    # Python's decoder takes NaN and Infinity, which JSON has not: a value no field can hold.
    raise ValueError(f"{literal} is not a JSON number")


def query_values(model: type[Query], query: MultiMapping[str]) -> dict[str, Any]:
    """The parameters `model` reads: every value of a repeated one, else the first."""
    values: dict[str, Any] = {}
    for name in model.model_fields:
        given = query.getall(name, [])
        if given:
            values[name] = given if model.repeated(name) else given[0]
    return values
