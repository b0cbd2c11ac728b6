from pathlib import Path

from sync_service.config import documented_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text()
    missing = [name for name, _ in documented_settings() if f"`{name}`" not in text]
    assert missing == []
