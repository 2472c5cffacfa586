"""The data flows one way: read every import of the package (ast, lazy ones included) and check
that there is no import cycle and no import from a later stage into an earlier one.

A new subpackage or top-level module must be placed in ``LAYERS`` (or ``SHARED``): the test
fails naming it until it is, so the rule is decided, not drifted into. docs/architecture.md
shows the same order as a diagram.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

import pytest

import mdr_graph

PACKAGE = Path(mdr_graph.__file__).parent

# Used by every stage, importing only each other (and the package root for __version__).
SHARED = {"errors", "io", "config", "runlog", "splits", "distributed", "outdir", "trainloop"}
# Stages, earliest first: a unit may import SHARED and units of its own or an earlier rank.
# synth (the planted corpus) is a source like build-graph's input: it imports only SHARED.
LAYERS = [
    {"graph_build", "synth", "cli_values"},  # cli_values: flag values read with build-graph's parsers
    {"media"},
    {"encoders", "modalities", "fusion_config"},  # modality encoders and their registry: building blocks
    {"pretrain"},
    {"fusion"},
    {"models"},                              # the model builders
    {"train"},
    {"compare"},
    {"cli"},       # the dispatcher: names each command's module as a string, imported at run time
    {"demo"},      # runs every stage through the dispatcher
    {"__main__"},
]
TEST_ONLY = "testing"  # imported by tests and benches only, never by the package


def _module_name(path: Path) -> str:
    parts = ("mdr_graph", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """``{module: {mdr_graph modules it imports}}``, at module level or inside functions."""
    out: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        mod = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path}:{node.lineno}: use absolute mdr_graph imports"
                if node.module and node.module.split(".")[0] == "mdr_graph":
                    out[mod] |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                out[mod] |= {a.name for a in node.names if a.name.split(".")[0] == "mdr_graph"}
    modules = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    return {m: {t for t in targets if t in modules and t != m} for m, targets in out.items()}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "<root>"


def _rank(unit: str) -> int:
    if unit in SHARED or unit == "<root>":
        return -1
    for i, layer in enumerate(LAYERS):
        if unit in layer:
            return i
    raise AssertionError(f"mdr_graph.{unit} is in no layer of tests/test_imports.py: add it to SHARED or LAYERS")


def test_no_import_from_a_later_stage_into_an_earlier_one():
    bad = []
    for mod, targets in sorted(_imports().items()):
        a = _unit(mod)
        if a == TEST_ONLY:
            continue
        for t in sorted(targets):
            b = _unit(t)
            if b == a:
                continue
            assert b != TEST_ONLY, f"{mod} imports {t}: mdr_graph.testing is for tests and benches only"
            if _rank(b) > _rank(a) or (a in SHARED and b not in SHARED and b != "<root>"):
                bad.append(f"{mod} -> {t}")
    assert not bad, "imports against the stage order:\n" + "\n".join(bad)


def test_every_unit_has_a_place():
    units = {_unit(_module_name(p)) for p in PACKAGE.rglob("*.py")} - {TEST_ONLY}
    for u in units:
        _rank(u)


def test_no_import_cycle():
    graph = _imports()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_lazy_imports_and_cycles(tmp_path, monkeypatch):
    """The rule is only as good as the parser: a lazy import inside a function counts."""
    pkg = tmp_path / "mdr_graph"
    (pkg / "media").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "media" / "__init__.py").write_text("")
    (pkg / "media" / "store.py").write_text("def f():\n    from mdr_graph.media import extract\n")
    (pkg / "media" / "extract.py").write_text("from mdr_graph.media.store import f\nfrom mdr_graph import train\n")
    (pkg / "train.py").write_text("")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    assert "mdr_graph.media.extract" in _imports()["mdr_graph.media.store"]
    with pytest.raises(AssertionError, match=r"mdr_graph\.media\.extract"):
        test_no_import_cycle()
    with pytest.raises(AssertionError, match=r"mdr_graph\.media\.extract -> mdr_graph\.train"):
        test_no_import_from_a_later_stage_into_an_earlier_one()
