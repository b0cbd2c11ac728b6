import pytest


@pytest.fixture(params=["ews", "graph"])
def backend(request: pytest.FixtureRequest) -> str:
    """Every end-to-end scenario runs against both Exchange backends."""
    return str(request.param)
