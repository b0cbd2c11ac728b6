"""The Containerfile's promises, checked by parsing it (make test builds no image: there is no
registry to pull python:3.11-slim from here, and a build from Debian packages takes minutes)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMPILERS = ("build-essential", "gcc", "g++", "clang", "make")
# Debian's fixed system users (base-passwd), present in every Debian-based image such as
# python:3.11-slim: `useradd` of one of these names fails the build.
BASE_PASSWD = Path("/usr/share/base-passwd/passwd.master")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "a continuation line runs off the end of the file"
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    """The stages' instructions, each FROM with the global ARGs' defaults put in (the base the
    image has when built without --build-arg)."""
    found: list[list[tuple[str, str]]] = []
    defaults: dict[str, str] = {}
    for word, args in instructions(text):
        if word == "ARG" and not found:  # a global ARG: only FROM lines may use it
            name, _, default = args.partition("=")
            defaults[name] = default
            continue
        if word == "FROM":
            for name, default in defaults.items():
                args = args.replace(f"${{{name}}}", default)
            found.append([])
        assert found, "an instruction before the first FROM"
        found[-1].append((word, args))
    return found


@pytest.fixture(scope="module")
def parsed() -> list[list[tuple[str, str]]]:
    return stages((REPO / "Containerfile").read_text())


def values(stage: list[tuple[str, str]], name: str) -> list[str]:
    return [args for word, args in stage if word == name]


def test_multi_stage_on_python_311_slim(parsed: list[list[tuple[str, str]]]) -> None:
    assert len(parsed) == 2
    builder, final = parsed
    assert values(builder, "FROM") == ["python:3.11-slim AS builder"]
    assert values(final, "FROM") == ["python:3.11-slim"]
    assert any("build-essential" in run for run in values(builder, "RUN"))
    # the project is built from pyproject.toml in the builder and installed from its wheels
    assert any("pyproject.toml" in copy for copy in values(builder, "COPY"))
    assert any(run.startswith("pip wheel") and run.endswith(" .") for run in values(builder, "RUN"))
    assert any("pip install --no-index --find-links=/wheels" in r for r in values(final, "RUN"))


def test_final_stage_has_no_compilers(parsed: list[list[tuple[str, str]]]) -> None:
    final = parsed[-1]
    for run in values(final, "RUN"):
        words = shlex.split(run)
        assert "apt-get" not in words or "install" not in words, run
        assert not set(words) & set(COMPILERS), run


def test_non_root_entrypoint_and_runtime_settings(parsed: list[list[tuple[str, str]]]) -> None:
    final = parsed[-1]
    (user,) = values(final, "USER")
    assert user.split(":")[0] not in ("root", "0")
    assert json.loads(values(final, "ENTRYPOINT")[0]) == ["sync-service"]
    assert json.loads(values(final, "CMD")[0]) == ["run"]
    assert values(final, "EXPOSE") == ["8080"]
    assert values(final, "STOPSIGNAL") == ["SIGTERM"]
    env = " ".join(values(final, "ENV"))
    assert "SYNC_API_BIND=0.0.0.0:8080" in shlex.split(env)
    assert "PYTHONDONTWRITEBYTECODE=1" in shlex.split(env)  # a read-only root filesystem works
    assert not values(final, "VOLUME")  # state lives in the database only


def test_healthcheck_uses_python_on_healthz(parsed: list[list[tuple[str, str]]]) -> None:
    (check,) = values(parsed[-1], "HEALTHCHECK")
    options, _, command = check.partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"]
    assert "/healthz" in argv[2] and "curl" not in check and "wget" not in check
    compile(argv[2], "<healthcheck>", "exec")  # the probe is valid Python


def test_copied_sources_exist(parsed: list[list[tuple[str, str]]]) -> None:
    for word, args in parsed[0]:
        if word == "COPY" and not args.startswith("--from"):
            for source in shlex.split(args)[:-1]:
                assert (REPO / source).exists(), source


def test_the_user_is_new_to_a_debian_base_image(parsed: list[list[tuple[str, str]]]) -> None:
    (useradd,) = [r for r in values(parsed[-1], "RUN") if r.startswith("useradd")]
    name = shlex.split(useradd)[-1]
    assert BASE_PASSWD.exists(), "base-passwd's list is missing: not a Debian machine?"
    taken = {line.split(":")[0] for line in BASE_PASSWD.read_text().splitlines() if line}
    assert "sync" in taken  # Debian's own `sync` user (uid 4): the name cannot be reused
    assert name not in taken, f"useradd {name}: Debian's base image already has that user"
    assert "--uid 10001" in useradd and values(parsed[-1], "USER") == ["10001:10001"]
