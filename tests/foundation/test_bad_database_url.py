"""A malformed SYNC_DATABASE_URL ends the command with exit 2 and one line on stderr that names
the variable and what is wrong (never the URL, which may hold a password), not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sync_service.process.main import database_url_problem

SECRET = "s3cret-pw"
BAD = {
    "postgresql://u@h:notaport/db": "a port is not a number",
    f"postgresql://u:{SECRET}@h:99999/db": "a port is not a number",
    f"postgresql://u:{SECRET}@h:0/db": "a port is not a number",
    "postgresql://h/db?port=abc": "a port is not a number",
    f"postgresql://u:pa/{SECRET}@h/db": "a port is not a number",  # "/" in a password
    "foo": "must be a URL postgresql://",
    f"http://u:{SECRET}@h/db": "must be a URL postgresql://",
    f"postgresql://u:{SECRET}@[::1/db": "not a URL",
    # found by the driver itself, before it connects
    f"postgresql://u:{SECRET}@127.0.0.1/db?sslmode=bogus": "`sslmode` parameter must be",
}
GOOD = [
    "postgresql://u:p@h:5432/db",
    "postgres://h/db",
    "postgresql:///db?host=/var/run/postgresql",
    "postgresql://h1:5432,h2:5433/db",
    "postgresql://[::1]:5432/db",
    "postgresql://u:p%2Fq@h/db?port=5433",
]


def _run(url: str, *command: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNC_")}
    env["SYNC_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "sync_service", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _assert_one_line(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sync-service: invalid configuration: SYNC_DATABASE_URL: ")
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.stderr and SECRET not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("url", sorted(BAD))
def test_migrate_with_a_malformed_url_exits_2_with_one_line(url: str) -> None:
    _assert_one_line(_run(url, "migrate"), BAD[url])


@pytest.mark.parametrize("command", [["run"], ["servers", "list"], ["status", "--json"]])
def test_every_command_checks_the_url_first(command: list[str]) -> None:
    _assert_one_line(_run("postgresql://u@h:notaport/db", *command), "a port is not a number")


@pytest.mark.parametrize("url", GOOD)
def test_well_formed_urls_pass_the_check(url: str) -> None:
    assert database_url_problem(url) is None


def test_no_url_means_the_embedded_database() -> None:
    assert database_url_problem(None) is None
