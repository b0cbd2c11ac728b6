"""ARCHITECTURE.md names real files and real methods (a map that lies is worse than none)."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "ARCHITECTURE.md").read_text()
SOURCES = {
    p: p.read_text() for top in ("sync_service", "ews_client") for p in (REPO / top).rglob("*.py")
}


def named_paths() -> set[str]:
    return set(re.findall(r"`([\w./-]+\.(?:py|sql|md))`", DOC))


def test_every_file_it_names_exists() -> None:
    bases = (REPO, REPO / "sync_service", REPO / "ews_client")
    missing = [p for p in named_paths() if not any((b / p).exists() for b in bases)]
    assert len(named_paths()) > 20
    assert missing == []


def test_every_method_it_names_exists() -> None:
    named = set(re.findall(r"`([A-Z]\w+)\.(\w+)`", DOC))
    assert len(named) >= 6
    missing = [
        f"{cls}.{method}"
        for cls, method in named
        if not any(
            f"class {cls}" in text and re.search(rf"def {method}\b", text)
            for text in SOURCES.values()
        )
    ]
    assert missing == []
