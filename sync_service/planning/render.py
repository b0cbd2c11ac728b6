"""Dry-run output: a plan as a human-readable list of what would happen, and as data.

`plan_document` is what a dry run stores for the operator to read back item by item: each
action with its entity, direction and the fields it would change (before -> after). Values
are cut to a bounded size (a note may hold megabytes) and the items of one run to a bounded
number; the per-entity counts always cover the whole plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from .actions import (
    Action,
    Ambiguity,
    Conflict,
    CreateCrm,
    CreateExchange,
    DeleteCrm,
    DeleteExchange,
    Link,
    Plan,
    Unlink,
    Update,
    action_name,
)
from .values import Fields, JsonValue

VALUE_MAX = 200  # characters of one stored value; the rest is cut, its length said
LIST_MAX = 20  # entries of one stored list or object value
PLAN_ITEMS_MAX = 2000  # items stored for one run; the counts cover every item
CRM_TO_EXCHANGE, EXCHANGE_TO_CRM = "crm_to_exchange", "exchange_to_crm"


def render(plan: Plan) -> str:
    """One line per action, then the ambiguous matches, then a summary line."""
    lines = [f"{plan.entity} ({plan.kind} pass)"]
    lines.extend(f"  {describe(action)}" for action in plan.actions)
    for group in plan.ambiguities:
        lines.append(
            f"  ambiguous match by {group.key}: crm {_ids(group.crm_ids)}"
            f" <-> exchange {_ids(group.exchange_ids)} (not paired; each created on the other side)"
        )
    lines.append(f"  = {plan.summary()}")
    return "\n".join(lines)


def describe(action: Action) -> str:
    """A single line for one action: an aligned verb, the item's title, the details."""
    verb, detail = _parts(action)
    title = f'"{action.title}" ' if action.title else ""
    return f"{verb:<19}{title}{detail}"


def _parts(action: Action) -> tuple[str, str]:
    match action:
        case CreateCrm():
            return "create in CRM", f"from exchange {action.source.id} as {action.crm_id}"
        case CreateExchange():
            return "create in Exchange", f"from crm {action.crm_id}"
        case Update():
            return "update", f"crm {action.crm_id}: {_update(action)}"
        case DeleteCrm():
            return "delete in CRM", f"crm {action.crm_id}"
        case DeleteExchange():
            return "delete in Exchange", f"exchange {action.ref.id} (crm {action.crm_id})"
        case Link():
            return "link", f"crm {action.row.crm_id}: {action.reason}{_conflict(action.conflict)}"
        case Unlink():
            return "unlink", f"crm {action.crm_id} (deleted on both sides)"


def _update(action: Update) -> str:
    parts = []
    if action.crm_changes:
        parts.append(f"CRM fields {_names(action.crm_changes)}")
    if action.exchange_changes:
        parts.append(f"Exchange fields {_names(action.exchange_changes)}")
    if action.stamp:
        parts.append("stamp CRM id on the Exchange item")
    return "; ".join(parts) + _conflict(action.conflict)


def _conflict(conflict: Conflict | None) -> str:
    if conflict is None:
        return ""
    how = f"{conflict.winner} wins" if conflict.winner else "merged"
    return f" [conflict on {_names(conflict.fields)}: {conflict.policy}, {how}]"


def _names(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))


def _ids(ids: Iterable[str]) -> str:
    return ", ".join(ids) or "-"


def _some(ids: Sequence[str], shown: int = 10) -> str:
    """At most `shown` ids, then how many more: a decision stays one readable line."""
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(ids[:shown]) + more


# -- the plan as data ----------------------------------------------------------------------

Item = dict[str, JsonValue]


def plan_document(plans: Sequence[Plan], max_items: int = PLAN_ITEMS_MAX) -> Item:
    """The plans of one pass as JSON-able data: per-entity counts, the items (at most
    `max_items`; `omitted` says how many more), and the ambiguous matches."""
    items: list[JsonValue] = [item for plan in plans for item in plan_items(plan)]
    return {
        "entities": [
            {
                "entity": plan.entity.value,
                "kind": plan.kind.value,
                "items": plan.total,
                "planned": dict(sorted(plan.counts().items())),
                "summary": plan.summary(),
            }
            for plan in plans
        ],
        "items": items[:max_items],
        "omitted": max(0, len(items) - max_items),
        "ambiguities": [
            ambiguity_json(plan, group) for plan in plans for group in plan.ambiguities
        ],
    }


def plan_items(plan: Plan) -> Iterator[Item]:
    """One item per action: entity, action, direction, ids, title, changes, reason, conflict."""
    for action in plan.actions:
        crm_id, exchange_id = _ids_of(action)
        yield {
            "entity": plan.entity.value,
            "action": action_name(action),
            "direction": direction_of(action),
            "crm_id": crm_id or None,
            "exchange_id": exchange_id or None,
            "title": bounded(action.title) if action.title else None,
            "changes": _changes(action),
            "reason": _reason(action),
            "conflict": _conflict_json(getattr(action, "conflict", None)),
        }


def direction_of(action: Action) -> str:
    """Which side an action writes: crm_to_exchange, exchange_to_crm, both, or none."""
    match action:
        case CreateExchange() | DeleteExchange():
            return CRM_TO_EXCHANGE
        case CreateCrm() | DeleteCrm():
            return EXCHANGE_TO_CRM
        case Update():
            to_exchange = bool(action.exchange_changes) or action.stamp
            if action.crm_changes and to_exchange:
                return "both"
            return EXCHANGE_TO_CRM if action.crm_changes else CRM_TO_EXCHANGE
        case Link() | Unlink():
            return "none"


def ambiguity_json(plan: Plan, group: Ambiguity) -> Item:
    """An ambiguous match: the key, both sides' candidates, and what the plan does instead."""
    direction, decision = ambiguity_decision(plan, group)
    return {
        "entity": plan.entity.value,
        "key": group.key,
        "crm_ids": list(group.crm_ids),
        "exchange_ids": list(group.exchange_ids),
        "why": ambiguity_reason(group),
        "direction": direction,
        "decision": decision,
    }


def ambiguity_reason(group: Ambiguity) -> str:
    crm, exchange = len(group.crm_ids), len(group.exchange_ids)
    return (
        f"{crm} CRM record(s) and {exchange} Exchange item(s) share a {group.key} key with no "
        "one-to-one pair among them: pairing any would be a guess"
    )


def ambiguity_decision(plan: Plan, group: Ambiguity) -> tuple[str, str]:
    """(direction, what the plan does with the group's items): none are paired; each is
    created on the other side where the entity's direction allows it."""
    to_exchange = {a.crm_id for a in plan.actions if isinstance(a, CreateExchange)}
    to_crm = {a.source.id for a in plan.actions if isinstance(a, CreateCrm)}
    made_in_exchange = [crm_id for crm_id in group.crm_ids if crm_id in to_exchange]
    made_in_crm = [ex_id for ex_id in group.exchange_ids if ex_id in to_crm]
    parts = ["not paired"]
    if made_in_exchange:
        parts.append(f"CRM {_some(made_in_exchange)} created in Exchange")
    if made_in_crm:
        parts.append(f"Exchange {_some(made_in_crm)} created in the CRM")
    if not (made_in_exchange or made_in_crm):
        parts.append("nothing created")
    if made_in_exchange and made_in_crm:
        direction = "both"
    elif made_in_exchange or made_in_crm:
        direction = CRM_TO_EXCHANGE if made_in_exchange else EXCHANGE_TO_CRM
    else:
        direction = "none"
    return direction, "; ".join(parts)


def bounded(value: JsonValue) -> JsonValue:
    """`value` cut to a bounded size: long text keeps its first VALUE_MAX characters and says
    how long it was; lists and objects keep their first LIST_MAX entries."""
    if isinstance(value, str):
        if len(value) <= VALUE_MAX:
            return value
        return f"{value[:VALUE_MAX]}... ({len(value)} characters)"
    if isinstance(value, list):
        kept: list[JsonValue] = [bounded(v) for v in value[:LIST_MAX]]
        if len(value) > LIST_MAX:
            kept.append(f"... ({len(value) - LIST_MAX} more)")
        return kept
    if isinstance(value, dict):
        entries = list(value.items())
        shown: dict[str, JsonValue] = {k: bounded(v) for k, v in entries[:LIST_MAX]}
        if len(entries) > LIST_MAX:
            shown["..."] = f"{len(entries) - LIST_MAX} more"
        return shown
    return value


def _ids_of(action: Action) -> tuple[str, str]:
    match action:
        case CreateCrm():
            return action.crm_id, action.source.id
        case CreateExchange():
            return action.crm_id, ""
        case Update() | DeleteExchange():
            return action.crm_id, action.ref.id
        case DeleteCrm() | Unlink():
            return action.crm_id, action.exchange_id
        case Link():
            return action.row.crm_id, action.row.exchange_id


def _changes(action: Action) -> list[JsonValue]:
    """The fields an action would write: [{field, side, before, after}], sorted by name."""
    match action:
        case CreateCrm():
            return _created("crm", action.fields)
        case CreateExchange():
            return _created("exchange", action.fields)
        case Update():
            changes = [
                _change(name, "crm", action.crm_before.get(name), action.target.get(name))
                for name in sorted(action.crm_changes)
            ]
            changes += [
                _change(name, "exchange", action.exchange_before.get(name), action.target.get(name))
                for name in sorted(action.exchange_changes)
            ]
            if action.stamp:
                changes.append(_change("crm_id", "exchange", None, action.crm_id))
            return changes
        case _:
            return []


def _created(side: str, fields: Fields) -> list[JsonValue]:
    return [
        _change(name, side, None, value)
        for name, value in sorted(fields.items())
        if value is not None and value != [] and value != ""
    ]


def _change(name: str, side: str, before: JsonValue, after: JsonValue) -> JsonValue:
    return {"field": name, "side": side, "before": bounded(before), "after": bounded(after)}


def _reason(action: Action) -> str | None:
    match action:
        case Link():
            return action.reason
        case Unlink():
            return "deleted on both sides"
        case DeleteCrm():
            return "gone from Exchange"
        case DeleteExchange():
            return "gone from the CRM"
        case _:
            return None


def _conflict_json(conflict: Conflict | None) -> JsonValue:
    if conflict is None:
        return None
    return {
        "policy": conflict.policy,
        "winner": conflict.winner.value if conflict.winner else None,
        "fields": list[JsonValue](sorted(conflict.fields)),
    }
