"""The package never unpickles untrusted files and never builds shell commands."""

import ast

from helpers import ROOT

# Every module, the subpackages' too (config/, stages/, sweep/ ...).
SOURCES = sorted((ROOT / "jepa_rl").rglob("*.py")) + [ROOT / "launch.py"]


def where(path, node):
    """``jepa_rl/sweep/cells.py:12``: a module named by its path, as two subpackages may share a file name."""
    return f"{path.relative_to(ROOT)}:{node.lineno}"


def test_the_scan_reads_every_subpackage():
    scanned = {path.parent.relative_to(ROOT).as_posix() for path in SOURCES}
    assert {"jepa_rl/config", "jepa_rl/stages", "jepa_rl/sweep"} <= scanned


def calls(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


def test_every_torch_load_is_weights_only():
    loads = [(path, node) for path in SOURCES for node, name in calls(path) if name == "torch.load"]
    assert loads, "the checkpoint and encoder loaders use torch.load"
    for path, node in loads:
        flags = {k.arg: ast.unparse(k.value) for k in node.keywords}
        assert flags.get("weights_only") == "True", f"{where(path, node)} torch.load without weights_only=True"


def test_no_pickle_and_no_shell():
    forbidden = {"pickle.load", "pickle.loads", "os.system", "os.popen", "subprocess.run", "subprocess.Popen"}
    for path in SOURCES:
        for node, name in calls(path):
            assert name not in forbidden, f"{where(path, node)} calls {name}"
            if name in {"np.load", "numpy.load"}:
                flags = {k.arg: ast.unparse(k.value) for k in node.keywords}
                assert flags.get("allow_pickle", "False") == "False", f"{where(path, node)} allow_pickle"
