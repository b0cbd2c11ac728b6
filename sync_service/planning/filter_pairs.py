"""The pairs a sync filter matched (planning/filters.py: an item entering the filter and its
counterpart), written as the planner writes a pair found by matching, with two differences.

The planner was shown the item carrying the record's id, so it plans no stamp: the item is
stamped here, as any item paired by matching is. And when categories sync both ways, the
filter's categories either side holds are kept on both: the conflict policy takes one side's
whole record, and taking the side without the category would send the pair straight out of
the filter again, the category the user just set lost with it. Pure.
"""

from __future__ import annotations

from ews_client.models import Item

from .actions import Action, Link, Plan, Update, apply_phase
from .filters import Filter, Screened
from .links import row_for
from .mapping import Binding, Direction, crm_fields, differing, exchange_fields, model_fields
from .records import CrmRecord
from .values import Fields, JsonValue, norm_categories


def adopt(binding: Binding, plan: Plan, screened: Screened) -> Plan:
    """`plan` with the action of each pair `screened` matched written out in full."""
    if not screened.paired:
        return plan
    pairs = {(record.id, _ref_id(item)): (record, item) for record, item in screened.paired}
    actions: list[Action] = []
    for action in plan.actions:
        key = _key(action)
        found = pairs.get(key) if key is not None else None
        if found is None or not isinstance(action, Update | Link):
            actions.append(action)
            continue
        actions.append(_written(binding, screened.spec, action, *found))
    return Plan(plan.entity, plan.kind, tuple(sorted(actions, key=apply_phase)),
                plan.ambiguities, plan.total)  # fmt: skip


def _key(action: Action) -> tuple[str, str] | None:
    if isinstance(action, Update):
        return action.crm_id, action.ref.id
    if isinstance(action, Link):
        return action.row.crm_id, action.row.exchange_id
    return None


def _written(
    binding: Binding, spec: Filter, action: Update | Link, record: CrmRecord, item: Item
) -> Update:
    assert item.ref is not None
    target = dict(action.target if isinstance(action, Update) else action.row.fields)
    crm, exchange = crm_fields(binding, record), exchange_fields(binding, item)
    target = _categories_kept(binding, spec, target, crm, exchange)
    crm_changes = differing(binding, target, crm)
    exchange_changes = differing(binding, target, exchange)
    return Update(
        crm_id=record.id,
        ref=item.ref,
        target=target,
        crm_changes=crm_changes,
        exchange_changes=exchange_changes,
        model_fields=model_fields(binding, exchange_changes),
        crm_version=record.version,
        stamp=True,
        row=row_for(binding, record.id, item.ref, target),
        conflict=action.conflict,
        title=action.title,
        crm_before={name: crm.get(name) for name in crm_changes},
        exchange_before={name: exchange.get(name) for name in exchange_changes},
    )


def _categories_kept(
    binding: Binding, spec: Filter, target: dict[str, JsonValue], crm: Fields, exchange: Fields
) -> dict[str, JsonValue]:
    directions = {field.name: field.direction for field in binding.specs}
    if directions.get("categories") != Direction.TWO_WAY or not spec.categories:
        return target
    wanted = {c.casefold() for c in spec.categories}
    held = [*_names(crm.get("categories")), *_names(exchange.get("categories"))]
    kept = [c for c in held if c.casefold() in wanted]
    mine = _names(target.get("categories"))
    if not kept or any(c.casefold() in wanted for c in mine):
        return target
    return {**target, "categories": norm_categories([*mine, *kept])}


def _names(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _ref_id(item: Item) -> str:
    assert item.ref is not None
    return item.ref.id
