"""Initial matching: keys per entity, tie-break, ambiguity, one-to-one pairing."""

from __future__ import annotations

from typing import Any

from ews_client.models import EntityKind
from sync_service.planning import (
    CONTACTS,
    TASKS,
    ConflictPolicy,
    CreateCrm,
    CreateExchange,
    PassKind,
    Update,
    bind,
    render,
)
from sync_service.planning.matching import match

from .world import World


def test_contacts_pair_by_any_email_without_case() -> None:
    result = match(
        EntityKind.CONTACT,
        {"c1": {"emails": ["ann@x.com"]}, "c2": {"emails": ["bob@y.org", "b@z.net"]}},
        {"e1": {"emails": ["B@Z.net"]}, "e2": {"emails": ["ANN@x.com"]}},
    )
    assert result.pairs == (("c1", "e2"), ("c2", "e1"))
    assert result.ambiguities == ()


def test_contacts_fall_back_to_first_and_last_name() -> None:
    crm = {"c1": {"first_name": "Ann", "last_name": "Lee", "emails": []}}
    ex = {"e1": {"first_name": "ann", "last_name": "LEE", "emails": ["new@x.com"]}}
    assert match(EntityKind.CONTACT, crm, ex).pairs == (("c1", "e1"),)


def test_email_candidates_narrowed_by_name_tie_break() -> None:
    crm = {"c1": {"emails": ["desk@x.com"], "first_name": "Ann", "last_name": "Lee"}}
    ex = {
        "e1": {"emails": ["desk@x.com"], "first_name": "Bob", "last_name": "Ray"},
        "e2": {"emails": ["desk@x.com"], "first_name": "Ann", "last_name": "Lee"},
    }
    result = match(EntityKind.CONTACT, crm, ex)
    assert result.pairs == (("c1", "e2"),)
    assert result.ambiguities == ()


def test_ambiguous_group_is_reported_not_guessed() -> None:
    crm: dict[str, Any] = {"c1": {"emails": ["desk@x.com"]}, "c2": {"emails": ["desk@x.com"]}}
    ex: dict[str, Any] = {"e1": {"emails": ["desk@x.com"]}}
    result = match(EntityKind.CONTACT, crm, ex)
    assert result.pairs == ()
    (group,) = result.ambiguities
    assert group.key == "email" and group.crm_ids == ("c1", "c2") and group.exchange_ids == ("e1",)


def test_ambiguous_items_are_not_retried_by_name() -> None:
    crm = {"c1": {"emails": ["a@x.com"], "first_name": "Ann"}}
    ex = {
        "e1": {"emails": ["a@x.com"], "first_name": "Ann"},
        "e2": {"emails": ["a@x.com"], "first_name": "Ann"},
    }
    result = match(EntityKind.CONTACT, crm, ex)
    assert result.pairs == () and len(result.ambiguities) == 1


def test_same_side_duplicates_are_never_paired_with_each_other() -> None:
    crm = {"c1": {"emails": ["a@x.com"]}, "c2": {"emails": ["a@x.com"]}}
    assert match(EntityKind.CONTACT, crm, {}).pairs == ()


def test_appointments_pair_by_subject_and_start() -> None:
    crm = {
        "c1": {"subject": "Review", "start": "2026-03-01T09:00:00Z"},
        "c2": {"subject": "Review", "start": "2026-03-02T09:00:00Z"},
    }
    ex = {
        "e1": {"subject": "review", "start": "2026-03-02T09:00:00Z"},
        "e2": {"subject": "Review", "start": "2026-03-03T09:00:00Z"},
    }
    assert match(EntityKind.APPOINTMENT, crm, ex).pairs == (("c2", "e1"),)


def test_tasks_pair_by_subject_and_due() -> None:
    crm = {"c1": {"subject": "Call", "due": None}, "c2": {"subject": "Call", "due": "2026-03-01"}}
    ex = {"e1": {"subject": "Call", "due": "2026-03-01"}, "e2": {"subject": "Call", "due": None}}
    assert match(EntityKind.TASK, crm, ex).pairs == (("c1", "e2"), ("c2", "e1"))


def test_initial_pass_links_existing_items_without_duplicates() -> None:
    world = World(bind(CONTACTS))
    for n in range(5):
        fields = {"first_name": f"P{n}", "emails": [f"p{n}@x.com"], "mobile_phone": "+1 555 0100"}
        world.crm_put(f"crm{n}", fields)
        world.ex_put(
            f"ex{n}", {**fields, "emails": [f"P{n}@X.com"], "mobile_phone": "+15550100"}, None
        )
    result = world.sync(PassKind.INITIAL, ConflictPolicy())
    # Matched with identical content (case and phone format aside): only the CRM id is stamped.
    assert len(result.actions) == 5
    for action in result.actions:
        assert isinstance(action, Update) and action.stamp
        assert not action.crm_changes and not action.exchange_changes
    assert len(world.crm) == len(world.ex) == len(world.links) == 5
    assert world.plan(PassKind.COMPLETE, ConflictPolicy()).actions == ()


def test_initial_pass_creates_ambiguous_items_and_reports_them() -> None:
    world = World(bind(TASKS))
    world.crm_put("crm1", {"subject": "Call", "due": "2026-03-01T09:00:00Z"})
    world.ex_put("ex1", {"subject": "Call", "due": "2026-03-01T09:00:00Z"}, None)
    world.ex_put("ex2", {"subject": "Call", "due": "2026-03-01T09:00:00Z"}, None)
    result = world.plan(PassKind.INITIAL, ConflictPolicy())
    assert len(result.ambiguities) == 1
    assert sorted(type(a).__name__ for a in result.actions) == [
        "CreateCrm",
        "CreateCrm",
        "CreateExchange",
    ]
    assert "ambiguous match by subject+due" in render(result)


def test_complete_pass_does_not_match() -> None:
    world = World(bind(CONTACTS))
    world.crm_put("crm1", {"emails": ["a@x.com"]})
    world.ex_put("ex1", {"emails": ["a@x.com"]}, None)
    result = world.plan(PassKind.COMPLETE, ConflictPolicy())
    assert {type(a) for a in result.actions} == {CreateCrm, CreateExchange}
