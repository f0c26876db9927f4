"""Generate the parts of the documentation that the code defines, so they cannot drift from it.

- docs/reference.md: every key of the suite, models and report files, every recipe's and
  scorer's config, the environment variables (harness.config.schema.render, as `harness schema`
  writes it).
- docs/architecture.md, between `<!-- BEGIN module-map -->` and `<!-- END module-map -->`: one
  table per package of the `harness/` tree, each module with the first paragraph of its
  docstring and what it registers in harness.registry.BUILTINS. Read from the files with `ast`
  (nothing imported), so a module that moves or appears is in the map the next time this runs.
  The rest of the page is written by hand.

    python scripts/gen_docs.py           # rewrite both
    python scripts/gen_docs.py --check   # exit 1 when either differs from what would be written

tests/test_docs.py runs the check, so `make test` fails on a stale page.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "harness"
REFERENCE = REPO / "docs" / "reference.md"
ARCHITECTURE = REPO / "docs" / "architecture.md"
MODULE_MAP = "module-map"

sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))  # the marker helper the benchmarks use too

from _measurements import replace_section  # noqa: E402


def docstring_summary(path: Path) -> str:
    """The first paragraph of a module's docstring, on one line ('' when it has none)."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))) or ""
    return " ".join(doc.split("\n\n")[0].split())


def module_name(path: Path) -> str:
    """`harness/tasks/kinds/latency.py` -> `harness.tasks.kinds.latency` (a package: its own name)."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def registrations() -> dict[str, list[str]]:
    """module -> what it registers in harness.registry.BUILTINS, e.g. ['backend `hf`']."""
    from harness.registry import BUILTINS

    out: dict[str, list[str]] = {}
    for kind, table in BUILTINS.items():
        for name, target in table.items():
            out.setdefault(target.split(":")[0], []).append(f"{kind} `{name}`")
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def module_map(root: Path = PACKAGE) -> str:
    """The module map as Markdown: one section per package, one row per module."""
    registered = registrations()
    packages = sorted({p.parent for p in root.rglob("__init__.py") if "__pycache__" not in p.parts},
                      key=lambda p: (p != root, p.relative_to(root).parts))
    lines = [f"{sum(1 for p in root.rglob('*.py') if '__pycache__' not in p.parts)} modules in "
             f"{len(packages)} packages. \"Registers\" is what the module provides to `harness.registry.BUILTINS`.", ""]
    for package in packages:
        name = module_name(package / "__init__.py")
        summary = docstring_summary(package / "__init__.py")
        lines += [f"### `{name}`", "", _cell(summary) or "(no package docstring)", "",
                  "| module | what it is | registers |", "|---|---|---|"]
        for path in sorted(package.glob("*.py")):
            if path.name == "__init__.py":
                continue
            what = docstring_summary(path) or "(no module docstring)"
            regs = ", ".join(registered.get(module_name(path), []))
            lines.append(f"| `{path.relative_to(REPO).as_posix()}` | {_cell(what)} | {regs} |")
        lines.append("")
    return "\n".join(lines).rstrip("\n")


def render_architecture(text: str) -> str:
    """The architecture page with its module map regenerated (the hand-written rest unchanged)."""
    return replace_section(text, MODULE_MAP, module_map())


def render_reference() -> str:
    """docs/reference.md as `harness schema` writes it."""
    from harness.config.schema import render

    return render()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 when a page is out of date")
    args = parser.parse_args(argv)
    pages = {REFERENCE: render_reference(), ARCHITECTURE: render_architecture(ARCHITECTURE.read_text(encoding="utf-8"))}
    stale = [path for path, text in pages.items() if path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(REPO)} is out of date: run `python scripts/gen_docs.py`")
        return 1 if stale else 0
    for path in stale:
        path.write_text(pages[path], encoding="utf-8")
        print(f"wrote {path.relative_to(REPO)}")
    if not stale:
        print("docs/reference.md and docs/architecture.md are current")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
