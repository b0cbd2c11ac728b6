from __future__ import annotations

import os
from datetime import time
from pathlib import Path

import pytest

from sync_service.config import ConfigError, load_settings, parse_duration
from tests.service_process import run_cli, service_env


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.startswith("SYNC_"):
            monkeypatch.delenv(key)
    return monkeypatch


def test_defaults_work_on_a_laptop(clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.database.resolved_url() is None  # embedded PostgreSQL
    assert settings.api.api_bind == "127.0.0.1:8080"
    assert settings.limits.max_concurrent_mailboxes == 500
    assert settings.limits.max_consecutive_failures == 10
    assert settings.retention.retention_days == 14
    assert settings.schedule.complete_at == time(2, 0)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("30s", 30.0), ("15m", 900.0), ("2h", 7200.0), ("1d", 86400.0), ("250ms", 0.25)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_durations_from_env(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SYNC_EXPRESS_INTERVAL", "5m")
    assert load_settings().schedule.express_interval == 300.0


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("SYNC_MAX_CONCURRENT_MAILBOXES", "many"),
        ("SYNC_EXPRESS_INTERVAL", "soon"),
        ("SYNC_API_BIND", "localhost"),
        ("SYNC_LOG_FORMAT", "xml"),
        ("SYNC_ROLES", "engine,chef"),
        ("SYNC_COMPLETE_AT", "25:99"),
    ],
)
def test_invalid_value_names_the_variable(
    clean_env: pytest.MonkeyPatch, var: str, value: str
) -> None:
    clean_env.setenv(var, value)
    with pytest.raises(ConfigError, match=var):
        load_settings()


def test_secret_from_file_and_never_in_repr(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cr3t-token\n")
    clean_env.setenv("SYNC_API_TOKEN_FILE", str(secret))
    settings = load_settings()
    token = settings.api.resolved_token()
    assert token is not None and token.get_secret_value() == "s3cr3t-token"
    assert "s3cr3t" not in repr(settings)


def test_missing_secret_file_is_a_config_error(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SYNC_API_TOKEN_FILE", "/nonexistent/token")
    with pytest.raises(ConfigError, match="SYNC_API_TOKEN_FILE"):
        load_settings()


def test_invalid_setting_exits_2_with_one_line() -> None:
    env = service_env(SYNC_RETENTION_DAYS="forever")
    proc = run_cli(env, "migrate", timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "SYNC_RETENTION_DAYS" in lines[0], proc.stderr


def test_url_is_not_echoed_in_errors(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SYNC_DATABASE_POOL_SIZE", "1")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "SYNC_DATABASE_POOL_SIZE" in str(info.value)
