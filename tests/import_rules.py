"""The import rules of ARCHITECTURE.md as data, and a checker that reads source with `ast`.

The checker is pure: `import_graph(roots)` reads every module under the given package folders
into {module: {imported module, ...}}; `violations(graph, rules)` and `cycles(graph)` judge it.
An import counts wherever it stands (inside a function or under `if TYPE_CHECKING:` too): a
lazy or type-only import still ties the two modules together.
`from package import name` is an import of `package.name` unless `package` is one of the
scanned modules and `name` is not (then it is an attribute of `package`): so `from . import
values` inside a package does not make a circle with its `__init__`, and `from urllib import
request` is seen as `urllib.request`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

Graph = dict[str, set[str]]

# What a protocol or planning layer must not reach: the network, the database, the event loop.
IO_LIBRARIES = (
    "aiohttp",
    "asyncio",
    "asyncpg",
    "http.client",
    "msal",
    "pgserver",
    "requests",
    "socket",
    "ssl",
    "subprocess",
    "urllib.request",
    "uvloop",
)
PURE = ("ews_client.ews", "ews_client.graph", "sync_service.planning")
PRODUCT = ("sync_service", "ews_client")
SIMULATOR = "ews_client.simulator"


@dataclass(frozen=True, slots=True)
class Rule:
    """Modules under `sources` import nothing under `forbidden`, unless it is under `allowed`."""

    name: str
    sources: tuple[str, ...]
    forbidden: tuple[str, ...]
    allowed: tuple[str, ...] = ()
    exempt: tuple[str, ...] = ()  # source modules the rule does not judge
    faces: tuple[str, ...] = ()  # packages allowed themselves (their __init__), not their insides

    def breaks(self, source: str, target: str) -> bool:
        return (
            under(source, self.sources)
            and not under(source, self.exempt)
            and under(target, self.forbidden)
            and not under(target, self.allowed)
            and target not in self.faces
        )


def _layers_above(layer: str, order: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"sync_service.{name}" for name in order[: order.index(layer)])


# sync_service from the top down: a layer imports only the layers below it, the pure planning
# core, and the shared modules at the package's top (config, errors, metrics).
LAYERS = ("process", "console", "operator", "dispatcher", "runtime", "crm", "db")

RULES: tuple[Rule, ...] = (
    Rule("pure layers do no I/O", PURE, IO_LIBRARIES),
    Rule(
        "the EWS and Graph protocol code stays a library of its own",
        ("ews_client.ews", "ews_client.graph"),
        ("ews_client.io", SIMULATOR, "sync_service"),
    ),
    Rule(
        "the planning core depends on nothing of the service but itself",
        ("sync_service.planning",),
        ("sync_service", "ews_client"),
        allowed=("sync_service.planning", "sync_service.errors", "ews_client.models"),
    ),
    Rule(
        "the simulator shares no protocol, parsing or I/O code with the client",
        (SIMULATOR,),
        ("ews_client",),
        allowed=(SIMULATOR, "ews_client.models"),
    ),
    Rule(
        "the product never depends on the simulator",
        PRODUCT,
        (SIMULATOR,),
        exempt=(SIMULATOR,),
    ),
    Rule("the Exchange client knows nothing of the service", ("ews_client",), ("sync_service",)),
    Rule(
        "the service uses the Exchange client through its public face",
        ("sync_service",),
        ("ews_client",),
        allowed=("ews_client.models", SIMULATOR),  # the simulator: the rule above
        faces=("ews_client",),
    ),
    *(
        Rule(
            f"sync_service.{layer} imports no layer above it",
            (f"sync_service.{layer}",),
            _layers_above(layer, LAYERS),
        )
        for layer in LAYERS[1:]
    ),
)


def under(module: str, prefixes: Iterable[str]) -> bool:
    """Whether `module` is one of `prefixes` or inside one of them."""
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(top: Path, packages: Iterable[str]) -> Graph:
    """{module: imported modules} for every module of `packages` (folders under `top`)."""
    files = {module_name(top, p): p for pkg in packages for p in (top / pkg).rglob("*.py")}
    return {name: set(_imports(name, path, files)) for name, path in files.items()}


def _imports(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(package, node.module, node.level)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                # an own module's attribute is an import of that module; in a foreign package
                # the name may be a submodule (`from urllib import request`): keep it whole
                yield base if base in known and candidate not in known else candidate


def _absolute(package: str, module: str | None, level: int) -> str:
    if not level:
        return module or ""
    parts = package.split(".")
    parts = parts[: len(parts) - (level - 1)]
    return ".".join([*parts, module] if module else parts)


def violations(graph: Graph, rules: Iterable[Rule] = RULES) -> list[str]:
    """One line per broken rule and import: `rule: source -> target`."""
    return [
        f"{rule.name}: {source} -> {target}"
        for rule in rules
        for source in sorted(graph)
        for target in sorted(graph[source])
        if rule.breaks(source, target)
    ]


def cycles(graph: Graph) -> list[list[str]]:
    """The import circles among the graph's own modules (strongly connected, size > 1)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in graph or target == node:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while (member := stack.pop()) != node:
                component.append(member)
            component.append(node)
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found
