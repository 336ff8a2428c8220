"""No import cycle among the project's modules at run time.

Top-level imports count; imports under ``TYPE_CHECKING`` and inside functions (the CLI's lazy
imports, a plugin's hooks importing its channel on first use) do not: they run after every
module involved has finished loading.
"""

from __future__ import annotations

import ast
import pathlib
import sys

TOP = pathlib.Path(__file__).parents[1]
ROOTS = {
    "notify_devino": "notify_devino",
    "notify_devino_soap": "plugins/devino_soap/notify_devino_soap",
    "notify_devino_smtp": "plugins/smtp/notify_devino_smtp",
    "notify_devino_webhook": "plugins/webhook/notify_devino_webhook",
}


def modules() -> dict[str, pathlib.Path]:
    found = {}
    for package, folder in ROOTS.items():
        for path in (TOP / folder).rglob("*.py"):
            parts = [package, *path.relative_to(TOP / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def runtime_imports(mods: dict[str, pathlib.Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]

        def absolute(node: ast.ImportFrom, package: str = package) -> str:
            if not node.level:
                return node.module or ""
            base = package.split(".")
            base = base[: len(base) - node.level + 1]
            return ".".join([*base, node.module] if node.module else base)

        def target(dotted: str) -> str | None:
            while dotted and dotted not in mods:
                dotted = dotted.rpartition(".")[0]
            return dotted or None

        def walk(nodes: list[ast.stmt], name: str = name) -> None:
            for node in nodes:
                if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                    walk(node.orelse)
                elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    continue
                elif isinstance(node, ast.Import):
                    graph[name].update(t for a in node.names if (t := target(a.name)))
                elif isinstance(node, ast.ImportFrom):
                    base = absolute(node)
                    subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in mods]
                    wanted = subs if len(subs) == len(node.names) else [*subs, base]
                    graph[name].update(t for w in wanted if (t := target(w)))
                else:
                    for field in ("body", "orelse", "finalbody", "handlers"):
                        inner = getattr(node, field, None)
                        if isinstance(inner, list):
                            walk(inner)
            graph[name].discard(name)

        walk(ast.parse(path.read_text()).body)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_itself_back_at_run_time() -> None:
    mods = modules()
    assert len(mods) > 60  # the walk found the project
    assert cycles(runtime_imports(mods)) == []


def test_the_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
