"""The operator's field map: per entity and field, whether it syncs and in which direction, and
how pick list values translate between the CRM and Exchange.

The map is a TOML file (`deploy/field-map.toml` is the built-in map written out)::

    [contacts.notes]
    direction = "off"                 # two_way | crm_to_exchange | exchange_to_crm | off

    [tasks.status]
    default = "not_started"           # the Exchange value of a CRM value the map does not know
    to_exchange = { open = "not_started", done = "completed" }   # CRM value -> Exchange value
    to_crm = {}                                                  # Exchange value -> CRM value

What a file does not name keeps the built-in mapping; a pick list key given replaces that part
of the built-in value map only. Everything is checked when the file is read: an unknown entity,
field, key or direction, a value that is not one of the pick list's, and a value map whose
Exchange values would not survive a round trip through the CRM each raise `FieldMapError`
naming the file, the line and the key. Pure: the caller reads the file.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn

from ews_client.models import EntityKind
from sync_service.errors import OperatorError

from .appointments import APPOINTMENTS
from .contacts import CONTACTS
from .mapping import Binding, Direction, EntityMap, ValueMap, bind, crm_spelling
from .tasks import TASKS

# The operator's names of the entities, as the mailbox options (`--contacts`, `--calendar`,
# `--tasks`) name them.
ENTITIES: dict[str, EntityMap] = {"contacts": CONTACTS, "calendar": APPOINTMENTS, "tasks": TASKS}
NAMES: dict[EntityKind, str] = {entity_map.entity: name for name, entity_map in ENTITIES.items()}
DIRECTIONS = tuple(d.value for d in Direction)
FIELD_KEYS = ("direction",)
LIST_KEYS = ("default", "to_exchange", "to_crm")
Key = tuple[str, ...]


class FieldMapError(OperatorError):
    """A field map that cannot be used; the message names the file, line and key."""

    def __init__(self, source: str, line: int, key: Key, message: str) -> None:
        self.source, self.line, self.key, self.message = source, line, ".".join(key), message
        where = f"{source}: line {line}" + (f": {self.key}" if key else "")
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One field as the map has it: its direction (`off`: not synced) and its value map."""

    direction: Direction
    values: ValueMap | None = None


Rules = Mapping[EntityKind, Mapping[str, FieldRule]]


def _built_in_rules() -> dict[EntityKind, dict[str, FieldRule]]:
    return {
        m.entity: {s.name: FieldRule(s.direction, s.values) for s in m.specs}
        for m in ENTITIES.values()
    }


@dataclass(frozen=True, slots=True)
class FieldMap:
    """The map in effect: a rule for every field of every entity."""

    source: str = "built-in"
    rules: Rules = field(default_factory=_built_in_rules)

    def bind(self, entity_map: EntityMap, direction: Direction) -> Binding:
        """`mapping.bind` with this map's directions and value maps."""
        rules = self.rules[entity_map.entity]
        overrides = {name: rule.direction for name, rule in rules.items()}
        values = {name: rule.values for name, rule in rules.items() if rule.values is not None}
        return bind(entity_map, direction, overrides, values)

    def describe(self) -> dict[str, Any]:
        """The map as JSON (the API's answer): entity -> field -> its rule."""
        return {
            "source": self.source,
            "entities": {
                NAMES[entity]: {name: _rule_json(rule) for name, rule in rules.items()}
                for entity, rules in self.rules.items()
            },
        }


BUILT_IN = FieldMap()


def _rule_json(rule: FieldRule) -> dict[str, Any]:
    out: dict[str, Any] = {
        "enabled": rule.direction != Direction.OFF,
        "direction": rule.direction.value,
    }
    if rule.values is not None:
        out["values"] = {
            "choices": list(rule.values.choices),
            "default": rule.values.default,
            "to_exchange": dict(rule.values.to_exchange),
            "to_crm": dict(rule.values.to_crm),
        }
    return out


def parse(text: str, source: str) -> FieldMap:
    """The field map a TOML text describes, checked; `source` names the file in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        line = int(found.group(1)) if found else 1
        raise FieldMapError(source, line, (), f"not TOML: {exc}") from None
    lines = key_lines(text)
    reader = _Reader(source, lines)
    rules = _built_in_rules()
    for name, table in data.items():
        entity_map = ENTITIES.get(name)
        if entity_map is None:
            reader.fail((name,), f"unknown entity; the entities are {', '.join(ENTITIES)}")
        for field_name, spec_table in reader.table((name,), table).items():
            key = (name, field_name)
            old = rules[entity_map.entity].get(field_name)
            if old is None:
                known = ", ".join(s.name for s in entity_map.specs)
                reader.fail(key, f"unknown field of {name}; its fields are {known}")
            rules[entity_map.entity][field_name] = reader.rule(key, old, spec_table)
        reader.groups(name, entity_map, rules[entity_map.entity])
    return FieldMap(source, rules)


class _Reader:
    """Checks of one file's values; every failure names the line of the key."""

    def __init__(self, source: str, lines: Mapping[Key, int]) -> None:
        self.source, self.lines = source, lines

    def fail(self, key: Key, message: str) -> NoReturn:
        raise FieldMapError(self.source, line_of(self.lines, key), key, message)

    def table(self, key: Key, value: object) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(key, "must be a table")
        return value

    def rule(self, key: Key, old: FieldRule, table: object) -> FieldRule:
        given = self.table(key, table)
        allowed = FIELD_KEYS + (LIST_KEYS if old.values is not None else ())
        for name in given:
            if name not in allowed:
                hint = "" if old.values is not None else " (not a pick list)"
                self.fail((*key, name), f"unknown key{hint}; use {', '.join(allowed)}")
        direction = old.direction
        if "direction" in given:
            direction = self.direction((*key, "direction"), given["direction"])
        values = old.values
        if values is not None:
            values = self.values(key, values, given)
        return FieldRule(direction, values)

    def groups(self, name: str, entity_map: EntityMap, rules: Mapping[str, FieldRule]) -> None:
        """Fields written to Exchange as one property are turned off together, or not at all.

        A write of the property is built from all its fields: with one of them off, every
        write of another would empty that one on Exchange (the business address, the display
        name made of first and last name).
        """
        for prop, names in _shared_properties(entity_map).items():
            off = [n for n in names if rules[n].direction == Direction.OFF]
            if off and len(off) < len(names):
                self.fail(
                    (name, off[0], "direction"),
                    f"written to Exchange with {', '.join(n for n in names if n not in off)} "
                    f"as one property ({prop}): turn {', '.join(names)} off together",
                )

    def direction(self, key: Key, value: object) -> Direction:
        if value not in DIRECTIONS:
            self.fail(key, f"{value!r} is not a direction; use {', '.join(DIRECTIONS)}")
        return Direction(str(value))

    def values(self, key: Key, old: ValueMap, given: Mapping[str, object]) -> ValueMap:
        new = old
        if "default" in given:
            new = replace(new, default=self.choice((*key, "default"), old, given["default"]))
        if "to_exchange" in given:
            new = replace(new, to_exchange=self.to_exchange(key, old, given["to_exchange"]))
        if "to_crm" in given:
            table = self.table((*key, "to_crm"), given["to_crm"])
            checked = {
                self.choice((*key, "to_crm", x), old, x): self.choice((*key, "to_crm", x), old, c)
                for x, c in table.items()
            }
            new = replace(new, to_crm=checked)
        self.round_trip(key, new)
        return new

    def to_exchange(self, key: Key, old: ValueMap, value: object) -> dict[str, str]:
        out: dict[str, str] = {}
        for crm_value, exchange_value in self.table((*key, "to_exchange"), value).items():
            where = (*key, "to_exchange", crm_value)
            folded = crm_spelling(crm_value)
            if not folded:
                self.fail(where, "a CRM value cannot be blank")
            if folded in out:
                self.fail(where, f"listed twice ({folded!r}: case and blanks do not count)")
            out[folded] = self.choice(where, old, exchange_value)
        return out

    def choice(self, key: Key, values: ValueMap, value: object) -> str:
        if value not in values.choices:
            choices = ", ".join(values.choices)
            self.fail(key, f"{value!r} is not one of the pick list's values {choices}")
        return str(value)

    def round_trip(self, key: Key, values: ValueMap) -> None:
        """Every Exchange value written to the CRM must read back as itself.

        Otherwise the next pass finds the CRM changed and writes the other value to Exchange:
        the user's value is replaced behind their back, one pass later.
        """
        for choice in values.choices:
            written = values.crm_value(choice)
            back = values.from_crm(written)
            if back != choice:
                part = "to_crm" if choice in values.to_crm else "to_exchange"
                where = (*key, part, choice if part == "to_crm" else crm_spelling(str(written)))
                self.fail(
                    where,
                    f"the Exchange value {choice!r} is written to the CRM as {written!r}, "
                    f"which reads back as {back!r}; each Exchange value must read back as "
                    "itself (to_exchange must undo to_crm)",
                )


def _shared_properties(entity_map: EntityMap) -> dict[str, list[str]]:
    """{model property: the fields written into it} for properties of more than one field."""
    written: dict[str, list[str]] = {}
    for spec in entity_map.specs:
        for prop in spec.model_fields:
            written.setdefault(prop, []).append(spec.name)
    return {prop: names for prop, names in written.items() if len(names) > 1}


# -- where a key stands in the text (tomllib gives values, not positions) ----------------------

_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_ASSIGNMENT = re.compile(rf"^\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=")
_PART = re.compile(r"""[A-Za-z0-9_-]+|"((?:[^"\\]|\\.)*)"|'([^']*)'""")


def key_lines(text: str) -> dict[Key, int]:
    """{dotted key path: line number} of every table header and key/value line of `text`.

    A line-based reading, good enough for naming a line: keys inside an inline table take the
    line of the table's key (see `line_of`), and lines inside a multi-line string are skipped.
    """
    found: dict[Key, int] = {}
    table: Key = ()
    in_string: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_string is not None:
            if line.count(in_string) % 2 == 1:
                in_string = None
            continue
        header = _HEADER.match(line)
        if header:
            table = _split(header.group(1))
            for size in range(1, len(table) + 1):
                found.setdefault(table[:size], number)
            continue
        assignment = _ASSIGNMENT.match(line)
        if assignment:
            path = (*table, *_split(assignment.group(1)))
            for size in range(len(table) + 1, len(path) + 1):
                found.setdefault(path[:size], number)
            rest = line[assignment.end() :]
            for quotes in ('"""', "'''"):
                if rest.count(quotes) % 2 == 1:
                    in_string = quotes
    return found


def line_of(lines: Mapping[Key, int], key: Key) -> int:
    """The line of `key`, else of its nearest enclosing key found, else 1."""
    for size in range(len(key), 0, -1):
        if key[:size] in lines:
            return lines[key[:size]]
    return 1


def _split(dotted: str) -> Key:
    parts = []
    for match in _PART.finditer(dotted):
        quoted = match.group(1) if match.group(1) is not None else match.group(2)
        parts.append(match.group(0) if quoted is None else quoted)
    return tuple(parts)
