"""Field mapping: which canonical fields an entity has, how each side reads and writes them.

Every entity has a table of `FieldSpec`s (see `contacts.py`, `appointments.py`, `tasks.py`).
At run time the table is bound to a mailbox's options (`bind`): the entity's direction and
per-field overrides give each field an effective direction, and fields that end up `off` are
dropped, so they are neither compared, hashed nor written.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from ews_client.models import EntityKind, Item

from .records import CrmRecord
from .values import Codec, Fields, JsonValue


class Direction(StrEnum):
    TWO_WAY = "two_way"
    CRM_TO_EXCHANGE = "crm_to_exchange"
    EXCHANGE_TO_CRM = "exchange_to_crm"
    OFF = "off"

    @property
    def from_crm(self) -> bool:
        return self in (Direction.TWO_WAY, Direction.CRM_TO_EXCHANGE)

    @property
    def from_exchange(self) -> bool:
        return self in (Direction.TWO_WAY, Direction.EXCHANGE_TO_CRM)


def combine_directions(entity: Direction, field: Direction) -> Direction:
    """The stricter of two directions; opposite one-way directions cancel out to `off`."""
    if Direction.OFF in (entity, field):
        return Direction.OFF
    if entity == field or field == Direction.TWO_WAY:
        return entity
    if entity == Direction.TWO_WAY:
        return field
    return Direction.OFF


# A combine hook decides a field changed on both sides: (base, crm, exchange, winner) -> value,
# where winner is the value the conflict policy picked. Used for recurrence exceptions.
Combine = Callable[[JsonValue, JsonValue, JsonValue, JsonValue], JsonValue]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One canonical field: its codec, readers, and the attributes written on each side."""

    name: str
    codec: Codec
    crm_read: Callable[[Any], object]
    exchange_read: Callable[[Any], object]
    crm_attrs: tuple[str, ...]
    model_fields: tuple[str, ...]
    direction: Direction = Direction.TWO_WAY
    combine: Combine | None = None


@dataclass(frozen=True, slots=True)
class EntityMap:
    """The full, unbound mapping of one entity."""

    entity: EntityKind
    specs: tuple[FieldSpec, ...]
    # (fields, crm id, owner id) -> a complete CRM record built from canonical fields
    build_record: Callable[[Fields, str, str], CrmRecord]
    # (fields, crm id) -> a complete Exchange item carrying the CRM id
    build_item: Callable[[Fields, str], Item]
    # A short human title for dry-run output.
    title: Callable[[Fields], str]


@dataclass(frozen=True, slots=True)
class Binding:
    """An entity map bound to a mailbox's direction options: the active fields only."""

    map: EntityMap
    direction: Direction
    specs: tuple[FieldSpec, ...]

    @property
    def entity(self) -> EntityKind:
        return self.map.entity

    def spec(self, name: str) -> FieldSpec:
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise KeyError(name)


def bind(
    entity_map: EntityMap,
    direction: Direction = Direction.TWO_WAY,
    overrides: Mapping[str, Direction] | None = None,
) -> Binding:
    """Bind a map to the mailbox options; `overrides` sets per-field directions by name."""
    overrides = overrides or {}
    unknown = set(overrides) - {spec.name for spec in entity_map.specs}
    if unknown:
        raise ValueError(f"unknown {entity_map.entity} fields: {sorted(unknown)}")
    active: list[FieldSpec] = []
    for spec in entity_map.specs:
        effective = combine_directions(direction, overrides.get(spec.name, spec.direction))
        if effective != Direction.OFF:
            active.append(replace(spec, direction=effective))
    active.sort(key=lambda spec: spec.name)
    return Binding(entity_map, direction, tuple(active))


def crm_fields(binding: Binding, record: CrmRecord) -> dict[str, JsonValue]:
    """The canonical fields of a CRM record."""
    return {spec.name: spec.codec.normalize(spec.crm_read(record)) for spec in binding.specs}


def exchange_fields(binding: Binding, item: Item) -> dict[str, JsonValue]:
    """The canonical fields of an Exchange item (envelope and unmapped properties ignored)."""
    return {spec.name: spec.codec.normalize(spec.exchange_read(item)) for spec in binding.specs}


def comparison_keys(binding: Binding, fields: Fields) -> dict[str, JsonValue]:
    return {spec.name: spec.codec.key(fields.get(spec.name)) for spec in binding.specs}


def content_hash(binding: Binding, fields: Fields) -> str:
    """A stable hash over the comparison keys of the active fields only.

    Anything the mapping does not hold (change keys, read flags, other properties) is outside
    the hash, so Exchange-side noise never looks like a change.
    """
    payload = _HASH_JSON.encode([spec.codec.key(fields.get(spec.name)) for spec in binding.specs])
    return hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()


# The encoder of `content_hash`, built once (json.dumps with options builds one per call);
# the same options, so the same text and the same hashes as stored link rows hold.
_HASH_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def same_value(spec: FieldSpec, left: JsonValue, right: JsonValue) -> bool:
    return left == right or spec.codec.key(left) == spec.codec.key(right)


def differing(binding: Binding, left: Fields, right: Fields) -> frozenset[str]:
    """Names of the active fields whose values differ by comparison key."""
    return frozenset(
        spec.name
        for spec in binding.specs
        if not same_value(spec, left.get(spec.name), right.get(spec.name))
    )


def new_record(binding: Binding, fields: Fields, crm_id: str, owner_id: str) -> CrmRecord:
    """A CRM record for a create; fields the binding leaves out take the record defaults."""
    return binding.map.build_record(_active(binding, fields), crm_id, owner_id)


def updated_record(
    binding: Binding, old: CrmRecord, target: Fields, names: Iterable[str]
) -> CrmRecord:
    """`old` with the CRM attributes of the named canonical fields set from `target`."""
    full = binding.map.build_record(target, old.id, old.owner_id)
    changes = {attr: getattr(full, attr) for name in names for attr in binding.spec(name).crm_attrs}
    return replace(old, **changes)


def new_item(binding: Binding, fields: Fields, crm_id: str) -> Item:
    """An Exchange item for a create or an update, carrying the CRM id."""
    return binding.map.build_item(_active(binding, fields), crm_id)


def model_fields(binding: Binding, names: Iterable[str]) -> frozenset[str]:
    """The model field names to pass to `ExchangeBackend.update_item(fields=...)`."""
    return frozenset(field for name in names for field in binding.spec(name).model_fields)


def _active(binding: Binding, fields: Fields) -> dict[str, JsonValue]:
    return {spec.name: fields.get(spec.name) for spec in binding.specs}
