"""The package's layers point down only and its modules import no cycle (ARCHITECTURE.md).

Every ``import trading_data…`` of every module counts, at module level or inside a function, so a lazy
import cannot hide a wrong-way dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "trading_data"

# Lowest first. A module may import its own layer and the layers below it, never one above.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("errors", "clock", "calendar", "redact", "domain", "schemas", "validation")),
    ("settings", ("settings", "scheduling")),
    ("services", ("db", "sources", "partitions", "monitoring", "read")),
    ("orchestration", ("orchestration",)),
    ("definitions", ("defs",)),
    ("entry points", ("definitions", "step_forkserver", "health", "cli", "backfill")),
)
LAYER_OF = {part: rank for rank, (_, parts) in enumerate(LAYERS) for part in parts}
MAX_MODULE_LINES = 400


def module_names() -> dict[str, Path]:
    names = {}
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        parts = ("trading_data", *path.relative_to(PACKAGE_ROOT).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


MODULES = module_names()


def _resolve(name: str) -> str | None:
    """The package module ``name`` (``trading_data.x.y`` or an attribute of it) is found in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """The package modules ``module`` imports (absolute imports; the package uses no relative ones)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{module}: relative import of {node.module}"
            targets = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {
            r for t in targets if t.startswith("trading_data") and (r := _resolve(t)) not in (None, module)
        }
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def layer(module: str) -> int:
    part = module.split(".")[1] if "." in module else ""
    assert part in LAYER_OF, f"{module} is in no layer: add trading_data.{part} to LAYERS"
    return LAYER_OF[part]


@pytest.mark.parametrize("module", [m for m in MODULES if m != "trading_data"])
def test_imports_point_down_only(module: str) -> None:
    upward = sorted(t for t in GRAPH[module] if t != "trading_data" and layer(t) > layer(module))
    assert not upward, f"{module} ({LAYERS[layer(module)][0]}) imports a higher layer: {upward}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path ``[a, b, …, a]``, or None."""
    done: set[str] = set()
    for start in sorted(graph):
        path: list[str] = []
        on_path: set[str] = set()
        stack = [(start, iter(sorted(graph[start])))]
        if start in done:
            continue
        path.append(start)
        on_path.add(start)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
            elif child in on_path:
                return [*path[path.index(child) :], child]
            elif child not in done:
                stack.append((child, iter(sorted(graph.get(child, ())))))
                path.append(child)
                on_path.add(child)
    return None


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle() -> None:
    assert find_cycle(GRAPH) is None


def test_the_layer_table_names_every_top_level_module() -> None:
    tops = {m.split(".")[1] for m in MODULES if "." in m}
    assert tops == set(LAYER_OF)


def test_no_module_over_the_line_limit() -> None:
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"
