"""The tree keeps ARCHITECTURE.md's import rules, and the checker catches each kind of break."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.import_rules import RULES, cycles, import_graph, violations

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(REPO, ["sync_service", "ews_client"])


def test_the_product_keeps_every_import_rule(graph: dict[str, set[str]]) -> None:
    assert violations(graph) == []


def test_the_product_has_no_import_circle(graph: dict[str, set[str]]) -> None:
    assert cycles(graph) == []


def test_the_graph_sees_the_real_tree(graph: dict[str, set[str]]) -> None:
    """A checker that read nothing would pass everything."""
    assert len(graph) > 100
    assert "sync_service.planning.mapping" in graph["sync_service.planning.planner"]
    assert "lxml.etree" in graph["ews_client.ews.xml"]
    assert "sync_service.config" in graph["sync_service.process.app"]


def write(top: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = top / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_a_pure_layer_importing_an_io_library_is_caught(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "ews_client/__init__.py": "",
            "ews_client/ews/__init__.py": "",
            "ews_client/ews/sync.py": "def f():\n    import aiohttp\n",
            "sync_service/__init__.py": "",
            "sync_service/planning/__init__.py": "",
            "sync_service/planning/plan.py": "from asyncpg import Connection\n",
        },
    )
    found = violations(import_graph(tmp_path, ["ews_client", "sync_service"]))
    assert "pure layers do no I/O: ews_client.ews.sync -> aiohttp" in found
    assert "pure layers do no I/O: sync_service.planning.plan -> asyncpg.Connection" in found


def test_the_simulator_importing_client_protocol_code_is_caught(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "ews_client/__init__.py": "",
            "ews_client/models.py": "",
            "ews_client/graph/__init__.py": "",
            "ews_client/graph/wire.py": "",
            "ews_client/simulator/__init__.py": "",
            "ews_client/simulator/view.py": (
                "from ews_client.models import Contact\nfrom ..graph import wire\n"
            ),
        },
    )
    found = violations(import_graph(tmp_path, ["ews_client"]))
    assert found == [
        "the simulator shares no protocol, parsing or I/O code with the client: "
        "ews_client.simulator.view -> ews_client.graph.wire"
    ]


def test_a_layer_importing_upwards_is_caught(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "sync_service/__init__.py": "",
            "sync_service/metrics.py": "",
            "sync_service/db/__init__.py": "",
            "sync_service/db/store.py": "from sync_service import metrics\n",
            "sync_service/runtime/__init__.py": "",
            "sync_service/runtime/passes.py": "from sync_service.db import store\n",
            "sync_service/operator/__init__.py": "",
            "sync_service/operator/cli.py": "from sync_service.runtime import passes\n",
            "sync_service/crm/__init__.py": "",
            "sync_service/crm/adapter.py": "from sync_service.operator.cli import main\n",
        },
    )
    assert violations(import_graph(tmp_path, ["sync_service"])) == [
        "sync_service.crm imports no layer above it: sync_service.crm.adapter -> "
        "sync_service.operator.cli"
    ]


def test_the_product_importing_the_simulator_is_caught(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "ews_client/__init__.py": "",
            "ews_client/simulator/__init__.py": "",
            "sync_service/__init__.py": "",
            "sync_service/demo.py": "import ews_client.simulator\n",
        },
    )
    found = violations(import_graph(tmp_path, ["ews_client", "sync_service"]))
    assert found == [
        "the product never depends on the simulator: sync_service.demo -> ews_client.simulator"
    ]


def test_circles_are_found_lazy_and_type_only_imports_included(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.a import A\n",
            "pkg/a.py": "from . import values\nA = 1\n",
            "pkg/values.py": "",
            "pkg/b.py": "def f():\n    from pkg.c import g\n",
            "pkg/c.py": "import typing\nif typing.TYPE_CHECKING:\n    from pkg import b\n",
        },
    )
    # `from . import values` in pkg.a is an import of pkg.values, not of pkg's __init__
    assert cycles(import_graph(tmp_path, ["pkg"])) == [["pkg.b", "pkg.c"]]


def test_every_rule_judges_something(graph: dict[str, set[str]]) -> None:
    """A rule whose sources match no module of the tree would never fail."""
    for rule in RULES:
        assert any(m.startswith(rule.sources) for m in graph), rule.name


def test_the_service_reaching_into_the_client_is_caught(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "ews_client/__init__.py": "",
            "ews_client/models.py": "",
            "ews_client/io/__init__.py": "",
            "ews_client/io/ews.py": "",
            "sync_service/__init__.py": "",
            "sync_service/runtime/__init__.py": "",
            "sync_service/runtime/backends.py": (
                "from ews_client import EwsClient\nfrom ews_client.models import Item\n"
                "from ews_client.io.ews import EwsClient as Raw\n"
            ),
        },
    )
    found = violations(import_graph(tmp_path, ["ews_client", "sync_service"]))
    assert found == [
        "the service uses the Exchange client through its public face: "
        "sync_service.runtime.backends -> ews_client.io.ews"
    ]


def test_importing_the_models_loads_no_client_or_io_library() -> None:
    """The planning core and the simulator import `ews_client.models`: the package's public
    face must not drag the clients (aiohttp, msal) in with it."""
    code = "import sys, ews_client.models; print(sorted({'aiohttp', 'msal'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_public_name_resolves() -> None:
    import ews_client

    assert all(getattr(ews_client, name) is not None for name in ews_client.__all__)
    with pytest.raises(AttributeError):
        _ = ews_client.Nothing  # type: ignore[attr-defined]
