"""Sync filters (planning/filters.py): what each filter admits, what `apply` hands the planner,
and a Hypothesis property over random edits and passes: no plan deletes, creates or updates an
item outside the filter, so a private item never reaches the other side."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ews_client.models import Appointment, Contact, ItemRef, Recurrence, Sensitivity, Task
from sync_service.planning import (
    APPOINTMENTS,
    CONTACTS,
    Binding,
    ConflictPolicy,
    CreateCrm,
    CreateExchange,
    DeleteCrm,
    DeleteExchange,
    Direction,
    PassKind,
    Plan,
    SyncedRow,
    Update,
    bind,
    plan,
    referenced_crm_ids,
    snapshot_crm,
    snapshot_exchange,
)
from sync_service.planning.filter_pairs import adopt
from sync_service.planning.filter_settings import check_setting, effective, parse_range
from sync_service.planning.filters import CalendarRange, Filter, FilterError, Screened, apply
from sync_service.planning.records import CrmAppointment, CrmContact, CrmTask

from .world import World

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
CRM_ONLY = Filter(categories=("CRM",))
NO_PRIVATE = Filter(exclude_private=True)
MONTH_YEAR = Filter(calendar_range=CalendarRange(timedelta(days=30), timedelta(days=365)))
BLOCKED = Filter(block=("example.org", "bob@corp.test"))


def _at(days: float, **kw: Any) -> Appointment:
    start = NOW + timedelta(days=days)
    return Appointment(subject="s", start=start, end=start + timedelta(hours=1), **kw)


# -- what each filter admits ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "side", "admitted"),
    [
        (Filter(), _at(-1000, sensitivity=Sensitivity.PRIVATE), True),
        (CRM_ONLY, Contact(categories=("crm", "Other")), True),
        (CRM_ONLY, Contact(categories=("Other",)), False),
        (CRM_ONLY, CrmTask("t", "o", categories=()), False),
        (CRM_ONLY, Task(categories=("CRM",)), True),
        (NO_PRIVATE, _at(0, sensitivity=Sensitivity.PRIVATE), False),
        (NO_PRIVATE, _at(0, sensitivity=Sensitivity.CONFIDENTIAL), True),
        (NO_PRIVATE, CrmAppointment("a", "o", sensitivity=Sensitivity.PRIVATE), False),
        (NO_PRIVATE, CrmAppointment("a", "o"), True),
        (MONTH_YEAR, _at(-29), True),
        (MONTH_YEAR, _at(-31), False),
        (MONTH_YEAR, _at(364), True),
        (MONTH_YEAR, _at(366), False),
        (MONTH_YEAR, Appointment(subject="no time"), True),
        # A series from long ago that never ends, one that ended before the window, one that
        # runs a number of times (not expanded: kept).
        (MONTH_YEAR, _at(-800, recurrence=Recurrence("weekly", days_of_week=("monday",))), True),
        (
            MONTH_YEAR,
            _at(-800, recurrence=Recurrence("daily", end_date=date(2025, 1, 1))),
            False,
        ),
        (MONTH_YEAR, _at(-800, recurrence=Recurrence("daily", occurrences=3)), True),
        (BLOCKED, Contact(emails=("ann@mail.example.org",)), False),
        (BLOCKED, Contact(emails=("ann@example.com", "Bob@Corp.test")), False),
        (BLOCKED, Contact(emails=("ann@corp.test",)), True),
        (BLOCKED, CrmContact("c", "o", email2="x@EXAMPLE.org"), False),
        (BLOCKED, CrmContact("c", "o", email="x@notexample.org"), True),
        (BLOCKED, Task(), True),
    ],
)
def test_admits(spec: Filter, side: Any, admitted: bool) -> None:
    assert spec.admits(side, NOW) is admitted


def test_settings_are_checked_by_key_and_merged_key_by_key() -> None:
    server = check_setting(
        {"categories": "CRM, Clients", "exclude_private": True, "calendar_range": "-30d:+365d"}
    )
    assert server == {
        "categories": ["CRM", "Clients"],
        "exclude_private": True,
        "calendar_range": "-30d:+365d",
    }
    mine = effective(server, {"categories": [], "block": ["Example.org"]})
    assert mine == Filter(
        exclude_private=True, calendar_range=parse_range("-30d:+365d"), block=("example.org",)
    )
    assert mine.setting()["calendar_range"] == "-30d:+365d"
    assert not effective({}, {}).active
    for bad, key in (
        ({"colour": 1}, "colour"),
        ({"calendar_range": "30d"}, "calendar_range"),
        ({"calendar_range": "-1d:+99999d"}, "calendar_range"),
        ({"block": ["not a domain"]}, "block"),
        ({"block": ["@example.org"]}, "block"),
        ({"categories": [""]}, "categories"),
        ({"categories": [1]}, "categories"),
        ({"exclude_private": "yes"}, "exclude_private"),
    ):
        with pytest.raises(FilterError) as caught:
            check_setting(bad)
        assert caught.value.field == key, bad


# -- apply: the table ---------------------------------------------------------------------------

BINDING = bind(APPOINTMENTS, Direction.TWO_WAY)
BASE = {"subject": "Review", "start": "2026-06-02T09:00:00Z", "end": "2026-06-02T10:00:00Z"}


def _world(binding: Binding = BINDING, **fields: Any) -> World:
    """One appointment synced: crm1 <-> its item, both in the category CRM."""
    world = World(binding)
    world.crm_put("crm1", {**BASE, "categories": ["CRM"], **fields})
    world.sync(PassKind.COMPLETE, ConflictPolicy())
    assert len(world.links) == 1
    return world


def _edit_crm(world: World, **changes: Any) -> None:
    current = snapshot_crm(world.binding, world.crm["crm1"]).fields
    world.crm_put("crm1", {**current, **changes})


def _item_id(world: World) -> str:
    return next(iter(world.ex))


def _edit_item(world: World, **changes: Any) -> None:
    item = world.ex[_item_id(world)]
    current = snapshot_exchange(world.binding, item).fields
    world.ex_put(_item_id(world), {**current, **changes}, item.crm_id)


def filtered_pass(world: World, spec: Filter, parked: dict[str, SyncedRow], kind: PassKind) -> Plan:
    """One pass through the filter as MailboxPass makes it: read, screen (an express pass
    that would create something reads in full instead), park, plan, apply."""
    marks = len(world.crm_log), len(world.ex_log)
    screened, deleted_crm, deleted_ex = _screen(world, spec, parked, kind)
    if kind == PassKind.EXPRESS and (screened.unmatched_crm or screened.unmatched_exchange):
        kind = PassKind.COMPLETE
        screened, deleted_crm, deleted_ex = _screen(world, spec, parked, kind)
    for row in screened.leaving:
        parked[row.crm_id] = world.links.pop(row.crm_id)
    for row in screened.entering:
        world.links[row.crm_id] = parked.pop(row.crm_id)
    for row in screened.forgotten:
        del parked[row.crm_id]
    by_item = {row.exchange_id: row for row in screened.links}
    result = plan(
        world.binding,
        [snapshot_crm(world.binding, r) for r in screened.crm.values()],
        [snapshot_exchange(world.binding, i, by_item.get(_ref(i).id)) for i in screened.exchange],
        screened.links,
        kind=kind,
        deleted_crm=deleted_crm,
        deleted_exchange=deleted_ex,
        force=True,
    )
    result = adopt(world.binding, result, screened)
    outside = _outside(world, spec, result)
    assert not outside, outside
    world.apply(result)
    world.crm_mark, world.ex_mark = marks
    return result


def _screen(
    world: World, spec: Filter, parked: dict[str, SyncedRow], kind: PassKind
) -> tuple[Screened, set[str], set[str]]:
    full = kind != PassKind.EXPRESS
    if full:
        crm, items = dict(world.crm), list(world.ex.values())
        deleted_crm: set[str] = set(world.tombstones)
        deleted_ex: set[str] = set()
    else:
        crm_ids = set(world.crm_log[world.crm_mark :])
        ex_ids = set(world.ex_log[world.ex_mark :])
        items = [world.ex[i] for i in sorted(ex_ids) if i in world.ex]
        snaps = [snapshot_exchange(world.binding, i) for i in items]
        crm_ids |= referenced_crm_ids(snaps, world.links.values())
        crm = {i: world.crm[i] for i in sorted(crm_ids) if i in world.crm}
        deleted_crm = {i for i in crm_ids if i in world.tombstones and i not in world.crm}
        deleted_ex = {i for i in ex_ids if i not in world.ex}
    screened = apply(
        spec,
        crm,
        items,
        list(world.links.values()),
        list(parked.values()),
        full=full,
        now=NOW,
        deleted_crm=deleted_crm,
        deleted_exchange=deleted_ex,
        binding=world.binding,
    )
    return screened, deleted_crm, deleted_ex


def _ref(item: Any) -> ItemRef:
    assert item.ref is not None
    return item.ref


def _outside(world: World, spec: Filter, result: Plan) -> list[str]:
    """Actions of the plan that delete an item out of the filter or create from one, update a
    linked pair with a side out of it, or pair a barred item (private, blocked)."""

    def out_crm(crm_id: str) -> bool:
        record = world.crm.get(crm_id)
        return record is not None and not _admits(spec, record)

    def out_ex(item_id: str) -> bool:
        item = world.ex.get(item_id)
        return item is not None and not _admits(spec, item)

    def pair_out(crm_id: str, item_id: str) -> bool:
        record, item = world.crm.get(crm_id), world.ex.get(item_id)
        if any(s is not None and not _apart(spec, s) for s in (record, item)):
            return True
        written = [s.direction for s in world.binding.specs if s.name == "categories"]
        judged = {Direction.TWO_WAY: (record, item), Direction.CRM_TO_EXCHANGE: (record,)}.get(
            written[0] if written else Direction.OFF, (item,)
        )
        if not written:
            return not any(s is not None and _categorized(spec, s) for s in (record, item))
        return any(s is not None and not _categorized(spec, s) for s in judged)

    def barred(crm_id: str, item_id: str) -> bool:
        sides = (world.crm.get(crm_id), world.ex.get(item_id))
        return any(side is not None and _barred(spec, side) for side in sides)

    found = []
    for action in result.actions:
        match action:
            case DeleteExchange() if out_ex(action.ref.id) or out_crm(action.crm_id):
                found.append(f"deletes item {action.ref.id}")
            case DeleteCrm() if out_crm(action.crm_id) or out_ex(action.exchange_id):
                found.append(f"deletes record {action.crm_id}")
            case CreateExchange() if out_crm(action.crm_id):
                found.append(f"creates an item from {action.crm_id}")
            case CreateCrm() if out_ex(action.source.id):
                found.append(f"creates a record from {action.source.id}")
            case Update() if action.intent is not None and pair_out(action.crm_id, action.ref.id):
                found.append(f"updates {action.crm_id} / {action.ref.id}")
            case Update() if barred(action.crm_id, action.ref.id):
                found.append(f"pairs {action.crm_id} / {action.ref.id}, one of them barred")
    return found


# The filter's rules restated on their own, for the property's checks.
def _admits(spec: Filter, side: Any) -> bool:
    return _categorized(spec, side) and _apart(spec, side)


def _categorized(spec: Filter, side: Any) -> bool:
    wanted = {c.lower() for c in spec.categories}
    return not wanted or bool(wanted & {c.lower() for c in side.categories})


def _apart(spec: Filter, side: Any) -> bool:
    if _barred(spec, side):
        return False
    if spec.calendar_range is None or not isinstance(side, CrmAppointment | Appointment):
        return True
    start, end = (side.start, side.end) if isinstance(side, Appointment) else (
        side.starts_at, side.ends_at)  # fmt: skip
    first, last = NOW - spec.calendar_range.back, NOW + spec.calendar_range.ahead
    return start is None or (start <= last and (end or start) >= first)


def _barred(spec: Filter, side: Any) -> bool:
    if isinstance(side, CrmAppointment | Appointment):
        return spec.exclude_private and side.sensitivity == Sensitivity.PRIVATE
    if not isinstance(side, CrmContact | Contact):
        return False
    own = side.emails if isinstance(side, Contact) else (side.email, side.email2, side.email3)
    addresses = [a.lower() for a in own if a]
    return any(
        a == b or a.endswith(f"@{b}") or a.endswith(f".{b}") for a in addresses for b in spec.block
    )


@pytest.mark.parametrize("kind", [PassKind.EXPRESS, PassKind.COMPLETE])
def test_an_item_that_loses_the_category_leaves_without_a_deletion(kind: PassKind) -> None:
    world, parked = _world(), {}
    _edit_item(world, categories=["Other"], location="Room 9")
    result = filtered_pass(world, CRM_ONLY, parked, kind)
    assert result.actions == ()
    assert list(parked) == ["crm1"] and world.links == {}
    assert len(world.crm) == 1 and len(world.ex) == 1
    # Edits on both sides while out: nothing is written, nothing duplicated, by any pass.
    _edit_crm(world, location="Room 1")
    for again in (PassKind.EXPRESS, PassKind.COMPLETE, PassKind.INITIAL):
        assert filtered_pass(world, CRM_ONLY, parked, again).actions == ()
    assert len(world.crm) == 1 and len(world.ex) == 1
    # The category back in Outlook: the pair comes back, reconciled as a linked pair.
    _edit_item(world, categories=["CRM"])
    filtered_pass(world, CRM_ONLY, parked, PassKind.COMPLETE)
    assert parked == {} and list(world.links) == ["crm1"]
    assert len(world.crm) == 1 and len(world.ex) == 1
    assert filtered_pass(world, CRM_ONLY, parked, PassKind.COMPLETE).actions == ()


@pytest.mark.parametrize(
    ("categories", "edit", "leaves"),
    [
        # Not synced: the item created from the record has no category; the pair stays until
        # neither side has it.
        (Direction.OFF, None, False),
        (Direction.OFF, "crm", True),
        # One way: only the source's categories count (the other side is overwritten).
        (Direction.CRM_TO_EXCHANGE, "item", False),
        (Direction.CRM_TO_EXCHANGE, "crm", True),
        (Direction.EXCHANGE_TO_CRM, "crm", False),
        (Direction.EXCHANGE_TO_CRM, "item", True),
    ],
)
def test_a_pair_is_judged_by_the_categories_the_sync_writes(
    categories: Direction, edit: str | None, leaves: bool
) -> None:
    world, parked = World(bind(APPOINTMENTS, overrides={"categories": categories})), {}
    # Categories set on the sides themselves: a binding without them cannot write them.
    world.crm_put("crm1", BASE)
    world.crm["crm1"] = replace(world.crm["crm1"], categories=("CRM",))
    world.sync(PassKind.COMPLETE, ConflictPolicy())
    item_id = _item_id(world)
    world.ex[item_id] = replace(world.ex[item_id], categories=("CRM",))
    if categories == Direction.OFF:
        world.ex[item_id] = replace(world.ex[item_id], categories=())
    if edit == "crm":
        world.crm_put("crm1", {**BASE, "location": "Hall"})  # and no category
    elif edit == "item":
        world.ex_put(item_id, {**BASE, "location": "Hall"}, world.ex[item_id].crm_id)
    for kind in (PassKind.EXPRESS, PassKind.COMPLETE):
        filtered_pass(world, CRM_ONLY, parked, kind)
    assert (list(parked), list(world.links)) == ((["crm1"], []) if leaves else ([], ["crm1"]))
    assert len(world.crm) == 1 and len(world.ex) == 1


def test_a_parked_item_read_under_a_new_id_comes_back_pointing_at_it() -> None:
    world, parked = _world(), {}
    _edit_item(world, categories=["Other"])
    filtered_pass(world, CRM_ONLY, parked, PassKind.COMPLETE)
    # The mailbox moves: its item comes back under another id, still carrying the CRM id.
    old = _item_id(world)
    world.ex["moved1"] = replace(world.ex.pop(old), ref=ItemRef("moved1", "ck-moved"))
    assert filtered_pass(world, CRM_ONLY, parked, PassKind.COMPLETE).actions == ()
    _edit_item(world, categories=["CRM"])
    result = filtered_pass(world, CRM_ONLY, parked, PassKind.COMPLETE)
    assert not [a for a in result.actions if isinstance(a, DeleteCrm | DeleteExchange)]
    assert parked == {} and world.links["crm1"].exchange_id == "moved1"
    assert len(world.crm) == 1 and list(world.ex) == ["moved1"]


def test_a_record_deleted_while_out_deletes_nothing_and_is_forgotten_with_its_item() -> None:
    world, parked = _world(), {}
    _edit_crm(world, categories=[])
    filtered_pass(world, CRM_ONLY, parked, PassKind.EXPRESS)
    world.crm_delete("crm1")
    for kind in (PassKind.EXPRESS, PassKind.COMPLETE):
        assert filtered_pass(world, CRM_ONLY, parked, kind).actions == ()
    assert len(world.ex) == 1 and list(parked) == ["crm1"]
    world.ex_delete(_item_id(world))
    filtered_pass(world, CRM_ONLY, parked, PassKind.COMPLETE)
    assert parked == {}


def test_a_private_record_never_reaches_exchange() -> None:
    world, parked = World(BINDING), {}
    world.crm_put("crm1", {**BASE, "sensitivity": "private"})
    world.crm_put("crm2", {**BASE, "subject": "Open"})
    filtered_pass(world, NO_PRIVATE, parked, PassKind.INITIAL)
    assert [i.subject for i in world.ex.values()] == ["Open"]
    # An item made private in Outlook leaves; its record is not deleted, nor updated.
    _edit_item(world, sensitivity="private", subject="Secret")
    assert filtered_pass(world, NO_PRIVATE, parked, PassKind.EXPRESS).actions == ()
    assert sorted(r.subject or "" for r in world.crm.values()) == ["Open", "Review"]


def test_an_unlinked_item_naming_a_record_out_of_the_filter_is_kept_out() -> None:
    record = CrmContact("crm1", "o", last_name="Lee", categories=())
    item = Contact(surname="Lee", categories=("CRM",), ref=ItemRef("x1", "k"), crm_id="crm1")
    screened = apply(CRM_ONLY, {"crm1": record}, [item], [], full=True, now=NOW)
    assert screened.crm == {} and screened.exchange == []
    # And the other way round: a record whose copy in Outlook is out stays out.
    record, item = replace(record, categories=("CRM",)), replace(item, categories=())
    screened = apply(CRM_ONLY, {"crm1": record}, [item], [], full=True, now=NOW)
    assert screened.crm == {} and screened.exchange == []


def test_a_deletion_inside_the_filter_is_still_planned() -> None:
    world, parked = _world(), {}
    world.ex_delete(_item_id(world))
    result = filtered_pass(world, CRM_ONLY, parked, PassKind.COMPLETE)
    assert [type(a) for a in result.actions] == [DeleteCrm]


@pytest.mark.parametrize("kind", [PassKind.EXPRESS, PassKind.COMPLETE, PassKind.INITIAL])
def test_an_item_entering_the_filter_pairs_with_its_counterpart_outside_it(
    kind: PassKind,
) -> None:
    world, parked = World(BINDING), {}
    world.crm_put("crm1", {**BASE, "categories": []})
    world.ex_put("item1", {**BASE, "categories": ["Personal"], "location": "Home"}, None)
    assert filtered_pass(world, CRM_ONLY, parked, PassKind.INITIAL).actions == ()
    # The CRM record is given the category: it enters, and pairs with the item (no second
    # item), which the conflict policy (the CRM wins) brings into the filter too.
    _edit_crm(world, categories=["CRM"])
    filtered_pass(world, CRM_ONLY, parked, kind)
    assert list(world.ex) == ["item1"] and list(world.crm) == ["crm1"]
    assert list(world.links) == ["crm1"]
    assert world.ex["item1"].categories == ("CRM",)
    assert filtered_pass(world, CRM_ONLY, parked, PassKind.COMPLETE).actions == ()


@pytest.mark.parametrize("kind", [PassKind.EXPRESS, PassKind.COMPLETE])
def test_the_category_that_made_an_item_enter_is_kept_on_both_sides(kind: PassKind) -> None:
    world, parked = World(BINDING), {}
    world.crm_put("crm1", {**BASE, "categories": ["Red"], "location": "Hall"})
    world.ex_put("item1", {**BASE, "categories": []}, None)
    filtered_pass(world, CRM_ONLY, parked, PassKind.INITIAL)
    # The Outlook item is given the category; the CRM's record wins the conflict, yet keeps it.
    _edit_item(world, categories=["crm"])
    result = filtered_pass(world, CRM_ONLY, parked, kind)
    assert [type(a) for a in result.actions] == [Update]
    assert world.crm["crm1"].categories == ("crm", "Red")
    assert world.ex["item1"].categories == ("crm", "Red")
    assert world.ex["item1"].crm_id == "crm1"  # stamped, as items paired by matching are
    assert list(world.links) == ["crm1"]
    assert filtered_pass(world, CRM_ONLY, parked, PassKind.COMPLETE).actions == ()


def test_a_barred_item_never_pairs() -> None:
    world, parked = World(BINDING), {}
    world.ex_put("item1", {**BASE, "sensitivity": "private"}, None)
    world.crm_put("crm1", BASE)
    filtered_pass(world, NO_PRIVATE, parked, PassKind.COMPLETE)
    private = [i for i in world.ex.values() if i.sensitivity == Sensitivity.PRIVATE]
    assert len(world.ex) == 2 and len(private) == 1 and len(world.crm) == 1


def test_an_express_read_with_something_to_create_asks_for_a_full_read() -> None:
    record = CrmContact("crm1", "o", last_name="Lee", categories=("CRM",))
    screened = apply(CRM_ONLY, {"crm1": record}, [], [], full=False, now=NOW)
    assert screened.unmatched_crm == {"crm1"} and screened.unmatched_exchange == set()
    item = Contact(surname="Lee", categories=("CRM",), ref=ItemRef("x1", "k"), crm_id="crm1")
    screened = apply(CRM_ONLY, {"crm1": record}, [item], [], full=False, now=NOW)
    assert (screened.unmatched_crm, screened.unmatched_exchange) == (set(), set())


# -- the property -------------------------------------------------------------------------------

FAR = (NOW + timedelta(days=500)).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Profile:
    """An entity's random world: its base fields and what each toggle sets (on, off)."""

    binding: Binding
    base: dict[str, Any]
    toggles: dict[str, tuple[dict[str, Any], dict[str, Any]]]
    specs: tuple[Filter, ...]


APPOINTMENT = Profile(
    BINDING,
    BASE,
    {
        "cat": ({"categories": ["CRM"]}, {"categories": ["Other"]}),
        "private": ({"sensitivity": "normal"}, {"sensitivity": "private"}),
        "when": ({"start": BASE["start"], "end": BASE["end"]}, {"start": FAR, "end": FAR}),
    },
    (
        CRM_ONLY,
        NO_PRIVATE,
        MONTH_YEAR,
        Filter(categories=("CRM",), exclude_private=True, calendar_range=MONTH_YEAR.calendar_range),
    ),
)
CONTACT = Profile(
    bind(CONTACTS, Direction.TWO_WAY),
    {"last_name": "Lee", "emails": ["lee@corp.test"]},
    {
        "cat": ({"categories": ["CRM"]}, {"categories": ["Other"]}),
        "address": ({"emails": ["lee@corp.test"]}, {"emails": ["lee@mail.example.org"]}),
    },
    (CRM_ONLY, BLOCKED, Filter(categories=("CRM",), block=BLOCKED.block)),
)
PROFILES = {"appointment": APPOINTMENT, "contact": CONTACT}

_SIDES = st.sampled_from(["crm", "ex"])
_STEPS = st.lists(
    st.one_of(
        st.tuples(
            _SIDES,
            st.sampled_from(["cat", "private", "when", "address"]),
            st.integers(0, 5),
            st.booleans(),
        ),
        st.tuples(_SIDES, st.just("delete"), st.integers(0, 5)),
        st.tuples(_SIDES, st.just("new"), st.lists(st.booleans(), min_size=3, max_size=3)),
        st.tuples(_SIDES, st.just("edit"), st.integers(0, 5)),
        st.tuples(st.just("pass"), st.sampled_from(list(PassKind))),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), name=st.sampled_from(sorted(PROFILES)), steps=_STEPS)
def test_no_pass_touches_an_item_outside_the_filter(
    data: st.DataObject, name: str, steps: list[Any]
) -> None:
    profile = PROFILES[name]
    spec = data.draw(st.sampled_from(profile.specs), label="filter")
    world, parked = World(profile.binding), {}
    for n in range(3):
        on = {k: v[0] for k, v in profile.toggles.items()}
        world.crm_put(f"seed{n}", {**profile.base, **_merged(on), "notes": f"Seed {n}"})
    filtered_pass(world, spec, parked, PassKind.INITIAL)
    for step in [*steps, ("pass", PassKind.EXPRESS), ("pass", PassKind.COMPLETE)]:
        _step(world, profile, spec, parked, step)
    # Every row is either linked or parked, never both, and no item is linked twice.
    assert not set(world.links) & set(parked)
    linked = [row.exchange_id for row in world.links.values()]
    assert len(linked) == len(set(linked))


def _merged(parts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {key: value for part in parts.values() for key, value in part.items()}


def _step(
    world: World,
    profile: Profile,
    spec: Filter,
    parked: dict[str, SyncedRow],
    step: tuple[Any, ...],
) -> None:
    if step[0] == "pass":
        filtered_pass(world, spec, parked, step[1])
        return
    side, what = step[0], step[1]
    if what == "new":
        chosen = dict(zip(profile.toggles, step[2], strict=False))
        toggled = {k: v[0 if chosen[k] else 1] for k, v in profile.toggles.items()}
        fields = {**profile.base, **_merged(toggled), "notes": f"New {world.serial}"}
        if side == "crm":
            world.crm_put(world.new_id("crm"), fields)
        else:
            world.ex_put(world.new_id("item"), fields, None)
        return
    ids = sorted(world.crm if side == "crm" else world.ex)
    if not ids or (what not in profile.toggles and what not in ("delete", "edit")):
        return
    one = ids[step[2] % len(ids)]
    if what == "delete":
        world.crm_delete(one) if side == "crm" else world.ex_delete(one)
        return
    binding = world.binding
    current = (
        snapshot_crm(binding, world.crm[one])
        if side == "crm"
        else snapshot_exchange(binding, world.ex[one])
    ).fields
    if what == "edit":
        changes: dict[str, Any] = {"notes": f"Edit {world.serial}"}
    else:
        changes = profile.toggles[what][0 if step[3] else 1]
    if side == "crm":
        world.crm_put(one, {**current, **changes})
    else:
        world.ex_put(one, {**current, **changes}, world.ex[one].crm_id)
