"""The house's shape: no import circles, modules that fit their job, a docstring on each."""

import ast
from pathlib import Path

from helpers import ROOT

PACKAGE = ROOT / "jepa_rl"
MAX_LINES = 330  # "about 300": a module past it likely does two jobs


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its body (lazy imports count too)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jepa_rl"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    deps.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("jepa_rl"))
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state, stack, found = {}, [], []

    def visit(u: str) -> None:
        state[u] = "open"
        stack.append(u)
        for v in sorted(graph[u]):
            if state.get(v) == "open":
                found.append([*stack[stack.index(v) :], v])
            elif v not in state:
                visit(v)
        stack.pop()
        state[u] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return found


def test_no_import_circles():
    graph = import_graph()
    assert "jepa_rl.stages.train" in graph and "jepa_rl.sweep.aggregate" in graph
    assert cycles(graph) == []
    assert cycles({"a": {"b"}, "b": {"a"}}) == [["a", "b", "a"]]  # the check itself finds one


def test_modules_are_small_and_documented():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert len(text.splitlines()) <= MAX_LINES, f"{path.relative_to(ROOT)} has grown past {MAX_LINES} lines"
        assert ast.get_docstring(ast.parse(text)), f"{path.relative_to(ROOT)} has no docstring"


def test_tests_mirror_the_modules():
    """Each test file is named for a module it tests: tests/<package>/test_<module>.py."""
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    repo_wide = {"test_layout", "test_security", "test_cuda"}
    for path in (ROOT / "tests").rglob("test_*.py"):
        parts = path.relative_to(ROOT / "tests").with_suffix("").parts
        if parts[-1] in repo_wide:
            continue
        target = ".".join(["jepa_rl", *parts[:-1], parts[-1].removeprefix("test_")])
        assert target in modules, f"{path.relative_to(ROOT)} names no module ({target})"
