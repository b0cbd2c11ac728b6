"""What the audit trail says of one write: the side written, the fields (before -> after), and
why (which side changed; for a conflict, the policy, the side kept and the losing values).

Values are bounded: a text longer than `VALUE_MAX` characters (a body, notes) is cut there and
marked, a list keeps its first `ITEMS_MAX` entries, so one row stays small whatever the item
holds. The mapped fields carry item content only, never a credential. The values before an
update are those the planner compared (`Update.crm_before`, `Update.exchange_before`).
"""

from __future__ import annotations

from collections.abc import Iterable

from sync_service.db.audit import AuditEntry
from sync_service.planning.actions import Update
from sync_service.planning.mapping import Binding, Direction
from sync_service.planning.values import Fields, JsonValue

VALUE_MAX = 256  # characters of one text value (a body or notes is cut here)
ITEMS_MAX = 20  # entries of one list value (attendees, categories, occurrences)
CUT = "…"
# The side a write's direction writes, and the direction of a write to a side.
SIDE_OF = {"crm_to_exchange": "exchange", "exchange_to_crm": "crm"}
DIRECTION_OF = {side: direction for direction, side in SIDE_OF.items()}
_OTHER = {"crm": "exchange", "exchange": "crm"}
_NAME = {"crm": "CRM", "exchange": "Exchange"}
Changes = dict[str, dict[str, JsonValue]]
# The Exchange item gets its record's CRM id (a pair found by matching): no content changes.
STAMPED = "CRM id written on the item"


def bounded(value: JsonValue) -> JsonValue:
    """`value` cut to the audit's bounds (texts at VALUE_MAX characters, lists at ITEMS_MAX)."""
    if isinstance(value, str):
        return value if len(value) <= VALUE_MAX else value[:VALUE_MAX] + CUT
    if isinstance(value, list):
        kept: list[JsonValue] = [bounded(v) for v in value[:ITEMS_MAX]]
        if len(value) > ITEMS_MAX:
            kept.append(f"{CUT} {len(value) - ITEMS_MAX} more")
        return kept
    if isinstance(value, dict):
        return {k: bounded(v) for k, v in list(value.items())[:ITEMS_MAX]}
    return value


def created(fields: Fields) -> Changes:
    """A create's fields: every value it wrote (an absent field is not a change), with no
    "before" (there was none; leaving the key out makes the initial sync's rows smaller)."""
    return {name: {"after": bounded(v)} for name, v in fields.items() if v is not None}


def changed(names: Iterable[str], before: Fields, after: Fields) -> Changes:
    """The named fields from `before` to `after`."""
    return {
        name: {"before": bounded(before.get(name)), "after": bounded(after.get(name))}
        for name in sorted(names)
    }


def entry(
    side: str,
    operation: str,
    ids: tuple[str, str],
    title: str,
    reason: str,
    changes: Changes | None = None,
    conflict: tuple[str, str | None, dict[str, JsonValue] | None] | None = None,
) -> AuditEntry:
    """One write to `side`. Without `conflict` it carries the other side's change over; with
    it, (policy, side kept, losing values), both sides changed the item."""
    crm_id, exchange_id = ids
    policy, winner, losing = conflict or (None, None, None)
    return AuditEntry(
        crm_id=crm_id,
        exchange_id=exchange_id,
        title=title if len(title) <= VALUE_MAX else title[:VALUE_MAX] + CUT,
        side=side,
        operation=operation,
        changed_on=_OTHER[side] if conflict is None else "both",
        reason=reason,
        changes=changes or {},
        policy=policy,
        winner=winner,
        losing=losing,
        earlier=False,
    )


def create(side: str, ids: tuple[str, str], title: str, fields: Fields) -> AuditEntry:
    return entry(side, "create", ids, title, f"only in {_NAME[_OTHER[side]]}", created(fields))


def replayed(side: str, ids: tuple[str, str], title: str, fields: Fields) -> AuditEntry:
    """A create an earlier pass made before it was cut short, found and written again."""
    reason = "made by an earlier pass that was cut short; written again"
    return entry(side, "update", ids, title, reason, created(fields))


def earlier(side: str, ids: tuple[str, str], title: str, fields: Fields) -> AuditEntry:
    """A create an earlier pass made but was cut short before linking: this pass links it,
    and the audit row goes to the run that made it (the one its count goes to)."""
    made = create(side, ids, title, fields)
    made["reason"] = "made by a pass cut short before recording it; linked by a later pass"
    made["earlier"] = True
    return made


def delete(side: str, ids: tuple[str, str], title: str) -> AuditEntry:
    return entry(side, "delete", ids, title, f"deleted in {_NAME[_OTHER[side]]}")


def update(binding: Binding, action: Update, side: str, exchange_id: str) -> AuditEntry:
    """An update of `side`: its changed fields from the values the planner read there."""
    crm_side = side == "crm"
    names = action.crm_changes if crm_side else action.exchange_changes
    before = action.crm_before if crm_side else action.exchange_before
    changes = changed(names, before, action.target)
    if action.stamp and not crm_side:
        changes["crm_id"] = {"before": None, "after": action.crm_id}
    ids = (action.crm_id, exchange_id)
    conflict = action.conflict
    if conflict is None:
        why = _why(binding, side) if names else STAMPED
        return entry(side, "update", ids, action.title, why, changes)
    winner = str(conflict.winner) if conflict.winner else _merge_winner(binding, action)
    losing = None
    if winner is not None:
        # The side not kept is the side overwritten: its values before are the losing ones.
        lost = action.exchange_before if winner == "crm" else action.crm_before
        losing = {name: bounded(lost.get(name)) for name in sorted(conflict.fields)}
    kept = f"{_NAME[winner]}'s values kept" if winner else "merged"
    reason = f"changed on both sides: {conflict.policy}, {kept}"
    return entry(
        side, "update", ids, action.title, reason, changes, (conflict.policy, winner, losing)
    )


def _why(binding: Binding, side: str) -> str:
    source = _OTHER[side]
    if binding.direction == Direction(f"{source}_to_{side}"):
        # One-way: the source's content is written whichever side changed (a target-side edit
        # is overwritten).
        return f"one-way from {_NAME[source]}"
    return f"changed in {_NAME[source]}"


def _merge_winner(binding: Binding, action: Update) -> str | None:
    """Under merge the fallback decides each field both sides changed, all alike: the side
    not overwritten (None when only per-occurrence merges clashed: no side was kept whole)."""
    assert action.conflict is not None
    for name in sorted(action.conflict.fields):
        if binding.spec(name).combine is None:
            return "exchange" if name in action.crm_changes else "crm"
    return None
