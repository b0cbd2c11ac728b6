"""Link rows written under another field map, read under the one in effect.

A link row holds the content and the hashes of its pair as last synced, over the fields that
were active then. Once the operator turns a field off or on, a pass hashes its snapshots over
another set of fields: compared as they are, every pair would look changed on both sides, so
every pair would be a conflict (the losing side's real edits overwritten by the winner's whole
record, a field just turned on emptied on the side that loses).

`rebase` reads each such row over the binding's fields instead:

- a field turned off is dropped from the row, so the pair compares equal and nothing is
  written: the field is left as it is on both sides;
- a field turned on has no last-synced value, so it counts as empty at the last sync. A side
  holding a value has changed it; the next complete pass copies it to a side without one, and
  two different values go to the entity's conflict policy. A value is never replaced by an
  empty one. (An express pass before that sees only the side that changed: when both sides
  hold different values, that side's value is the one kept.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from .mapping import Binding, content_hash
from .state import SyncedRow


def rebase(binding: Binding, rows: Iterable[SyncedRow]) -> list[SyncedRow]:
    """`rows` over the binding's fields; a row hashed over them already is returned as it is.

    Both hashes are recomputed: the planner writes a row with one hash for both sides (the
    content both hold), so the row's content stands for either side. An in-flight write's
    `intent_hash` is kept: after a map change it no longer matches, so a side holding it
    counts as changed, and a change wins over a deletion (nothing is lost).
    """
    names = frozenset(spec.name for spec in binding.specs)
    return [row if row.fields.keys() == names else _rebased(binding, names, row) for row in rows]


def _rebased(binding: Binding, names: frozenset[str], row: SyncedRow) -> SyncedRow:
    fields = {name: value for name, value in row.fields.items() if name in names}
    digest = content_hash(binding, fields)
    return replace(row, fields=fields, crm_hash=digest, exchange_hash=digest)
