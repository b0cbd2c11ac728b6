"""Shared (firm) records: per-field merge whatever the entity's policy; a clash follows it."""

from __future__ import annotations

from typing import Any

import pytest

from ews_client.models import ItemRef
from sync_service.planning import CONTACTS, ConflictPolicy, Policy, Side, Update, bind, plan
from sync_service.planning.mapping import content_hash
from sync_service.planning.shared import shared_policy
from sync_service.planning.state import CrmSnapshot, ExchangeSnapshot, SyncedRow

BINDING = bind(CONTACTS)
BASE = {"first_name": "Ann", "last_name": "Lee", "job_title": "CEO", "city": "Paris"}


def full(fields: dict[str, Any]) -> dict[str, Any]:
    """Every field of the binding (the planner's canonical content), the rest empty."""
    empty = {spec.name: None for spec in BINDING.specs}
    return {**empty, **fields}


def planned(crm: dict[str, Any], exchange: dict[str, Any], policy: ConflictPolicy,
            shared: bool) -> Update:  # fmt: skip
    base = full(BASE)
    row = SyncedRow(
        "c1", "e1", "ck1", content_hash(BINDING, base), content_hash(BINDING, base), base
    )
    c_fields, e_fields = full({**BASE, **crm}), full({**BASE, **exchange})
    c = CrmSnapshot("c1", c_fields, content_hash(BINDING, c_fields), version=2)
    e = ExchangeSnapshot(ItemRef("e1", "ck2"), "c1", e_fields, content_hash(BINDING, e_fields))
    result = plan(BINDING, [c], [e], [row], policy=policy, shared={"c1"} if shared else ())
    (update,) = result.actions
    assert isinstance(update, Update)
    return update


def test_single_owner_record_keeps_the_whole_record_policy() -> None:
    """Without sharing, crm_wins takes the CRM's record: the Outlook city edit is lost."""
    update = planned({"job_title": "CTO"}, {"city": "Oslo"}, ConflictPolicy(), shared=False)
    assert (update.target["job_title"], update.target["city"]) == ("CTO", "Paris")


@pytest.mark.parametrize("policy", list(Policy))
def test_shared_record_keeps_edits_of_different_fields(policy: Policy) -> None:
    """Another user's edit (in the CRM now) and this user's edit of another field both stay."""
    update = planned({"job_title": "CTO"}, {"city": "Oslo"}, ConflictPolicy(policy), shared=True)
    assert (update.target["job_title"], update.target["city"]) == ("CTO", "Oslo")
    assert update.conflict is None
    assert update.crm_changes == {"city"} and update.exchange_changes == {"job_title"}


@pytest.mark.parametrize(
    ("policy", "winner", "kept"),
    [
        (Policy.CRM_WINS, Side.CRM, "CTO"),
        (Policy.EXCHANGE_WINS, Side.EXCHANGE, "CFO"),
        (Policy.NEWEST_WINS, Side.CRM, "CTO"),  # no modification times: the CRM on a tie
    ],
)
def test_shared_record_same_field_follows_the_policy(
    policy: Policy, winner: Side, kept: str
) -> None:
    crm, exchange = {"job_title": "CTO"}, {"job_title": "CFO", "city": "Oslo"}
    update = planned(crm, exchange, ConflictPolicy(policy), shared=True)
    assert update.target["job_title"] == kept
    assert update.target["city"] == "Oslo"  # the other field merges all the same
    assert update.conflict is not None
    assert (update.conflict.policy, update.conflict.winner) == (policy.value, winner)
    assert update.conflict.fields == {"job_title"}


def test_entity_under_merge_keeps_its_own_fallback() -> None:
    mine = ConflictPolicy(Policy.MERGE, Policy.EXCHANGE_WINS)
    assert shared_policy(mine) is mine
    update = planned({"job_title": "CTO"}, {"job_title": "CFO"}, mine, shared=True)
    assert update.target["job_title"] == "CFO"
    assert update.conflict is not None and update.conflict.policy == "merge"


def test_shared_policy_merges_with_the_entity_policy_as_fallback() -> None:
    assert shared_policy(ConflictPolicy(Policy.NEWEST_WINS)) == ConflictPolicy(
        Policy.MERGE, Policy.NEWEST_WINS
    )
