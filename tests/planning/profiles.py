"""Per-entity data for the tests: Hypothesis strategies over (messy) field values.

Values are deliberately drawn from small pools, with case and spacing variants, so that
random edits collide, conflict and exercise normalization.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from sync_service.planning import APPOINTMENTS, CONTACTS, TASKS, EntityMap


@dataclass(frozen=True)
class Profile:
    map: EntityMap
    token: str  # a field random edits never touch: identifies an item across both sides
    editable: dict[str, st.SearchStrategy[Any]]

    def fields(self, token: str) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries({self.token: st.just(token)}, optional=self.editable)

    def shared(self, token: str) -> st.SearchStrategy[dict[str, Any]]:
        """Fields of an item present on both sides before the first pass: a unique match key."""
        return self.fields(token).map(lambda f: {**f, **self.match_key(token)})

    def match_key(self, token: str) -> dict[str, Any]:
        if self.map is CONTACTS:
            return {"emails": [f"{token}@match.test"]}
        return {"subject": token}

    def edit(self) -> st.SearchStrategy[dict[str, Any]]:
        return st.fixed_dictionaries({}, optional=self.editable).filter(bool)


_names = st.sampled_from(["Ann", "ann ", "Bob", "  Bob  Lee", None])
_emails = st.lists(st.sampled_from(["a@x.com", "A@X.com", "b@y.org", "c@z.net"]), max_size=3)
_phones = st.sampled_from(["+1 555 0100", "+15550100", "555-0101", None])
_categories = st.lists(st.sampled_from(["Red", "red", "Blue", "VIP"]), max_size=3)
_notes = st.sampled_from(["", "one", "one\r\ntwo", "two  ", None])
_times = st.sampled_from(
    ["2026-03-01T09:00:00Z", "2026-03-01T10:00:00Z", "2026-03-02T09:00:00+01:00", None]
)

CONTACT = Profile(
    CONTACTS,
    "company",
    {
        "first_name": _names,
        "last_name": _names,
        "emails": _emails,
        "mobile_phone": _phones,
        "categories": _categories,
        "notes": _notes,
        "city": st.sampled_from(["Paris", "Oslo", None]),
    },
)

TASK = Profile(
    TASKS,
    "subject",
    {
        "notes": _notes,
        "due": _times,
        "status": st.sampled_from(["not_started", "in_progress", "completed"]),
        "importance": st.sampled_from(["low", "normal", "high"]),
        "percent_complete": st.sampled_from([0, 50, 100]),
        "categories": _categories,
    },
)

_occurrences = st.lists(
    st.sampled_from(["2026-03-08T09:00:00Z", "2026-03-15T09:00:00Z", "2026-03-22T09:00:00Z"]),
    max_size=2,
)
_weekly = {
    "kind": "weekly",
    "interval": 1,
    "days_of_week": ["sunday"],
    "day_of_month": None,
    "month": None,
    "week_index": None,
    "start_date": "2026-03-01",
    "end_date": None,
    "occurrences": 10,
}

APPOINTMENT = Profile(
    APPOINTMENTS,
    "subject",
    {
        "start": st.sampled_from(["2026-03-01T09:00:00Z", "2026-03-01T11:00:00Z"]),
        "end": st.sampled_from(["2026-03-01T10:00:00Z", "2026-03-01T12:00:00Z"]),
        "location": st.sampled_from(["Room 1", "room  1", "Room 2", None]),
        "sensitivity": st.sampled_from(["normal", "private"]),
        "attendees": st.lists(
            st.tuples(st.sampled_from(["a@x.com", "B@y.org"]), _names, st.booleans()).map(list),
            max_size=2,
        ),
        "recurrence": st.sampled_from([None, _weekly]),
        "deleted_occurrences": _occurrences,
    },
)

PROFILES = {"contact": CONTACT, "task": TASK, "appointment": APPOINTMENT}
