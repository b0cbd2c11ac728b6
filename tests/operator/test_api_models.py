"""The admin API's route table, its OpenAPI document and the models behind both."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from sync_service.operator import api, models
from sync_service.operator.api_routes import PREFIX
from sync_service.operator.models import (
    JobQuery,
    MailboxFilter,
    NewServerInput,
    NoInput,
    RunFilter,
    ServerUpdate,
    SyncInput,
    validated,
)
from sync_service.operator.operations import InvalidInput
from tests.operator.apiclient import AUTH, SERVER, api_client


async def _ready() -> list[str]:
    return []


def _refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if "$ref" in value else []
        return found + [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def test_every_api_route_is_documented_and_every_documented_path_routed() -> None:
    app = api.build_app(_ready)
    doc = api.openapi_document()
    routed = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = {
        (method, path)
        for path, item in doc["paths"].items()
        for method in item
        if method != "parameters"
    }
    v1 = {(m, p) for m, p in routed if p.startswith(f"{PREFIX}/")}
    assert len(v1) == 41
    assert v1 <= documented
    assert documented <= routed


def test_the_document_points_only_at_its_own_schemas() -> None:
    doc = api.openapi_document()
    schemas = doc["components"]["schemas"]
    refs = _refs(doc)
    assert refs and all(r.startswith("#/components/schemas/") for r in refs)
    assert {r.rsplit("/", 1)[1] for r in refs} <= schemas.keys()
    assert schemas["SyncInput"]["additionalProperties"] is False
    assert "$defs" not in str(doc)
    sync = doc["paths"][f"{PREFIX}/sync"]["post"]
    assert sync["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SyncInput"
    }
    mode = schemas["SyncInput"]["properties"]["mode"]["anyOf"][0]
    assert mode["enum"] == ["express", "complete", "initial"]


def test_query_parameters_come_from_the_filter_models() -> None:
    doc = api.openapi_document()
    listing = doc["paths"][f"{PREFIX}/mailboxes"]["get"]["parameters"]
    assert [p["name"] for p in listing] == list(MailboxFilter.model_fields)
    by_name = {p["name"]: p for p in listing}
    assert by_name["group"]["explode"] is True
    assert by_name["state"]["schema"]["enum"] == [
        "active",
        "disabled",
        "quarantined",
        "needs_recovery",
        "moved",
    ]
    assert all("null" not in str(p["schema"]) for p in listing)
    jobs = doc["paths"][f"{PREFIX}/jobs"]["get"]["parameters"]
    assert jobs[0]["required"] is True and jobs[0]["explode"] is False


@pytest.mark.parametrize(
    ("model", "data", "field", "detail"),
    [
        (SyncInput, {"groups": "paris"}, "groups", "must be a list"),
        (SyncInput, {"groups": ["paris", ""]}, "groups", "item 1: must not be empty"),
        (SyncInput, {"dry_run": "yes", "priority": 9}, "priority", "unknown field; allowed:"),
        (NewServerInput, {"backend": "ews"}, "name", "required"),
        (NewServerInput, {"name": "a", "password": "x"}, "password", "secrets are never"),
        (NewServerInput, {"name": "a", "max_concurrency": True}, "max_concurrency", "must be an"),
        (ServerUpdate, {"name": "b"}, "name", "a server cannot be renamed"),
        (NoInput, {"reason": "x"}, "reason", "unknown field; allowed: none"),
        (MailboxFilter, {"limit": "ten"}, "limit", "'ten' is not an integer"),
        (RunFilter, {"since": "soon"}, "since", ""),
        (JobQuery, {"ids": "a,b"}, "ids", "a comma-separated list of job ids"),
        (JobQuery, {"ids": ","}, "ids", "required: a comma-separated list of job ids"),
        (JobQuery, {}, "ids", "required"),
    ],
)
def test_invalid_input_names_the_field(
    model: type[models.Input], data: dict[str, Any], field: str, detail: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        validated(model, data)
    assert caught.value.field == field
    assert caught.value.message.startswith(detail)


def test_query_values_are_converted() -> None:
    runs = validated(RunFilter, {"since": "1h", "limit": "5"})
    assert (runs.since.total_seconds() if runs.since else 0, runs.limit) == (3600, 5)
    assert validated(RunFilter, {"since": ""}).since is None
    assert validated(JobQuery, {"ids": "3, 4,"}).ids == [3, 4]
    assert validated(SyncInput, {}).mode is None


async def test_answers_are_what_the_document_says(pool: asyncpg.Pool) -> None:
    async def call(method: str, path: str, status: int, **kw: Any) -> Any:
        resp = await client.request(method, PREFIX + path, headers=AUTH, **kw)
        assert resp.status == status, await resp.text()
        return await resp.json(content_type=None)

    async with api_client(pool) as client:
        models.Server.model_validate(await call("POST", "/servers", 201, json=SERVER))
        models.Server.model_validate(await call("GET", "/servers/ex1", 200))
        csv = "crm_user_id,email,server\nu1,a@b.example,ex1\nu2,bad,ex1\n"
        models.ImportReport.model_validate(await call("POST", "/mailboxes/import", 200, data=csv))
        models.Mailbox.model_validate(
            await call("PATCH", "/mailboxes/a@b.example", 200, json={"tasks": "off"})
        )
        models.Mailbox.model_validate(await call("POST", "/mailboxes/a@b.example/disable", 200))
        models.Mailbox.model_validate(await call("POST", "/mailboxes/a@b.example/enable", 200))
        models.SyncRequest.model_validate(await call("POST", "/sync", 202, json={"server": "ex1"}))
        models.SyncRequest.model_validate(
            await call("POST", "/mailboxes/a@b.example/recover", 202, json={"dry_run": True})
        )
        models.Problem.model_validate(await call("GET", "/servers/nope", 404))


def test_the_receiver_is_documented_where_it_is_served() -> None:
    assert "/api/v1/graph/notifications" not in api.openapi_document()["paths"]
    doc = api.openapi_document(receiver=True)
    post = doc["paths"]["/api/v1/graph/notifications"]["post"]
    assert post["security"] == [] and set(post["responses"]) == {"200", "202", "400", "413"}
    assert post["responses"]["200"]["content"] == {"text/plain": {"schema": {"type": "string"}}}
