"""The package's shape holds: domain packages under a small kernel, no import cycle (module level
or hidden in a function), no harness import inside a function except the CLI's deferred commands."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "harness"
KERNEL = {"__init__", "__main__", "cli", "errors", "registry", "hashing", "progress", "textfile"}
"""The only modules allowed directly in harness/: everything else lives in a domain package."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(node: ast.AST, parents: dict) -> bool:
    """Imports under `if TYPE_CHECKING:` never run, so they cannot form a runtime cycle."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def _imports(name: str, path: Path) -> list[tuple[str, bool]]:
    """(imported harness module, inside a function?) for every import statement of a module."""
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or _type_checking_only(node, parents):
            continue
        in_function, up = False, node
        while up in parents:
            up = parents[up]
            in_function = in_function or isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef))
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` the module itself.
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        found += [(t, in_function) for t in targets if t.split(".")[0] == "harness"]
    return found


def _graph() -> dict[str, set[str]]:
    """module -> the harness modules importing it executes (its imports and their packages)."""
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        edges = set()
        for target, _ in _imports(name, path):
            parts = target.split(".")
            # Importing a.b.c runs a/__init__ and a/b/__init__ first.
            edges |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & MODULES.keys()
        if "." in name:
            edges.add(name.rpartition(".")[0])
        graph[name] = edges - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    """Function-level imports count too: a cycle hidden in a function is still a cycle."""
    assert _cycles(_graph()) == []


def test_cycle_check_can_fail():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_harness_import_inside_functions():
    """Only the CLI defers imports (so `harness --help` stays instant); heavy third-party
    libraries are imported inside functions, harness modules never are."""
    hidden = [f"{name}: {target}" for name, path in MODULES.items() if name != "harness.cli"
              for target, in_function in _imports(name, path) if in_function]
    assert hidden == []


def test_only_the_kernel_sits_at_the_top():
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top <= KERNEL, f"modules outside a domain package: {sorted(top - KERNEL)}"


def test_importing_every_module_imports_nothing_heavy():
    """Harness modules import each other at the top, so heavy libraries must stay inside the
    functions that use them: `validate`, `list` and `schema` resolve every component and must
    not pay for torch or transformers."""
    import subprocess
    import sys

    names = sorted(n for n in MODULES if not n.endswith("__main__"))
    code = ("import importlib, sys\n"
            f"for n in {names!r}: importlib.import_module(n)\n"
            "print(sorted(m for m in ('torch', 'transformers', 'peft', 'trl', 'bitsandbytes', 'vllm', 'llama_cpp', 'duckdb', 'lm_eval') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert out.strip() == "[]"
