"""Field mapping: which canonical fields an entity has, how each side reads and writes them.

Every entity has a table of `FieldSpec`s (see `contacts.py`, `appointments.py`, `tasks.py`).
At run time the table is bound to a mailbox's options (`bind`): the entity's direction and
per-field overrides give each field an effective direction, and fields that end up `off` are
dropped, so they are neither compared, hashed nor written. A pick list field carries a
`ValueMap` (the operator's field map may replace it): how CRM values and Exchange values
translate into each other.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
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


@dataclass(frozen=True, slots=True)
class ValueMap:
    """A pick list's value translation between the two sides.

    Canonical values are Exchange's (`choices`, the values of the model's enum), so a value
    read from Exchange needs no translation. A CRM value is read through `to_exchange` (keys
    lower-case, blanks collapsed), else taken as it is when it is one of the choices, else read
    as `default`: an unknown spelling never fails the item. A value written to the CRM goes
    through `to_crm`; values it does not list are written as they are.
    """

    choices: tuple[str, ...]
    default: str
    to_exchange: Mapping[str, str] = field(default_factory=dict)
    to_crm: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        enum: type[StrEnum],
        default: StrEnum | str,
        to_exchange: Mapping[str, str] | None = None,
        to_crm: Mapping[str, str] | None = None,
    ) -> ValueMap:
        """The map of `enum`'s values; `to_exchange` keys are folded as CRM values are."""
        folded = {crm_spelling(key): value for key, value in (to_exchange or {}).items()}
        return cls(tuple(m.value for m in enum), str(default), folded, dict(to_crm or {}))

    def from_crm(self, raw: object) -> str:
        """The canonical (Exchange) value of a value read from the CRM."""
        text = raw.value if isinstance(raw, StrEnum) else crm_spelling(str(raw or ""))
        for candidate in (text, text.replace(" ", "_")):
            if candidate in self.to_exchange:
                return self.to_exchange[candidate]
            if candidate in self.choices:
                return candidate
        return self.default

    def crm_value(self, value: JsonValue) -> JsonValue:
        """The value to write to the CRM for a canonical value."""
        return self.to_crm.get(value, value) if isinstance(value, str) else value


def crm_spelling(text: str) -> str:
    """How a CRM pick list value is looked up: case and runs of blanks do not count."""
    return " ".join(text.lower().split())


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
    values: ValueMap | None = None  # a pick list: how its values translate between the sides


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
    values: Mapping[str, ValueMap] | None = None,
) -> Binding:
    """Bind a map to the mailbox options; `overrides` sets per-field directions by name,
    `values` replaces the value maps of pick list fields by name."""
    overrides, values = overrides or {}, values or {}
    unknown = (set(overrides) | set(values)) - {spec.name for spec in entity_map.specs}
    if unknown:
        raise ValueError(f"unknown {entity_map.entity} fields: {sorted(unknown)}")
    lists = {spec.name for spec in entity_map.specs if spec.values is not None}
    if set(values) - lists:
        raise ValueError(f"not pick lists of {entity_map.entity}: {sorted(set(values) - lists)}")
    active: list[FieldSpec] = []
    for spec in entity_map.specs:
        effective = combine_directions(direction, overrides.get(spec.name, spec.direction))
        if effective != Direction.OFF:
            active.append(
                replace(spec, direction=effective, values=values.get(spec.name, spec.values))
            )
    active.sort(key=lambda spec: spec.name)
    return Binding(entity_map, direction, tuple(active))


def crm_fields(binding: Binding, record: CrmRecord) -> dict[str, JsonValue]:
    """The canonical fields of a CRM record (pick list values translated to Exchange's)."""
    return {
        spec.name: spec.codec.normalize(
            spec.crm_read(record)
            if spec.values is None
            else spec.values.from_crm(spec.crm_read(record))
        )
        for spec in binding.specs
    }


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
    return binding.map.build_record(
        _crm_values(binding, _active(binding, fields)), crm_id, owner_id
    )


def updated_record(
    binding: Binding, old: CrmRecord, target: Fields, names: Iterable[str]
) -> CrmRecord:
    """`old` with the CRM attributes of the named canonical fields set from `target`."""
    full = binding.map.build_record(_crm_values(binding, target), old.id, old.owner_id)
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


def _crm_values(binding: Binding, fields: Fields) -> Fields:
    """`fields` with each pick list value as the CRM spells it (`ValueMap.to_crm`)."""
    mapped = {
        spec.name: spec.values.crm_value(fields[spec.name])
        for spec in binding.specs
        if spec.values is not None and spec.values.to_crm and spec.name in fields
    }
    return {**fields, **mapped} if mapped else fields
