"""The OpenAPI 3.1 document of the admin API, served at /openapi.json, built from the route
table: each route's method and path, and the JSON Schemas of the pydantic models that
validate its input and describe its answer (JSON Schema 2020-12, the dialect of OpenAPI 3.1).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from sync_service.dispatcher.graph_notifications import MAX_TOKEN, NOTIFICATION_PATH
from sync_service.operator.csv_import import ADDRESS_MAX, EMAIL_PATTERN, NAME_MAX
from sync_service.operator.http import Route
from sync_service.operator.models import Problem, Query
from sync_service.operator.server_specs import NAME_PATTERN

REF = "#/components/schemas/{model}"
_PATH_PARAMETER = re.compile(r"{(\w+)}")
_PROBLEM = {
    "content": {"application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}}
}
# aiohttp itself refuses, in plain text, a request it cannot parse (a request line or header
# over 8,190 bytes, say) before the API sees it.
_PLAIN = {"text/plain": {"schema": {"type": "string"}}}
ERRORS = {
    "400": {
        "description": "invalid input (names the field), or a request the server cannot parse",
        "content": {**_PROBLEM["content"], **_PLAIN},
    },
    "401": {"description": "missing or wrong bearer token", **_PROBLEM},
    "404": {"description": "unknown server or mailbox", **_PROBLEM},
    "409": {"description": "conflicts with the current state", **_PROBLEM},
    "408": {"description": "the request body did not arrive in time", **_PROBLEM},
    "503": {"description": "the database is not available (or not used here)", **_PROBLEM},
}


class _Schemas(GenerateJsonSchema):
    """Pydantic's schemas without a title on every field (the name says it)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def document(routes: Sequence[Route], *, receiver: bool = False) -> dict[str, Any]:
    """The document describing `routes` (and the Graph notification receiver when `receiver`);
    its schemas are in components/schemas."""
    refs, schemas = _schemas(routes)
    paths: dict[str, Any] = {}
    for route in routes:
        item = paths.setdefault(route.path, _path_item(route.path))
        item[route.method.lower()] = _operation(route, refs)
    if receiver:
        paths[NOTIFICATION_PATH] = {"post": _RECEIVER}
    return {
        "openapi": "3.1.0",
        "info": {"title": "sync-service admin API", "version": "1"},
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
        },
        "paths": paths,
    }


def _schemas(routes: Iterable[Route]) -> tuple[dict[type[BaseModel], Any], dict[str, Any]]:
    """Each body and answer model's `$ref`, and the schemas they point to."""
    models: set[type[BaseModel]] = {Problem}
    for route in routes:
        models.update(m for m in (route.body, route.doc.schema) if m is not None)
    ordered = sorted(models, key=lambda m: m.__name__)
    refs, defs = models_json_schema(
        [(m, "validation") for m in ordered], ref_template=REF, schema_generator=_Schemas
    )
    return {m: refs[(m, "validation")] for m in ordered}, defs.get("$defs", {})


_TEXT = {"text/plain": {"schema": {"type": "string"}}}
# Graph's to call (it cannot send our token: clientState authenticates what it posts).
_RECEIVER: dict[str, Any] = {
    "summary": "Graph change and lifecycle notifications (and the subscription handshake)",
    # The body is Graph's changeNotificationCollection ({"value": [...]}), or nothing at all
    # in the handshake (validationToken given): a schema cannot say "this body, unless that
    # parameter", so it is described here and checked by the receiver.
    "description": "body: a Graph changeNotificationCollection; none with validationToken",
    "security": [],
    "parameters": [
        {
            "name": "validationToken",
            "in": "query",
            "required": False,
            "description": "the handshake of a new subscription: echoed as text/plain",
            "schema": {"type": "string", "maxLength": MAX_TOKEN},
        }
    ],
    "responses": {
        "200": {"description": "the validationToken, echoed", "content": _TEXT},
        "202": {"description": "accepted; acted on after the answer"},
        "400": {"description": "not a notification collection (names the spot)", "content": _TEXT},
        "413": {"description": "the body is over 1 MiB"},
    },
}

# The path parameters as the API reads them: the same expressions it checks.
PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "name": {"type": "string", "maxLength": NAME_MAX, "pattern": NAME_PATTERN},
    "email": {"type": "string", "maxLength": ADDRESS_MAX, "pattern": EMAIL_PATTERN},
}


def _path_schema(name: str) -> dict[str, Any]:
    """A path parameter's schema: its pattern where it has one, an id is a positive integer."""
    if name in PATH_SCHEMAS:
        return PATH_SCHEMAS[name]
    if name == "id" or name.endswith("_id"):
        return {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
    return {"type": "string"}


def _path_item(path: str) -> dict[str, Any]:
    names = _PATH_PARAMETER.findall(path)
    if not names:
        return {}
    return {
        "parameters": [
            {"name": n, "in": "path", "required": True, "schema": _path_schema(n)} for n in names
        ]
    }


def _operation(route: Route, refs: dict[type[BaseModel], Any]) -> dict[str, Any]:
    doc = route.doc
    operation: dict[str, Any] = {"summary": doc.summary}
    if doc.public:
        operation["security"] = []
    if route.query is not None:
        operation["parameters"] = _query_parameters(route.query)
    if route.body is not None:
        operation["requestBody"] = _json_body(route.body, refs[route.body])
    elif doc.csv:
        operation["requestBody"] = {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    operation["responses"] = dict(doc.responses) or {
        str(doc.status): _answer(route, refs),
        **ERRORS,
    }
    return operation


def _json_body(model: type[BaseModel], ref: dict[str, str]) -> dict[str, Any]:
    # An empty body is read as an empty object, so a body is needed only for required fields.
    required = any(field.is_required() for field in model.model_fields.values())
    return {"required": required, "content": {"application/json": {"schema": ref}}}


def _answer(route: Route, refs: dict[type[BaseModel], Any]) -> dict[str, Any]:
    doc = route.doc
    if doc.status == 204:
        return {"description": "no content"}
    schema = refs[doc.schema] if doc.schema is not None else {"type": "object"}
    return {"description": doc.answer, "content": {"application/json": {"schema": schema}}}


def _query_parameters(model: type[Query]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF, schema_generator=_Schemas)
    required = set(schema.get("required", ()))
    parameters = []
    for name, given in schema["properties"].items():
        prop = _never_null(given)
        parameter = {
            "name": name,
            "in": "query",
            "description": prop.pop("description", ""),
            "required": name in required,
            "schema": prop,
        }
        if prop.get("type") == "array":
            # form style: `group=a&group=b` when exploded, `ids=1,2` when not
            parameter |= {"style": "form", "explode": model.repeated(name)}
        parameters.append(parameter)
    return parameters


def _never_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema: a parameter is absent or a string, never null."""
    out = {k: v for k, v in schema.items() if k != "anyOf" and not (k == "default" and v is None)}
    branches: list[dict[str, Any]] = [b for b in schema.get("anyOf", ()) if b != {"type": "null"}]
    if len(branches) == 1:
        return branches[0] | out
    return out | ({"anyOf": branches} if branches else {})
