"""The log is for people: one line per event in both formats, dependencies kept below the
service's own events (pgserver's multi-line command dumps at INFO above all)."""

from __future__ import annotations

import json
import logging
import re
import warnings
from pathlib import Path

import pytest

from sync_service.process.logs import setup_logging
from tests.service_process import run_cli, service_env

# key=value pairs, one space apart; a value is bare or a JSON string.
KEY_VALUE_LINE = re.compile(
    r'[a-z_]+=(?:"(?:[^"\\]|\\.)*"|[^\s"=]+)(?: [a-z_]+=(?:"(?:[^"\\]|\\.)*"|[^\s"=]+))*'
)
KEY_VALUE_PAIR = re.compile(r'([a-z_]+)=("(?:[^"\\]|\\.)*"|[^\s"=]+)')


def parse(line: str, fmt: str) -> dict[str, object]:
    """One line as its event's fields; an assertion error if it is not one whole event."""
    if fmt == "json":
        return dict(json.loads(line))
    assert KEY_VALUE_LINE.fullmatch(line), f"not one key=value event: {line!r}"
    pairs = KEY_VALUE_PAIR.findall(line)
    return {k: json.loads(v) if v.startswith('"') else v for k, v in pairs}


def events(text: str, fmt: str) -> list[dict[str, object]]:
    return [parse(line, fmt) for line in text.splitlines()]


def _emit() -> None:
    """One of each kind of event a replica logs, several of them spanning lines."""
    pgserver = logging.getLogger("pgserver")
    pgserver.info("Running commandline:\n%s\nwith kwargs: `%s`", ["initdb", "-D", "x"], {})
    pgserver.warning("Failed postgres command\nstdout:\n%s\n---", "initdb: error")
    logging.getLogger("asyncio").info("poll took 0.2 s")
    own = logging.getLogger("sync_service.runtime.runner")
    own.info("pass done\nsecond line", extra={"mailbox": "a@b.example", "error": "x\ny"})
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        own.exception("pass failed")
    own.warning("with a stack", stack_info=True)
    warnings.warn("old call\nuse the new one", UserWarning, stacklevel=1)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_one_line_per_event_and_dependencies_below_warning_dropped(
    fmt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("INFO", fmt)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            _emit()
    finally:
        logging.captureWarnings(False)
    found = events(capsys.readouterr().err, fmt)
    assert [(e["logger"], e["level"]) for e in found] == [
        ("pgserver", "warning"),
        ("sync_service.runtime.runner", "info"),
        ("sync_service.runtime.runner", "error"),
        ("sync_service.runtime.runner", "warning"),
        ("py.warnings", "warning"),
    ]
    dump, done, failed, stacked, warned = found
    assert dump["event"] == "Failed postgres command\nstdout:\ninitdb: error\n---"
    assert done["event"] == "pass done\nsecond line" and done["error"] == "x\ny"
    assert done["mailbox"] == "a@b.example"
    assert str(failed["exception"]).endswith("ValueError: bad\nvalue")
    assert "_emit" in str(stacked["stack"])
    assert "UserWarning: old call\nuse the new one" in str(warned["event"])


def test_debug_shows_the_dependencies_too(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("DEBUG", "json")
    try:
        logging.getLogger("pgserver").info("Running commandline:\n%s", "pg_ctl start")
    finally:
        logging.captureWarnings(False)
    (event,) = events(capsys.readouterr().err, "json")
    assert event["logger"] == "pgserver" and event["event"] == "Running commandline:\npg_ctl start"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_the_embedded_database_logs_only_the_services_events(fmt: str, tmp_path: Path) -> None:
    """`sync-service migrate` on a new embedded PostgreSQL: pgserver says nothing at INFO."""
    env = service_env(SYNC_DATA_DIR=str(tmp_path / "data"), SYNC_LOG_FORMAT=fmt)
    proc = run_cli(env, "migrate", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["applied"]
    found = events(proc.stderr, fmt)
    said = [str(e["event"]).partition(" data_dir=")[0] for e in found]
    assert said == ["embedded postgres ready", "embedded postgres stopped"]
    assert {e["logger"] for e in found} == {"sync_service.db.embedded"}
