"""Recurrence <-> `t:Recurrence` (RecurrenceType: one pattern element, then one range element)."""

from __future__ import annotations

from datetime import date

from ews_client.errors import ProtocolError
from ews_client.ews.xml import Element, fmt_date, parse_date, sub, t
from ews_client.models import Recurrence, RecurrenceKind, WeekIndex

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")  # fmt: skip
PATTERN_TAGS: dict[RecurrenceKind, str] = {
    "daily": "DailyRecurrence",
    "weekly": "WeeklyRecurrence",
    "absolute_monthly": "AbsoluteMonthlyRecurrence",
    "relative_monthly": "RelativeMonthlyRecurrence",
    "absolute_yearly": "AbsoluteYearlyRecurrence",
    "relative_yearly": "RelativeYearlyRecurrence",
}
KIND_OF_TAG = {v: k for k, v in PATTERN_TAGS.items()}
WEEK_INDEX: dict[str, WeekIndex] = {
    "First": "first", "Second": "second", "Third": "third", "Fourth": "fourth", "Last": "last"
}  # fmt: skip


def _day(name: str) -> str:
    return name.strip().capitalize()


def add_recurrence(parent: Element, rec: Recurrence, first_day: date) -> Element:
    """Write `t:Recurrence`; the range starts at rec.start_date or the first occurrence's day."""
    el = sub(parent, t("Recurrence"))
    pat = sub(el, t(PATTERN_TAGS[rec.kind]))
    if rec.kind in ("daily", "weekly", "absolute_monthly", "relative_monthly"):
        sub(pat, t("Interval"), str(rec.interval))
    if rec.kind == "weekly":
        sub(pat, t("DaysOfWeek"), " ".join(_day(d) for d in rec.days_of_week))
    if rec.kind in ("relative_monthly", "relative_yearly"):
        sub(pat, t("DaysOfWeek"), _day(rec.days_of_week[0]) if rec.days_of_week else "Monday")
        sub(pat, t("DayOfWeekIndex"), (rec.week_index or "first").capitalize())
    if rec.kind in ("absolute_monthly", "absolute_yearly"):
        sub(pat, t("DayOfMonth"), str(rec.day_of_month or first_day.day))
    if rec.kind in ("absolute_yearly", "relative_yearly"):
        sub(pat, t("Month"), MONTHS[(rec.month or first_day.month) - 1])
    _add_range(el, rec, rec.start_date or first_day)
    return el


def _add_range(el: Element, rec: Recurrence, start: date) -> None:
    if rec.end_date is not None:
        rng = sub(el, t("EndDateRecurrence"))
        sub(rng, t("StartDate"), fmt_date(start))
        sub(rng, t("EndDate"), fmt_date(rec.end_date))
    elif rec.occurrences is not None:
        rng = sub(el, t("NumberedRecurrence"))
        sub(rng, t("StartDate"), fmt_date(start))
        sub(rng, t("NumberOfOccurrences"), str(rec.occurrences))
    else:
        rng = sub(el, t("NoEndRecurrence"))
        sub(rng, t("StartDate"), fmt_date(start))


def _int(el: Element, tag: str) -> int | None:
    text = el.findtext(t(tag))
    if text is None:
        return None
    try:
        return int(text)
    except ValueError as exc:
        raise ProtocolError(f"bad {tag} {text!r}") from exc


def read_recurrence(el: Element | None) -> Recurrence | None:
    if el is None or len(el) < 2:
        return None
    pat, rng = el[0], el[1]
    kind = KIND_OF_TAG.get(pat.tag.split("}")[-1])
    if kind is None:
        raise ProtocolError(f"unsupported recurrence pattern {pat.tag}")
    days = (pat.findtext(t("DaysOfWeek")) or "").split()
    month = pat.findtext(t("Month"))
    index = pat.findtext(t("DayOfWeekIndex"))
    start = rng.findtext(t("StartDate"))
    end = rng.findtext(t("EndDate"))
    return Recurrence(
        kind=kind,
        interval=_int(pat, "Interval") or 1,
        days_of_week=tuple(d.lower() for d in days),
        day_of_month=_int(pat, "DayOfMonth"),
        month=MONTHS.index(month) + 1 if month in MONTHS else None,
        week_index=WEEK_INDEX.get(index) if index else None,
        start_date=parse_date(start) if start else None,
        end_date=parse_date(end) if end else None,
        occurrences=_int(rng, "NumberOfOccurrences"),
    )
