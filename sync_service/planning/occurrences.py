"""What the modified occurrences of a series show once the series itself changes. Pure.

Exchange keeps an exception's own value of a property only where the occurrence set it: a
property the occurrence never changed is the series' (an occurrence moved in Outlook carries
its own times, and the series' subject and location). Renaming the series therefore renames
such an occurrence in Outlook too. The exceptions read back from Exchange name that subject
explicitly, so the CRM holds it as the occurrence's own value; a rename written from the CRM
to the series would leave the CRM's occurrence with the old subject while Outlook shows the
new one, and the item's change key (moved by the service's own write) would hide that from
every later pass. So the planner's target gives each occurrence that showed the series' old
value the new one: both sides then hold what Outlook shows.
"""

from __future__ import annotations

from typing import cast

from .values import Fields, JsonValue

# Fields an occurrence shares with its series unless it set its own (ews: an exception's
# subject and location; times and bodies are the occurrence's own once it is modified).
FOLLOWING = ("subject", "location")


def follow_series(target: Fields, exchange: Fields) -> Fields:
    """`target` with its modified occurrences showing the series' new subject and location
    where they showed the value the Exchange series held (`exchange`) before this write."""
    occurrences = target.get("modified_occurrences")
    if not isinstance(occurrences, list) or not occurrences:
        return target
    changed = {
        name: (exchange.get(name), target.get(name))
        for name in FOLLOWING
        if name in target and exchange.get(name) is not None
        and exchange.get(name) != target.get(name)
    }  # fmt: skip
    if not changed:
        return target
    followed: list[JsonValue] = []
    for item in occurrences:
        occurrence = dict(cast(dict[str, JsonValue], item))
        for name, (old, new) in changed.items():
            if occurrence.get(name) == old:
                occurrence[name] = new
        followed.append(occurrence)
    return {**target, "modified_occurrences": followed}
