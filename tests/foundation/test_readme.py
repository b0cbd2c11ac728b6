from pathlib import Path

from sync_service.config import documented_settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text()
    missing = [name for name, _ in documented_settings() if f"`{name}`" not in text]
    assert missing == []


def test_the_readme_names_every_api_resource() -> None:
    from sync_service.operator.api_routes import PREFIX, ROUTES

    text = README.read_text()
    resources = {route.path.removeprefix(f"{PREFIX}/").split("/")[0] for route in ROUTES}
    assert sorted(r for r in resources if f"`{r}`" not in text) == []
