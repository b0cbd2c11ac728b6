"""Conflict policies and the per-field resolution of one pair's target content."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .actions import Conflict, Side
from .mapping import Binding, Direction, FieldSpec, same_value
from .values import Fields, JsonValue


class Policy(StrEnum):
    CRM_WINS = "crm_wins"
    EXCHANGE_WINS = "exchange_wins"
    NEWEST_WINS = "newest_wins"
    MERGE = "merge"


@dataclass(frozen=True, slots=True)
class ConflictPolicy:
    """The policy of one entity; `fallback` decides a field both sides changed under merge."""

    policy: Policy = Policy.CRM_WINS
    fallback: Policy = Policy.CRM_WINS

    def __post_init__(self) -> None:
        if self.fallback == Policy.MERGE:
            raise ValueError("merge needs a fallback other than merge")


@dataclass(frozen=True, slots=True)
class Side3:
    """One side's content as the resolver sees it."""

    fields: Fields
    changed: bool
    modified: datetime | None


@dataclass(frozen=True, slots=True)
class Resolution:
    target: dict[str, JsonValue]
    conflict: Conflict | None


def winner_of(policy: Policy, crm: Side3, exchange: Side3) -> Side:
    """The winning side for crm_wins / exchange_wins / newest_wins (CRM on a tie)."""
    if policy == Policy.EXCHANGE_WINS:
        return Side.EXCHANGE
    if policy == Policy.NEWEST_WINS and _newer(exchange.modified, crm.modified):
        return Side.EXCHANGE
    return Side.CRM


def _newer(left: datetime | None, right: datetime | None) -> bool:
    if left is None:
        return False
    return right is None or left > right


def resolve(
    binding: Binding,
    base: Fields | None,
    crm: Side3,
    exchange: Side3,
    policy: ConflictPolicy,
) -> Resolution:
    """The content both sides must hold after this pass.

    Per field: one-way fields take their source side; equal values stay; a field changed on
    one side only (against `base`) takes that side. When both sides changed the record,
    crm_wins / exchange_wins / newest_wins take the winner's whole record, merge decides field
    by field with the fallback. Fields with a combine hook (recurrence exceptions) are merged
    per occurrence under every policy. Without a base (a pair found by matching or recovery)
    every differing field counts as changed on both sides.
    """
    both = crm.changed and exchange.changed
    merged = policy.policy == Policy.MERGE
    side = winner_of(policy.fallback if merged else policy.policy, crm, exchange)
    target: dict[str, JsonValue] = {}
    clashes: set[str] = set()
    for spec in binding.specs:
        value, clash = _field(spec, base, crm.fields, exchange.fields, side, both and not merged)
        target[spec.name] = value
        if clash:
            clashes.add(spec.name)
    conflict = None
    if both and clashes:
        conflict = Conflict(policy.policy.value, None if merged else side, frozenset(clashes))
    return Resolution(target, conflict)


_MISSING: JsonValue = "\x00missing"


def _field(
    spec: FieldSpec,
    base: Fields | None,
    crm: Fields,
    exchange: Fields,
    side: Side,
    whole_record: bool,
) -> tuple[JsonValue, bool]:
    """(target value, whether both sides changed this field to different values)."""
    c, e = crm.get(spec.name), exchange.get(spec.name)
    if same_value(spec, c, e) or spec.direction == Direction.CRM_TO_EXCHANGE:
        return c, False
    if spec.direction == Direction.EXCHANGE_TO_CRM:
        return e, False
    b = _MISSING if base is None else base.get(spec.name)
    c_changed = base is None or not same_value(spec, b, c)
    e_changed = base is None or not same_value(spec, b, e)
    won = c if side == Side.CRM else e
    if spec.combine is not None:
        return spec.combine(None if b is _MISSING else b, c, e, won), c_changed and e_changed
    if whole_record:
        return won, c_changed and e_changed
    if not e_changed:
        return c, False
    if not c_changed:
        return e, False
    return won, True
