"""Structured logs: one event per line, key=value for humans or JSON for machines.

A value is written so that it cannot forge or garble a line whatever it holds (a mailbox
address, a path, a message from elsewhere): control characters (C0, DEL, C1) and other
unprintable ones never reach the output raw, in either format; they are escaped as in JSON.
A multi-line message or traceback is therefore one line too.

The log is the service's: other libraries' events below WARNING (pgserver's command dumps,
asyncio's notes) are dropped unless SYNC_LOG_LEVEL=DEBUG, and Python warnings are logged as
events instead of printed over several lines.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

# Fields a caller may attach with `log.info("...", extra={...})`.
_FIELDS = ("mailbox", "server", "pass_kind", "entity", "counts", "duration_ms", "error", "job")
_BASE = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
# The service's own loggers: every level they log at is shown.
_OWN = frozenset({"sync_service", "ews_client"})
# What makes a key=value value need quotes: a separator, a quote, an equals sign.
_SPECIAL = re.compile(r'[\s"=]')


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "event": record.getMessage(),
    }
    for key, value in vars(record).items():
        if key not in _BASE and not key.startswith("_"):
            out[key] = value
    if record.exc_info:
        out["exception"] = logging.Formatter().formatException(record.exc_info)
    if record.stack_info:
        out["stack"] = record.stack_info
    return out


class DependencyFilter(logging.Filter):
    """Passes the service's own events, and other libraries' from `floor` up."""

    def __init__(self, floor: int) -> None:
        super().__init__()
        self.floor = floor

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.floor or record.name.partition(".")[0] in _OWN


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # ensure_ascii (the default) escapes everything but printable ASCII: C0, DEL, C1 too.
        return json.dumps(_fields(record), default=str)


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_kv(v)}" for k, v in _fields(record).items())


def _kv(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if not text or _SPECIAL.search(text) or not text.isprintable():
        return json.dumps(text)  # quoted, every unprintable character escaped
    return text


def setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    debugging = root.level <= logging.DEBUG
    handler.addFilter(DependencyFilter(logging.DEBUG if debugging else logging.WARNING))
    logging.captureWarnings(True)  # a warning is one event (py.warnings), not two raw lines
    # aiohttp's access log would log every probe; keep it for debugging only.
    logging.getLogger("aiohttp.access").setLevel(max(logging.WARNING, root.level))
    # While the database is away asyncpg's pool warns, with a traceback, about once a second
    # that it cannot restore its connections; the worker and /readyz already say so once.
    logging.getLogger("asyncpg.pool").setLevel(max(logging.ERROR, root.level))
