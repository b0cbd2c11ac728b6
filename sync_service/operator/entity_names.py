"""Entity names as an operator writes them, for `--entity` and the API's `entities`.

The operator's words are those of the mailbox settings (`contacts`, `calendar`, `tasks`, as in
contacts_mode, calendar_mode, tasks_mode); the entity's own name (`contact`, `appointment`,
`task`, as item errors and runs show it) is taken too. A value may list several, comma-separated.
"""

from __future__ import annotations

from collections.abc import Iterable

from ews_client import EntityKind
from sync_service.db.queue import Entities, entity_scope
from sync_service.operator.server_specs import InvalidInput

NAMES: dict[str, EntityKind] = {
    "contacts": EntityKind.CONTACT,
    "contact": EntityKind.CONTACT,
    "calendar": EntityKind.APPOINTMENT,
    "appointments": EntityKind.APPOINTMENT,
    "appointment": EntityKind.APPOINTMENT,
    "tasks": EntityKind.TASK,
    "task": EntityKind.TASK,
}
# The names documented (the CLI's help, the OpenAPI enum lists every accepted one).
ENTITY_WORDS: tuple[str, ...] = ("contacts", "calendar", "tasks")
ENTITY_CHOICES: tuple[str, ...] = tuple(NAMES)
# How each entity is shown back: the word of its mode setting.
WORD_OF: dict[EntityKind, str] = {
    EntityKind.CONTACT: "contacts",
    EntityKind.APPOINTMENT: "calendar",
    EntityKind.TASK: "tasks",
}


def parse_entities(values: Iterable[str] | None, field: str = "entities") -> Entities:
    """The entities named (None: none named, or all of them); InvalidInput names the word."""
    if values is None:
        return None
    found: set[EntityKind] = set()
    for value in values:
        for word in value.split(","):
            name = word.strip().lower()
            if not name:
                continue
            if name not in NAMES:
                raise InvalidInput(
                    field, f"{word.strip()!r} is not an entity: give {', '.join(ENTITY_WORDS)}"
                )
            found.add(NAMES[name])
    return entity_scope(found)


def entity_words(entities: Entities) -> list[str] | None:
    """An entity set as the operator surface shows it (None: every entity)."""
    if entities is None:
        return None
    return [WORD_OF[e] for e in EntityKind if e in entities]
