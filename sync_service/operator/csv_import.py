"""Parsing of a mailbox import file (pure): valid rows, and invalid ones with their line numbers.

Columns: `crm_user_id,email,server` (required) and `group,contacts,calendar,tasks` (optional),
in any order, with a header line. Checks that need the database (unknown server, an address
owned by another CRM user) are done by the caller on the parsed rows.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from sync_service.db.store import ENTITY_MODES, EntityMode
from sync_service.operator.server_specs import InvalidInput

REQUIRED = ("crm_user_id", "email", "server")
OPTIONAL = ("group", "contacts", "calendar", "tasks")
MODE_COLUMNS = ("contacts", "calendar", "tasks")
# Bounds of what an operator names: the address of RFC 5321 (254 characters), the server
# name's own CHECK (63), and identifiers far above real ones yet far below what one index row
# holds (a btree row stops at 2,704 bytes; 255 characters of UTF-8 take at most 1,020).
ADDRESS_MAX = 254
NAME_MAX = 63
IDENTIFIER_MAX = 255
# C0 controls, DEL and C1 controls: never part of a name or an address, and raw in a log line
# they would rewrite the operator's terminal (ESC) or cut the line (NUL, CR, LF).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Deliberately simple: one @, a dotted domain, no spaces, controls or address-list punctuation.
# Written so that it means the same in ECMA-262 (the OpenAPI document states it) and, with
# fullmatch, in Python (where a bare `$` would also accept a trailing newline).
EMAIL_PATTERN = (
    r"^[^@\s\x00-\x1f\x7f-\x9f,;<>\"']+"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$"
)
_EMAIL = re.compile(EMAIL_PATTERN)
# The bound of each free-text column (the modes are one of their choices).
LIMITS = {
    "crm_user_id": IDENTIFIER_MAX,
    "email": ADDRESS_MAX,
    "server": NAME_MAX,
    "group": IDENTIFIER_MAX,
}


def valid_email(value: str) -> bool:
    return len(value) <= ADDRESS_MAX and bool(_EMAIL.fullmatch(value))


def text_problem(value: str, max_length: int) -> str | None:
    """Why `value` cannot be a name, address or identifier of at most `max_length`, or None."""
    found = _CONTROL.search(value)
    if found is not None:
        code = f"U+{ord(found.group()):04X}"
        return f"must not hold control characters ({code} at character {found.start() + 1})"
    if len(value) > max_length:
        return f"at most {max_length} characters ({len(value)} given)"
    return None


def shown(value: str, limit: int = 64) -> str:
    """`value` quoted for a message: escaped (repr) and cut, so that it cannot flood one."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


@dataclass(frozen=True, slots=True)
class Row:
    line: int
    crm_user_id: str
    email: str
    server: str
    group: str | None
    modes: tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    message: str
    field: str | None = None  # the column at fault; None: the row as a whole


@dataclass(frozen=True, slots=True)
class Parsed:
    rows: list[Row]
    errors: list[RowError]


def parse_csv(text: str) -> Parsed:
    """Rows of the file; raises InvalidInput when the header itself is unusable."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = _header(reader)
    rows: list[Row] = []
    errors: list[RowError] = []
    seen_ids: dict[str, int] = {}
    seen_emails: dict[str, int] = {}
    for record in _records(reader):
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        try:
            row = _row(line, header, record)
            _check_unique(row, seen_ids, seen_emails)
        except InvalidInput as exc:
            errors.append(RowError(line, exc.message, exc.field))
            continue
        rows.append(row)
    return Parsed(rows, errors)


def _header(reader: Iterator[list[str]]) -> list[str]:
    try:
        names = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise InvalidInput("header", "the file is empty; expected a header line") from None
    except csv.Error as exc:
        raise InvalidInput("header", f"unreadable CSV: {exc}") from None
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise InvalidInput("header", f"missing column(s): {', '.join(missing)}")
    unknown = [c for c in names if c not in REQUIRED + OPTIONAL]
    if unknown:
        raise InvalidInput("header", f"unknown column(s): {', '.join(unknown)}")
    if len(set(names)) != len(names):
        raise InvalidInput("header", "a column appears twice")
    return names


def _records(reader: Iterator[list[str]]) -> Iterator[list[str]]:
    try:
        yield from reader
    except csv.Error as exc:  # e.g. a cell over the csv module's size limit: the file is unusable
        raise InvalidInput("file", f"unreadable CSV: {exc}") from None


def _row(line: int, header: list[str], record: list[str]) -> Row:
    if len(record) != len(header):
        raise InvalidInput("row", f"expected {len(header)} columns, found {len(record)}")
    cells = {name: value.strip() for name, value in zip(header, record, strict=True)}
    for name in header:
        _check_cell(name, cells[name])
    if not valid_email(cells["email"]):
        raise InvalidInput("email", f"malformed address {shown(cells['email'])}")
    modes = tuple(_mode(column, cells.get(column, "")) for column in MODE_COLUMNS)
    return Row(
        line=line,
        crm_user_id=cells["crm_user_id"],
        email=cells["email"].lower(),
        server=cells["server"],
        group=cells.get("group") or None,
        modes=(modes[0], modes[1], modes[2]),
    )


def _check_cell(name: str, value: str) -> None:
    """Refuse a cell before anything stores it: empty where required, controls, length."""
    if not value:
        if name in REQUIRED:
            raise InvalidInput(name, f"{name} is empty")
        return
    problem = text_problem(value, LIMITS.get(name, IDENTIFIER_MAX))
    if problem is not None:
        raise InvalidInput(name, f"{name} {problem}")


def _mode(column: str, value: str) -> str:
    mode = value.lower() or EntityMode.TWO_WAY
    if mode not in ENTITY_MODES:
        raise InvalidInput(
            column, f"{column} mode {shown(value)} is not one of {', '.join(ENTITY_MODES)}"
        )
    return mode


def _check_unique(row: Row, seen_ids: dict[str, int], seen_emails: dict[str, int]) -> None:
    if row.crm_user_id in seen_ids:
        first = seen_ids[row.crm_user_id]
        raise InvalidInput(
            "crm_user_id", f"duplicate of line {first} (crm_user_id {row.crm_user_id})"
        )
    if row.email in seen_emails:
        raise InvalidInput("email", f"duplicate of line {seen_emails[row.email]} ({row.email})")
    seen_ids[row.crm_user_id] = row.line
    seen_emails[row.email] = row.line


R = TypeVar("R")


def read_rows(
    text: str,
    header_of: Callable[[Iterator[list[str]]], list[str]],
    row_of: Callable[[int, list[str], list[str]], R],
    key_of: Callable[[R], Hashable],
    duplicate_field: str,
) -> tuple[list[R], list[RowError]]:
    """The rows of an operator's CSV file (a header line, then rows; blank lines skipped), and
    the invalid ones with their line numbers: `row_of(line, header, cells)` raises InvalidInput
    for a bad row, and a row whose `key_of` an earlier line had is a duplicate of it, reported
    on `duplicate_field`. InvalidInput when the header or the file is unusable."""
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    header = header_of(reader)
    rows: list[R] = []
    errors: list[RowError] = []
    seen: dict[Hashable, int] = {}
    for record in _records(reader):
        if not any(cell.strip() for cell in record):
            continue
        line = reader.line_num
        try:
            row = row_of(line, header, record)
            first = seen.setdefault(key_of(row), line)
            if first != line:
                raise InvalidInput(duplicate_field, f"duplicate of line {first}")
        except InvalidInput as exc:
            errors.append(RowError(line, exc.message, exc.field))
            continue
        rows.append(row)
    return rows, errors
