"""The house's shape: layers that import only downwards, no import circles, a docstring on each module."""

import ast
from pathlib import Path

from helpers import ROOT

PACKAGE = ROOT / "jepa_rl"
MAX_LINES = 600  # a guard, not a target: modules are split by concept
# Each domain package and the ones below it that it may import. None of them imports Hydra, OmegaConf or
# the layers that wire them (config, stages, sweep, job): those import the domain, never the reverse.
LAYERS = {
    "ranges": set(),
    "runtime": {"ranges"},
    "envs": {"ranges", "runtime"},
    "models": {"ranges", "runtime"},
    "rl": {"ranges", "runtime", "envs", "models"},
    "pretrain": {"ranges", "runtime", "envs", "models"},
    "evaluation": {"ranges", "runtime", "envs", "models", "rl"},
    "probes": {"ranges", "runtime", "envs", "models", "pretrain"},
    "benchmark": {"ranges", "runtime", "envs", "models", "rl", "pretrain", "evaluation"},
}
WIRING = {"config", "stages", "sweep", "job"}


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


def imported_roots(path: Path) -> set[str]:
    """The top-level names a module imports: ``jepa_rl.<package>`` for the package's own, else the library's."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
        names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
        for name in names:
            parts = name.split(".")
            roots.add(".".join(parts[:2]) if parts[0] == "jepa_rl" and len(parts) > 1 else parts[0])
    return roots


def layer_violations(packages: dict[str, set[str]]) -> list[str]:
    """``package imports name`` for each import ``LAYERS`` forbids, given each package's imported roots."""
    found = []
    for package, roots in sorted(packages.items()):
        if package in WIRING:
            continue
        allowed = {f"jepa_rl.{p}" for p in LAYERS[package] | {package}}
        for root in sorted(roots):
            if root in ("hydra", "omegaconf") or (root.startswith("jepa_rl.") and root not in allowed):
                found.append(f"{package} imports {root}")
    return found


def test_domain_packages_import_only_the_layers_below_them_and_never_the_config():
    packages: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts == ("__init__",):
            continue
        packages.setdefault(parts[0], set()).update(imported_roots(path))
    assert set(packages) == set(LAYERS) | WIRING, "a new package: give it its place in LAYERS"
    assert layer_violations(packages) == []
    # The check itself sees each kind of breach.
    assert layer_violations({"models": {"omegaconf", "jepa_rl.rl", "jepa_rl.runtime", "torch"}}) == [
        "models imports jepa_rl.rl",
        "models imports omegaconf",
    ]


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
    repo_wide = {"test_layout", "test_security", "test_cuda", "test_docs"}
    for path in (ROOT / "tests").rglob("test_*.py"):
        parts = path.relative_to(ROOT / "tests").with_suffix("").parts
        if parts[-1] in repo_wide:
            continue
        target = ".".join(["jepa_rl", *parts[:-1], parts[-1].removeprefix("test_")])
        assert target in modules, f"{path.relative_to(ROOT)} names no module ({target})"
