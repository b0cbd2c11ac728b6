"""What the sync filters judge of one side: a contact's addresses, whether one is blocked,
whether an appointment meets a time window. Pure."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import UTC, datetime, time, timedelta

from ews_client.models import Appointment, Contact, Recurrence

from .records import CrmAppointment, CrmContact


def addresses(side: CrmContact | Contact) -> Iterable[str]:
    if isinstance(side, Contact):
        return side.emails
    return (a for a in (side.email, side.email2, side.email3) if a)


def blocked(address: str, block: Collection[str]) -> bool:
    address = address.strip().lower()
    domain = address.rpartition("@")[2]
    parts = domain.split(".")
    domains = {".".join(parts[i:]) for i in range(len(parts))}
    return any(entry == address or entry in domains for entry in block)


def in_window(side: CrmAppointment | Appointment, first: datetime, last: datetime) -> bool:
    """Whether an appointment (a series: any of its occurrences) meets [first, last]."""
    if isinstance(side, Appointment):
        start, end = side.start, side.end
    else:
        start, end = side.starts_at, side.ends_at
    if start is None:
        return True  # nothing to place in time: a filter on time cannot judge it
    if side.recurrence is not None:
        until = _series_end(side.recurrence)
        return start <= last and (until is None or until >= first)
    return start <= last and (end or start) >= first


def _series_end(recurrence: Recurrence) -> datetime | None:
    """The end of a series' last day; None when it never ends or ends after a count.

    A count is not expanded here: such a series counts as running on (it is kept, never
    wrongly set aside)."""
    if recurrence.end_date is None:
        return None
    return datetime.combine(recurrence.end_date + timedelta(days=1), time(), UTC)
