"""The operator's field map: the file's checks, value maps both ways, and map changes that
leave the other fields and the other side alone."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ews_client.models import Appointment, ItemRef, Sensitivity, TaskStatus
from sync_service.planning import (
    APPOINTMENTS,
    CONTACTS,
    MAPS,
    TASKS,
    ConflictPolicy,
    CrmAppointment,
    CrmTask,
    Direction,
    Link,
    PassKind,
    Plan,
    Policy,
    Update,
    bind,
    new_item,
    new_record,
    plan,
    snapshot_crm,
    snapshot_exchange,
    updated_record,
)
from sync_service.planning import field_map as fm
from sync_service.planning.map_change import rebase

from .world import World

DEFAULT_FILE = Path(__file__).parents[2] / "deploy" / "field-map.toml"
REF = ItemRef("i1", "k1")
SWAPPED = """
[calendar.sensitivity]
to_exchange = { confidential = "private", private = "confidential" }
to_crm = { private = "confidential", confidential = "private" }
"""


def test_the_default_file_is_the_built_in_mapping() -> None:
    loaded = fm.parse(DEFAULT_FILE.read_text(), str(DEFAULT_FILE))
    assert loaded.rules == fm.BUILT_IN.rules
    for entity_map in MAPS.values():
        for direction in Direction:
            assert loaded.bind(entity_map, direction) == bind(entity_map, direction)
    named = {name for rules in fm.key_lines(DEFAULT_FILE.read_text()) for name in rules[:2]}
    every = {spec.name for entity_map in MAPS.values() for spec in entity_map.specs}
    assert every <= named, "the default file names every field"


def test_a_file_names_only_what_it_changes() -> None:
    loaded = fm.parse('[contacts.notes]\ndirection = "off"\n', "map.toml")
    assert "notes" not in {spec.name for spec in loaded.bind(CONTACTS, Direction.TWO_WAY).specs}
    assert loaded.rules[TASKS.entity] == fm.BUILT_IN.rules[TASKS.entity]
    assert fm.parse("", "empty.toml").rules == fm.BUILT_IN.rules
    names = '[contacts.first_name]\ndirection = "off"\n[contacts.last_name]\ndirection = "off"'
    assert fm.parse(names, "names.toml").rules[CONTACTS.entity]["last_name"].direction == "off"


BAD = [
    ('[contact.notes]\ndirection = "off"\n', 1, "contact", "unknown entity"),
    ('# map\n\n[contacts.nickname]\ndirection = "off"\n', 3, "contacts.nickname", "unknown field"),
    ('[tasks]\nsubject = "off"\n', 2, "tasks.subject", "must be a table"),
    ('[tasks.subject]\ndirection = "off"\nvalues = 1\n', 3, "tasks.subject.values", "unknown key"),
    ('[tasks.subject]\n\ndefault = "x"\n', 3, "tasks.subject.default", "not a pick list"),
    (
        '[calendar.notes]\ndirection = "sideways"\n',
        2,
        "calendar.notes.direction",
        "'sideways' is not a direction",
    ),
    ("[tasks.status]\ndirection = 2\n", 2, "tasks.status.direction", "is not a direction"),
    (
        '[tasks.status]\ndefault = "open"\n',
        2,
        "tasks.status.default",
        "'open' is not one of the pick list's values",
    ),
    (
        '[tasks.status.to_exchange]\nopen = "not_started"\n"Waiting" = "later"\n',
        3,
        "tasks.status.to_exchange.Waiting",
        "'later' is not one of",
    ),
    (
        '[tasks.status]\nto_exchange = { open = "completed", "OPEN " = "completed" }\n',
        2,
        "tasks.status.to_exchange.OPEN ",
        "listed twice",
    ),
    (
        '[tasks.status]\nto_crm = { completed = "deferred" }\n',
        2,
        "tasks.status.to_crm.completed",
        "reads back as 'deferred'",
    ),
    (
        '[calendar.sensitivity]\nto_exchange = { confidential = "private" }\n',
        2,
        "calendar.sensitivity.to_exchange.confidential",
        "the Exchange value 'confidential' is written to the CRM as 'confidential'",
    ),
    ('[tasks.status]\ndirection = "off"\ndirection = "two_way"\n', 3, "", "not TOML"),
    (
        '[contacts.street]\ndirection = "off"\n[contacts.city]\ndirection = "off"\n',
        2,
        "contacts.street.direction",
        "written to Exchange with state, postal_code, country as one property (business_address)",
    ),
    (
        '[contacts.last_name]\ndirection = "off"\n',
        2,
        "contacts.last_name.direction",
        "turn first_name, last_name off together",
    ),
]


@pytest.mark.parametrize(("text", "line", "key", "said"), BAD)
def test_a_bad_file_is_refused_naming_its_line_and_key(
    text: str, line: int, key: str, said: str
) -> None:
    with pytest.raises(fm.FieldMapError) as caught:
        fm.parse(text, "/etc/sync/field-map.toml")
    error = caught.value
    assert (error.line, error.key) == (line, key)
    assert said in error.message
    where = f"/etc/sync/field-map.toml: line {line}" + (f": {key}" if key else "")
    assert str(error).startswith(where + ": ")


def test_key_lines_reads_headers_dotted_quoted_and_inline_keys() -> None:
    text = (
        '[tasks.status]\nnotes = """\n[not.a.header]\nx = 1\n"""\n'
        "to_exchange = { a = 1 }\n"
        "'quoted key'.inner = 2\n"
        '[ "calendar" . sensitivity ]  # comment\n'
    )
    lines = fm.key_lines(text)
    assert lines[("tasks", "status")] == 1
    assert ("not", "a", "header") not in lines and ("tasks", "status", "x") not in lines
    assert fm.line_of(lines, ("tasks", "status", "to_exchange", "a")) == 6
    assert lines[("tasks", "status", "quoted key", "inner")] == 7
    assert lines[("calendar", "sensitivity")] == 8
    assert fm.line_of(lines, ("nowhere",)) == 1


def test_a_pick_list_value_maps_both_ways() -> None:
    binding = fm.parse(SWAPPED, "map.toml").bind(APPOINTMENTS, Direction.TWO_WAY)
    record = CrmAppointment(id="c1", owner_id="o", sensitivity=Sensitivity.CONFIDENTIAL)
    crm = snapshot_crm(binding, record)
    assert crm.fields["sensitivity"] == "private"  # CRM confidential is Exchange private
    assert new_item(binding, crm.fields, "c1").sensitivity == Sensitivity.PRIVATE
    item = replace(Appointment(sensitivity=Sensitivity.PRIVATE), ref=REF)
    fields = snapshot_exchange(binding, item).fields
    assert new_record(binding, fields, "c2", "o").sensitivity == Sensitivity.CONFIDENTIAL
    changed = updated_record(
        binding, record, {**crm.fields, "sensitivity": "confidential"}, ["sensitivity"]
    )
    assert changed.sensitivity == Sensitivity.PRIVATE
    assert snapshot_crm(binding, changed).fields["sensitivity"] == "confidential"


def test_unmapped_crm_values_take_the_default() -> None:
    text = (
        '[tasks.status]\ndefault = "deferred"\nto_exchange = { "on hold" = "waiting_on_others" }\n'
    )
    binding = fm.parse(text, "map.toml").bind(TASKS, Direction.TWO_WAY)

    def read(status: object) -> object:
        record = CrmTask(id="t", owner_id="o", status=status)  # type: ignore[arg-type]
        return snapshot_crm(binding, record).fields["status"]

    assert read(" On   HOLD ") == "waiting_on_others"
    assert read("in progress") == "in_progress"  # one of Exchange's values, spelled loosely
    assert read("open") == "deferred"  # the built-in alias is replaced by the file's table
    assert read(TaskStatus.COMPLETED) == "completed"


def test_the_built_in_spellings_are_kept() -> None:
    binding = bind(TASKS)
    record = CrmTask(id="t", owner_id="o", status="Done", importance="urgent")  # type: ignore[arg-type]
    assert snapshot_crm(binding, record).fields["status"] == "completed"
    assert snapshot_crm(binding, record).fields["importance"] == "high"
    with pytest.raises(ValueError, match="not pick lists"):
        bind(TASKS, values={"subject": TASKS.specs[5].values})  # type: ignore[dict-item]


def test_describe_is_the_map_in_effect() -> None:
    described = fm.parse(SWAPPED + '[contacts.notes]\ndirection = "off"\n', "m.toml").describe()
    assert described["source"] == "m.toml"
    assert described["entities"]["contacts"]["notes"] == {"enabled": False, "direction": "off"}
    assert described["entities"]["contacts"]["city"] == {"enabled": True, "direction": "two_way"}
    values = described["entities"]["calendar"]["sensitivity"]["values"]
    assert values["to_crm"] == {"private": "confidential", "confidential": "private"}
    assert values["default"] == "normal" and "personal" in values["choices"]
    assert set(described["entities"]) == {"contacts", "calendar", "tasks"}


# -- changing the map --------------------------------------------------------------------------

NOTES_OFF = fm.parse('[tasks.notes]\ndirection = "off"\n', "off.toml")


def _plan(world: World, kind: PassKind, policy: ConflictPolicy) -> Plan:
    """A pass as the planner sees it when it reads the rows over the binding's fields."""
    rows = rebase(world.binding, world.links.values())
    if kind == PassKind.EXPRESS:
        crm_ids, ex_ids = set(world.crm_log[world.crm_mark :]), set(world.ex_log[world.ex_mark :])
    else:
        crm_ids, ex_ids = set(world.crm), set(world.ex)
    by_item = {row.exchange_id: row for row in world.links.values()}
    return plan(
        world.binding,
        [snapshot_crm(world.binding, world.crm[i]) for i in crm_ids],
        [snapshot_exchange(world.binding, world.ex[i], by_item.get(i)) for i in ex_ids],
        rows,
        kind=kind,
        policy=policy,
        force=True,
    )


def _notes(world: World) -> tuple[list[object], list[object]]:
    crm = [world.crm[f"crm{n}"].notes for n in range(4)]
    ex = [world.ex[world.links[f"crm{n}"].exchange_id].notes for n in range(4)]
    return crm, ex


def _off_world() -> World:
    """Four linked tasks synced with notes off (each side's notes as the test left them)."""
    world = World(NOTES_OFF.bind(TASKS, Direction.TWO_WAY))
    for n, (crm_notes, ex_notes) in enumerate([("a", "a"), ("b", None), (None, "c"), (None, None)]):
        crm_id = f"crm{n}"
        world.crm_put(crm_id, {"subject": f"Task {n}"})
        world.crm[crm_id] = replace(world.crm[crm_id], notes=crm_notes)
        world.sync(PassKind.COMPLETE, ConflictPolicy())
        item_id = world.links[crm_id].exchange_id
        if ex_notes is not None:
            world._ex_store(item_id, replace(world.ex[item_id], notes=ex_notes))
    world.crm_mark, world.ex_mark = len(world.crm_log), len(world.ex_log)
    return world


@pytest.mark.parametrize("policy", [ConflictPolicy(), ConflictPolicy(Policy.EXCHANGE_WINS)])
def test_a_field_turned_off_is_left_alone_on_both_sides(policy: ConflictPolicy) -> None:
    world = World(bind(TASKS))
    for n in range(3):
        world.crm_put(f"crm{n}", {"subject": f"Task {n}", "notes": f"notes {n}"})
    world.sync(PassKind.COMPLETE, ConflictPolicy())
    world.crm_mark, world.ex_mark = len(world.crm_log), len(world.ex_log)
    world.binding = NOTES_OFF.bind(TASKS, Direction.TWO_WAY)
    assert _plan(world, PassKind.COMPLETE, policy).actions == ()
    # Notes edited on both sides while off, the subject of one item edited in Outlook.
    world.crm["crm0"] = replace(world.crm["crm0"], notes="crm only")
    world.crm_log.append("crm0")
    item = world.links["crm1"].exchange_id
    world._ex_store(item, replace(world.ex[item], notes="outlook only", subject="Renamed"))
    for kind in (PassKind.EXPRESS, PassKind.COMPLETE):
        result = _plan(world, kind, policy)
        updates = [a for a in result.actions if isinstance(a, Update)]
        assert [(u.crm_id, u.crm_changes, u.exchange_changes) for u in updates] == [
            ("crm1", frozenset({"subject"}), frozenset())
        ]
        assert all(isinstance(a, Link) for a in result.actions if a not in updates)
    world.apply(_plan(world, PassKind.COMPLETE, policy))
    item0 = world.ex[world.links["crm0"].exchange_id]
    assert (world.crm["crm0"].notes, item0.notes) == ("crm only", "notes 0")
    assert (world.crm["crm1"].notes, world.ex[item].notes) == ("notes 1", "outlook only")
    assert world.crm["crm1"].subject == "Renamed"
    assert _plan(world, PassKind.COMPLETE, policy).actions == ()


def test_a_field_turned_on_is_reconciled_by_the_complete_pass_and_nothing_else() -> None:
    world = _off_world()
    world.binding = bind(TASKS)
    assert _plan(world, PassKind.EXPRESS, ConflictPolicy()).actions == ()
    result = _plan(world, PassKind.COMPLETE, ConflictPolicy())
    updates = {a.crm_id: a for a in result.actions if isinstance(a, Update)}
    assert set(updates) == {"crm1", "crm2"}
    assert updates["crm1"].exchange_changes == {"notes"} and not updates["crm1"].crm_changes
    assert updates["crm2"].crm_changes == {"notes"} and not updates["crm2"].exchange_changes
    assert {a.row.crm_id for a in result.actions if isinstance(a, Link)} == {"crm0"}
    world.apply(result)
    assert _notes(world) == (["a", "b", "c", None], ["a", "b", "c", None])
    assert _plan(world, PassKind.COMPLETE, ConflictPolicy()).actions == ()


def test_a_field_turned_on_with_two_values_is_a_conflict_for_the_policy() -> None:
    world = _off_world()
    item = world.links["crm0"].exchange_id
    world._ex_store(item, replace(world.ex[item], notes="other"))
    world.binding = bind(TASKS)
    actions = _plan(world, PassKind.COMPLETE, ConflictPolicy()).actions
    [update] = [a for a in actions if isinstance(a, Update) and a.crm_id == "crm0"]
    assert update.conflict is not None and update.conflict.fields == {"notes"}
    assert update.exchange_changes == {"notes"} and update.target["notes"] == "a"


def test_rows_over_the_binding_fields_are_returned_as_they_are() -> None:
    world = _off_world()
    rows = list(world.links.values())
    assert all(a is b for a, b in zip(rebase(world.binding, rows), rows, strict=True))
    turned_on = rebase(bind(TASKS), rows)
    assert all("notes" not in row.fields for row in turned_on)
    assert all(
        row.crm_hash == row.exchange_hash != old.crm_hash
        for row, old in zip(turned_on, rows, strict=True)
    )
