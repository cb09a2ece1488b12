"""No import circle among genunlearn's modules, deferred (function-level) imports included.

The graph is read from the source with ``ast``, so it sees every ``import`` statement wherever it
stands; a circle hidden inside a function still ties the modules together (issue #29).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module → the genunlearn modules it imports (``from pkg import sub`` counts as ``pkg.sub``)."""
    modules = {module_name(p): p for p in sorted((SRC / "genunlearn").rglob("*.py"))}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets |= {
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                    for a in node.names
                }
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as the list of modules around it, or None (depth-first search)."""
    state, stack = {}, []

    def visit(node):
        state[node], _ = "open", stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node], _ = "done", stack.pop()
        return None

    return next((c for n in sorted(graph) if n not in state and (c := visit(n))), None)


def test_the_graph_sees_deferred_imports():
    graph = import_graph()
    assert (
        "genunlearn.interop.diffusers.folders" in graph["genunlearn.families"] and len(graph) > 50
    )  # a function-level import


def test_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " → ".join(cycle)
