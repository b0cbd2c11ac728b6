"""Initial matching: pair items that already exist on both sides before the first sync.

Stages run in order, each over the items the previous stages left unpaired:

- contacts: any e-mail address (case-insensitive), then first + last name;
- appointments: subject (case-insensitive) + start;
- tasks: subject (case-insensitive) + due date.

Within a stage an item pairs only when the relation is one-to-one both ways: the CRM record
has exactly one Exchange candidate and that item has exactly that one CRM candidate. Two
records of the same side are never paired with each other or with the same counterpart.

Tie-break: when a stage finds several candidates, a secondary key narrows them (contacts:
the name; appointments: end + location; tasks: start + status). If exactly one candidate
shares it, and that candidate has no other candidate sharing it, the two pair.

Otherwise the group is ambiguous: it is reported (`Ambiguity`) and its items are left
unpaired for the later stages too. The planner then creates each of them on the other side,
as if no match existed. That is the conservative choice: a wrong pairing would overwrite one
person's or meeting's data with another's, while an extra copy loses nothing and the report
names the records an operator should merge.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass

from ews_client.models import EntityKind

from .actions import Ambiguity
from .values import Fields

KeyFn = Callable[[Fields], Iterable[Hashable]]


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    keys: KeyFn
    tie_break: Callable[[Fields], Hashable]


@dataclass(frozen=True, slots=True)
class MatchResult:
    pairs: tuple[tuple[str, str], ...]  # (crm id, exchange id)
    ambiguities: tuple[Ambiguity, ...]


def _fold(value: object) -> str:
    return str(value).casefold() if value is not None else ""


def _emails(fields: Fields) -> Iterable[Hashable]:
    value = fields.get("emails")
    return {_fold(item) for item in value} if isinstance(value, list) else set()


def _name(fields: Fields) -> tuple[str, str]:
    return _fold(fields.get("first_name")), _fold(fields.get("last_name"))


def _name_keys(fields: Fields) -> Iterable[Hashable]:
    name = _name(fields)
    return {name} if any(name) else set()


def _subject_and(other: str) -> KeyFn:
    def keys(fields: Fields) -> Iterable[Hashable]:
        subject = _fold(fields.get("subject"))
        return {(subject, fields.get(other))} if subject else set()

    return keys


def _pair_of(first: str, second: str) -> Callable[[Fields], Hashable]:
    return lambda fields: (_fold(fields.get(first)), _fold(fields.get(second)))


STAGES: Mapping[EntityKind, tuple[Stage, ...]] = {
    EntityKind.CONTACT: (
        Stage("email", _emails, _name),
        Stage("name", _name_keys, _pair_of("company", "job_title")),
    ),
    EntityKind.APPOINTMENT: (
        Stage("subject+start", _subject_and("start"), _pair_of("end", "location")),
    ),
    EntityKind.TASK: (Stage("subject+due", _subject_and("due"), _pair_of("start", "status")),),
}


def match(
    entity: EntityKind, crm: Mapping[str, Fields], exchange: Mapping[str, Fields]
) -> MatchResult:
    """Pair unlinked CRM records (by id) with unlinked Exchange items (by item id)."""
    crm_left, ex_left = dict(crm), dict(exchange)
    pairs: list[tuple[str, str]] = []
    ambiguities: list[Ambiguity] = []
    for stage in STAGES[entity]:
        found, unclear = _run_stage(stage, crm_left, ex_left)
        pairs.extend(found)
        ambiguities.extend(unclear)
        for crm_id, ex_id in found:
            del crm_left[crm_id], ex_left[ex_id]
        for group in unclear:
            for crm_id in group.crm_ids:
                crm_left.pop(crm_id, None)
            for ex_id in group.exchange_ids:
                ex_left.pop(ex_id, None)
    return MatchResult(tuple(sorted(pairs)), tuple(ambiguities))


def _candidates(
    stage: Stage, crm: Mapping[str, Fields], exchange: Mapping[str, Fields]
) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    by_key: dict[Hashable, list[str]] = defaultdict(list)
    for ex_id, fields in exchange.items():
        for key in stage.keys(fields):
            by_key[key].append(ex_id)
    of_crm: dict[str, set[str]] = {}
    of_ex: dict[str, set[str]] = defaultdict(set)
    for crm_id, fields in crm.items():
        found = {ex_id for key in stage.keys(fields) for ex_id in by_key.get(key, ())}
        if found:
            of_crm[crm_id] = found
            for ex_id in found:
                of_ex[ex_id].add(crm_id)
    return of_crm, of_ex


def _run_stage(
    stage: Stage, crm: Mapping[str, Fields], exchange: Mapping[str, Fields]
) -> tuple[list[tuple[str, str]], list[Ambiguity]]:
    of_crm, of_ex = _candidates(stage, crm, exchange)
    pairs: list[tuple[str, str]] = []
    unresolved: set[str] = set()
    for crm_id in sorted(of_crm):
        ex_id = _unique(crm_id, of_crm, of_ex) or _tie_break(
            stage, crm_id, crm, exchange, of_crm, of_ex
        )
        if ex_id is None:
            unresolved.add(crm_id)
        else:
            pairs.append((crm_id, ex_id))
    paired_ex = {ex_id for _, ex_id in pairs}
    return pairs, _groups(stage.name, unresolved, of_crm, of_ex, paired_ex)


def _unique(crm_id: str, of_crm: dict[str, set[str]], of_ex: dict[str, set[str]]) -> str | None:
    (ex_id,) = of_crm[crm_id] if len(of_crm[crm_id]) == 1 else (None,)
    return ex_id if ex_id is not None and of_ex[ex_id] == {crm_id} else None


def _tie_break(
    stage: Stage,
    crm_id: str,
    crm: Mapping[str, Fields],
    exchange: Mapping[str, Fields],
    of_crm: dict[str, set[str]],
    of_ex: dict[str, set[str]],
) -> str | None:
    mark = stage.tie_break(crm[crm_id])
    close = [ex_id for ex_id in of_crm[crm_id] if stage.tie_break(exchange[ex_id]) == mark]
    if len(close) != 1:
        return None
    rivals = [other for other in of_ex[close[0]] if stage.tie_break(crm[other]) == mark]
    return close[0] if rivals == [crm_id] else None


def _groups(
    stage: str,
    unresolved: set[str],
    of_crm: dict[str, set[str]],
    of_ex: dict[str, set[str]],
    paired_ex: set[str],
) -> list[Ambiguity]:
    """Connected groups of unresolved candidates, each reported once."""
    seen_crm: set[str] = set()
    groups: list[Ambiguity] = []
    for start in sorted(unresolved):
        if start in seen_crm:
            continue
        crm_ids, ex_ids, todo = {start}, set[str](), [start]
        while todo:
            for ex_id in of_crm[todo.pop()] - paired_ex - ex_ids:
                ex_ids.add(ex_id)
                new = (of_ex[ex_id] & unresolved) - crm_ids
                crm_ids |= new
                todo.extend(new)
        seen_crm |= crm_ids
        if not ex_ids:
            # Every candidate was taken by a sure pair: not ambiguous, try the next stage.
            continue
        groups.append(Ambiguity(stage, tuple(sorted(crm_ids)), tuple(sorted(ex_ids))))
    return groups
