"""`GET /api/v1/field-map`: the field map in effect (SYNC_FIELD_MAP_FILE, or the built-in map),
with the answer's models (the OpenAPI document's schemas of this route)."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import Field, WithJsonSchema

from sync_service.operator.http import SETTINGS, Doc, ok, plain
from sync_service.operator.models import Answer
from sync_service.planning.field_map import BUILT_IN, DIRECTIONS, ENTITIES

PREFIX = "/api/v1"  # api_routes.PREFIX, which imports this module
DirectionName = Annotated[str, WithJsonSchema({"type": "string", "enum": list(DIRECTIONS)})]


class ValueMapAnswer(Answer):
    """A pick list's value map; Exchange's values are the canonical ones."""

    choices: list[str] = Field(description="Exchange's values of the pick list")
    default: str = Field(description="the Exchange value of a CRM value the map does not know")
    to_exchange: dict[str, str] = Field(
        description="CRM value (case and blanks folded) -> Exchange value"
    )
    to_crm: dict[str, str] = Field(description="Exchange value -> CRM value; others as they are")


class FieldRuleAnswer(Answer):
    enabled: bool = Field(description="false: the field is neither compared nor written")
    direction: DirectionName = Field(
        description="narrowed further by the mailbox's direction for the entity"
    )
    values: ValueMapAnswer | None = Field(None, description="pick lists only")


class FieldMapAnswer(Answer):
    source: str = Field(description="the file the map was read from, or built-in")
    entities: dict[str, dict[str, FieldRuleAnswer]] = Field(
        description=f"entity ({', '.join(ENTITIES)}) -> field -> its rule"
    )


async def field_map(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return ok((BUILT_IN if settings is None else settings.field_map).describe())


ROUTES = (
    plain(
        "GET",
        f"{PREFIX}/field-map",
        field_map,
        Doc(
            "the field map in effect: per entity and field, direction and value map",
            "the field map",
            schema=FieldMapAnswer,
        ),
    ),
)
