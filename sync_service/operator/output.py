"""Human and machine output of the CLI: aligned tables, JSON, and a progress bar on terminals;
and the one way its commands read an input file."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sync_service.operator.operations import to_jsonable
from sync_service.operator.server_specs import InvalidInput


def dumps(value: Any) -> str:
    return json.dumps(to_jsonable(value), indent=2, sort_keys=False)


def print_json(value: Any, out: TextIO | None = None) -> None:
    print(dumps(value), file=out or sys.stdout)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def table(headers: list[str], rows: list[list[Any]], out: TextIO | None = None) -> None:
    """An aligned table with a header line; nothing but a note when there are no rows."""
    stream = out or sys.stdout
    if not rows:
        print("(none)", file=stream)
        return
    text = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) for i, h in enumerate(headers)]
    for line in [headers, *text]:
        print(
            "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip(), file=stream
        )


def items_written(counts: dict[str, Any] | None) -> int:
    """Total of a run's {entity: {direction: {operation: n}}} counts."""
    total = 0
    for directions in (counts or {}).values():
        for operations in directions.values() if isinstance(directions, dict) else ():
            if isinstance(operations, dict):
                total += sum(n for n in operations.values() if isinstance(n, int))
    return total


class Progress:
    """A bar redrawn in place on a terminal; plain lines (only when the count moves) otherwise."""

    def __init__(self, total: int, label: str, out: TextIO | None = None) -> None:
        self.total = total
        self.label = label
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self.last = -1

    def update(self, done: int) -> None:
        if done == self.last:
            return
        self.last = done
        if self.tty:
            filled = int(30 * done / self.total) if self.total else 30
            bar = "#" * filled + "." * (30 - filled)
            self.out.write(f"\r[{bar}] {done}/{self.total} {self.label}")
        else:
            self.out.write(f"{done}/{self.total} {self.label}\n")
        self.out.flush()

    def close(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()


def read_input(name: str) -> str:
    """A command's input file as text (`-`: standard input); UTF-8, a BOM allowed."""
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput("file", f"cannot read {name}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInput("file", f"{name} is not UTF-8 text") from None
