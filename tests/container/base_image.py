"""A Debian bookworm base image made from packages only, for when no registry can be reached.

The Containerfile's default base (python:3.11-slim) comes from Docker Hub. Where that cannot be
pulled, `debootstrap` makes the same Debian release's root filesystem from the package mirror,
with Debian's Python 3.11 as `python` and pip, and `docker import` turns it into an image the
Containerfile builds on (`--build-arg BASE=...`). The tarball is cached: its key is a hash of
everything that goes into it, so a second run imports it in seconds.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.container.engine import unmount_under

CACHE = Path("/var/tmp/sync-service-base.tar")
# The host's trust store: where the package and Python index proxies use their own
# certificate authority, the image must trust it too.
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
RECIPE_VERSION = "1"  # bump when the steps below change what the tarball holds


@dataclass(frozen=True, slots=True)
class BaseRecipe:
    suite: str = "bookworm"
    mirror: str = "http://deb.debian.org/debian"
    # python-is-python3: the Containerfile's HEALTHCHECK runs `python`, as in python:3.11-slim
    packages: tuple[str, ...] = ("python3", "python3-pip", "python-is-python3", "ca-certificates")

    def key(self, ca_bundle: bytes) -> str:
        """Hash of every input of the tarball: recipe, packages, mirror and trusted CAs."""
        digest = hashlib.sha256()
        for part in (RECIPE_VERSION, self.suite, self.mirror, *self.packages):
            digest.update(part.encode() + b"\0")
        digest.update(ca_bundle)
        return digest.hexdigest()[:16]


class BaseImageError(RuntimeError):
    """The base root filesystem could not be made; the message names the failed step."""


def _run(step: str, cmd: list[str], timeout: float) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise BaseImageError(f"{step}: {' '.join(cmd[:3])} ... exited {done.returncode}\n{tail}")


def _finish_rootfs(root: Path, ca_bundle: bytes) -> None:
    """What the image needs beyond the packages: the CAs, pip allowed to install system-wide."""
    (root / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
    (root / "etc/ssl/certs/ca-certificates.crt").write_bytes(ca_bundle)
    (root / "etc/pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
    # Debian marks its Python externally managed (PEP 668); in an image pip owns /usr/local.
    for marker in root.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
        marker.unlink()
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for entry in (root / cache).glob("*"):
            if entry.is_file():
                entry.unlink()


def build_tarball(recipe: BaseRecipe, out: Path, ca_bundle: bytes) -> None:
    """debootstrap the root filesystem into a temporary directory and tar it as `out`."""
    with tempfile.TemporaryDirectory(prefix="sync-base-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "root"
        try:
            include = ",".join(recipe.packages)
            cmd = ["debootstrap", "--variant=minbase", f"--include={include}", recipe.suite]
            _run("debootstrap", [*cmd, str(root), recipe.mirror], timeout=900)
        finally:
            unmount_under(root)  # what debootstrap mounted if it stopped half-way
        _finish_rootfs(root, ca_bundle)
        partial = out.with_name(out.name + ".partial")
        _run("tar", ["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."], 600)
        partial.replace(out)


def cached_tarball(recipe: BaseRecipe, cache: Path = CACHE) -> tuple[Path, str]:
    """(the tarball, its key): the cached one when its key matches, else built anew."""
    if not HOST_CA.exists():
        raise BaseImageError(f"no CA bundle at {HOST_CA}: install ca-certificates")
    if shutil.which("debootstrap") is None:
        raise BaseImageError("debootstrap is not installed: apt-get install debootstrap")
    ca_bundle = HOST_CA.read_bytes()
    key = recipe.key(ca_bundle)
    stamp = cache.with_name(cache.name + ".key")
    if not (cache.exists() and stamp.exists() and stamp.read_text().strip() == key):
        build_tarball(recipe, cache, ca_bundle)
        stamp.write_text(key + "\n")
    return cache, key
