"""The image of the Containerfile, built by a private Docker engine on a Debian base of its own."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from tests.container.base_image import BaseRecipe, cached_tarball
from tests.container.engine import DockerEngine

REPO = Path(__file__).resolve().parents[2]
CONTAINERFILE = REPO / "Containerfile"
BUILD_TIMEOUT_S = 1500.0  # pip fetches and builds every dependency inside the builder stage
BOOKWORM = BaseRecipe()  # python:3.11-slim's Debian release, with its Python 3.11


def copied_sources(containerfile: str) -> list[str]:
    """What the Containerfile COPYs from the build context (not from another stage)."""
    sources: list[str] = []
    for line in containerfile.splitlines():
        words = shlex.split(line, comments=True) if line.startswith("COPY ") else []
        if words and not any(w.startswith("--from") for w in words):
            sources += words[1:-1]
    return sources


def stage_context(dest: Path) -> Path:
    """A build context of the Containerfile and only the files it copies, from this checkout:
    the checkout's .venv and .git would be gigabytes sent to the engine for nothing."""
    text = CONTAINERFILE.read_text()
    (dest / "Containerfile").write_text(text)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for source in copied_sources(text):
        origin = REPO / source
        if origin.is_dir():
            shutil.copytree(origin, dest / source, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(origin, dest / source)
    return dest


def import_base(engine: DockerEngine, recipe: BaseRecipe = BOOKWORM) -> str:
    """The Debian base image in the engine, from the cached tarball; its tag."""
    tarball, key = cached_tarball(recipe)
    tag = f"sync-service-base:{key}"
    engine.docker("import", str(tarball), tag, timeout=600)
    return tag


def build_image(engine: DockerEngine, base: str, context: Path, tag: str) -> str:
    """`docker build` of the Containerfile on `base`, over the host's network; the tag."""
    engine.docker(
        "build", "--network", "host", "--build-arg", f"BASE={base}",
        "--tag", tag, "--file", str(context / "Containerfile"), str(context),
        timeout=BUILD_TIMEOUT_S,
    )  # fmt: skip
    return tag
