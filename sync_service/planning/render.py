"""Dry-run output: a plan as a human-readable list of what would happen."""

from __future__ import annotations

from collections.abc import Iterable

from .actions import (
    Action,
    Conflict,
    CreateCrm,
    CreateExchange,
    DeleteCrm,
    DeleteExchange,
    Link,
    Plan,
    Unlink,
    Update,
)


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
