"""The documentation is checked like code: the README's shape, the site's build, and every example
in the README and docs/ against the code it describes.

- README.md: at most 150 lines, and it names the two newcomer commands (`make demo`, `make test`).
- `mkdocs build --strict` succeeds (broken links and anchors are errors: see mkdocs.yml).
- Every ```yaml block says which file it is with a fence title and validates against the model that
  parses that file: `suites/x.yaml`, `models/x.yaml` (each variant's recipe config too),
  `reports/x.yaml` (every gate rule's metric declared). A title ending in `(excerpt)` is a part of
  such a file: each top-level key is validated as that key of the file (or of a task, a variant or
  a gate rule), a list as the file's tasks, variants or gate rules. Any other title is only parsed.
- Every `harness ...` line of a ```bash / ```sh / ```shell / ```console block parses with the real
  CLI parser; every `make X` names a Makefile target.
- Every ```sql block runs against an empty store; ```python blocks compile; ```toml blocks parse.
- The README's command list is the CLI's subcommands, with their help lines.
- `harness.x.y` names in inline code resolve to a module (and attribute) of the package.
- docs/reference.md and the module map of docs/architecture.md equal their generators' output, and
  every benchmark that writes a section of docs/measurements.md has its markers there.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import typing
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = [README] + sorted(DOCS.rglob("*.md"))
FILE_TITLE = re.compile(r"^(suites|models|reports)/[^ /]+\.ya?ml$")
EXCERPT_TITLE = re.compile(r"^(suites|models|reports)/\S+\.ya?ml \(excerpt\)$")
SHELL = {"bash", "sh", "shell", "console"}


@dataclass(frozen=True)
class Block:
    """A fenced code block of a page."""

    page: Path
    line: int
    lang: str
    title: str | None
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file (``` or ~~~, indented up to 3 spaces, or inside a
    list item), with the language and `title="..."` of the info string."""
    blocks, lines = [], path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(`{3,}|~{3,})(.*)$", lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = len(m.group(1)), m.group(2), m.group(3).strip()
        body, j = [], i + 1
        while j < len(lines) and not re.match(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[j]):
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        title = re.search(r'title="([^"]*)"', info)
        blocks.append(Block(path, i + 1, (info.split() or [""])[0].lower(), title.group(1) if title else None,
                            "\n".join(body) + "\n"))
        i = j + 1
    return blocks


BLOCKS = [b for page in PAGES for b in fenced_blocks(page)]


def blocks_of(*langs: str) -> list:
    return [pytest.param(b, id=b.where) for b in BLOCKS if b.lang in langs]


# -- the README ---------------------------------------------------------------------------------

def test_readme_is_short_and_names_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150, f"README.md has {len(text.splitlines())} lines; the guides are in docs/"
    for command in ("make demo", "make test"):
        assert command in text, command


def test_readme_lists_every_command_with_its_help():
    from harness.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    expected = {a.dest: " ".join(a.help.split()) for a in sub._choices_actions}
    listed = {}
    for block in fenced_blocks(README):
        if block.lang == "text" and block.text.startswith("harness "):
            for line in block.text.splitlines():
                name, _, help_text = line.removeprefix("harness ").partition(" ")
                listed[name] = " ".join(help_text.split())
    assert listed == expected, "README's command list differs from `harness --help`"


# -- the site -----------------------------------------------------------------------------------

def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs-material comes with the dev extra (make test installs it)")
    pytest.importorskip("material", reason="mkdocs-material comes with the dev extra (make test installs it)")
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"),
                          "-d", str(tmp_path / "site")], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").is_file()


# -- YAML examples ------------------------------------------------------------------------------

def _kinds():
    """Per file kind: the file's model, its loader, the models of its list items (tasks, variants,
    gate rules), and the models whose keys an excerpt may show on their own."""
    from harness.config.models import BaseSpec, ModelsFile, VariantSpec, load_models
    from harness.config.report import GateRule, ReportSpec, check_rule_metrics, load_report
    from harness.config.schema import _models_in
    from harness.config.suite import AnyTask, SuiteSpec, load_suite

    # A task is any model of the union a suite's `tasks:` holds (one per task kind), read from the
    # annotation so a new kind needs no change here.
    return {
        "suites": (SuiteSpec, load_suite, AnyTask, [SuiteSpec, *_models_in(AnyTask)]),
        "models": (ModelsFile, load_models, VariantSpec, [ModelsFile, BaseSpec, VariantSpec]),
        "reports": (ReportSpec, lambda p: check_rule_metrics(load_report(p), p) or load_report(p), GateRule,
                    [ReportSpec, GateRule]),
    }


def _adapter(field):
    from pydantic import TypeAdapter

    # The field's constraints (min_length, ge, ...) travel in its metadata.
    annotation = typing.Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return TypeAdapter(annotation)


def _check_scorers(task: dict, where: str) -> None:
    """Each scorer is registered; a `{name: config}` entry validates against the scorer's config model."""
    from harness import registry
    from harness.config.loader import parse_model
    from harness.config.schema import scorer_config_model

    for i, entry in enumerate(task.get("scorers") or []):
        name, config = (entry, None) if isinstance(entry, str) else next(iter(entry.items()))
        assert name in registry.names("scorer"), f"{where}: scorers[{i}]: no scorer '{name}'"
        if config is None:
            continue
        model = scorer_config_model(registry.resolve("scorer", name))
        assert model is not None, f"{where}: scorers[{i}]: '{name}' takes no config"
        if set(config) == {"path"} and "path" not in model.model_fields:
            continue  # a file holding the config (a rubric file), read at run time
        parse_model(model, config, f"{where}: scorers[{i}].{name}")


def _check_variant(variant: dict, where: str) -> None:
    from harness.recipes import recipe_for

    if "method" in variant:
        recipe_for(variant["method"], where=f"{where}.method").parse_config(variant.get("config") or {}, f"{where}.config")


def _check_nested(kind: str, data, where: str) -> None:
    """What the file models leave to others: scorer configs of tasks, recipe configs of variants."""
    items = data if isinstance(data, list) else (data.get("tasks") or data.get("variants") or [data])
    for i, item in enumerate(items if isinstance(items, list) else []):
        if isinstance(item, dict) and kind == "suites":
            _check_scorers(item, f"{where}[{i}]")
        elif isinstance(item, dict) and kind == "models":
            _check_variant(item, f"{where}[{i}]")


def validate_excerpt(kind: str, data, where: str) -> None:
    """Validate part of a file: a list as the file's items; a mapping key by key against the first
    model (the file's, then an item's) that has all its keys, or as a whole item."""
    from pydantic import TypeAdapter, ValidationError

    _, _, item, models = _kinds()[kind]
    if isinstance(data, list):
        TypeAdapter(list[item]).validate_python(data)
    else:
        assert isinstance(data, dict), f"{where}: an excerpt is a mapping or a list"
        holder = next((m for m in models if set(data) <= {f.alias or n for n, f in m.model_fields.items()}), None)
        if holder is None:
            TypeAdapter(item).validate_python(data)
        else:
            fields = {f.alias or n: f for n, f in holder.model_fields.items()}
            for key, value in data.items():
                try:
                    _adapter(fields[key]).validate_python(value)
                except ValidationError as exc:
                    raise AssertionError(f"{where}: {key}: {exc}") from None
    _check_nested(kind, data, where)


@pytest.mark.parametrize("block", blocks_of("yaml", "yml"))
def test_yaml_example(block, tmp_path):
    from harness.config.loader import UniqueKeyLoader

    # yaml.safe_load's constructors, plus an error for a key given twice (safe_load keeps the last)
    data = yaml.load(block.text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    assert block.title, (f"{block.where}: say which file this YAML is: ```yaml title=\"suites/x.yaml\"` (whole file) "
                         "or title=\"suites/x.yaml (excerpt)\"")
    if FILE_TITLE.match(block.title):
        kind = block.title.split("/")[0]
        path = tmp_path / block.title
        path.parent.mkdir(parents=True)
        path.write_text(block.text, encoding="utf-8")
        _kinds()[kind][1](path)  # the loader `harness validate` uses: structure, names, recipe configs
        _check_nested(kind, data, block.where)
    elif EXCERPT_TITLE.match(block.title):
        validate_excerpt(block.title.split("/")[0], data, block.where)
    else:
        assert data is not None, f"{block.where}: empty YAML"


def test_yaml_checks_can_fail(tmp_path):
    """The checks above catch a misspelt key, a bad value and an unknown recipe or scorer."""
    from harness.errors import HarnessError

    bad = [("suites/x.yaml", "name: x\ntasks:\n  - {name: t, type: generation, data: {format: jsonl, path: d}, "
                             "prompt: {template: x}, generaton: {}}\n"),
           ("models/x.yaml", "base: {name: b}\nvariants:\n  - {name: v, parent: b, method: sft_lora, config: {lora: {r: 0}}}\n"),
           ("reports/x.yaml", "title: t\nvariants: [a]\ngate:\n  - {variant: a, task: t, metric: no_such_metric, max: 1}\n")]
    for title, text in bad:
        with pytest.raises((HarnessError, AssertionError)):
            test_yaml_example(Block(README, 1, "yaml", title, text), tmp_path / title.split("/")[0])
    for title, text in [("suites/x.yaml (excerpt)", "scorers: [rouge, {rubricc: {path: r.yaml}}]\n"),
                        ("models/x.yaml (excerpt)", "variants:\n  - {name: v, parent: b, method: quantize, config: {scheme: int3}}\n"),
                        ("reports/x.yaml (excerpt)", "gate:\n  - {variant: a, task: t, metric: acc}\n")]:
        with pytest.raises((HarnessError, AssertionError, ValueError)):
            test_yaml_example(Block(README, 1, "yaml", title, text), tmp_path)
    with pytest.raises(AssertionError, match="say which file"):
        test_yaml_example(Block(README, 1, "yaml", None, "a: 1\n"), tmp_path)


# -- shell examples -----------------------------------------------------------------------------

def commands(block: Block) -> list[list[str]]:
    """The simple commands of a shell block: continuation lines joined, comments dropped, split at
    ;, &&, || and |, leading VAR=value assignments removed. In a console block only `$ ` lines count."""
    text = block.text.replace("\\\n", " ")
    lines = text.splitlines()
    if block.lang == "console":
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    out = []
    for line in lines:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split, lexer.commenters = True, "#"
        words, current = list(lexer), []
        for word in words + [";"]:
            if word and set(word) <= set(";&|"):
                while current and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", current[0]):
                    current.pop(0)
                if current:
                    out.append(current)
                current = []
            else:
                current.append(word)
    return out


def harness_argv(words: list[str]) -> list[str] | None:
    """The arguments of a harness invocation (`harness ...`, `.venv/bin/harness ...`, `python -m
    harness ...`), or None."""
    if Path(words[0]).name == "harness":
        return words[1:]
    if Path(words[0]).name.startswith("python") and words[1:3] == ["-m", "harness"]:
        return words[3:]
    return None


def make_targets() -> set[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, flags=re.M))
    return targets - {".PHONY"}


def check_shell(block: Block) -> None:
    from harness.cli import build_parser

    targets = make_targets()
    for words in commands(block):
        argv = harness_argv(words)
        if argv is not None:
            try:
                build_parser().parse_args(argv)
            except SystemExit as exc:
                if exc.code not in (0, None):  # --help / --version exit 0
                    raise AssertionError(f"{block.where}: `{shlex.join(words)}` does not parse") from None
        elif Path(words[0]).name == "make":
            for target in (w for w in words[1:] if not w.startswith("-") and "=" not in w):
                assert target in targets, f"{block.where}: `make {target}`: no such target in the Makefile"


@pytest.mark.parametrize("block", blocks_of(*SHELL))
def test_shell_example(block, capsys):
    check_shell(block)


def test_shell_checks_can_fail():
    for text in ("harness run --models m.yaml\n",                      # no suite
                 "harness gate r.yaml --inconclusive maybe\n",          # not a choice
                 "X=1 harness frobnicate\n",                            # no such command
                 "cd /tmp && make demo-all  # no such target\n"):
        with pytest.raises(AssertionError):
            check_shell(Block(README, 1, "bash", None, text))
    check_shell(Block(README, 1, "console", None, "$ harness list recipes\nsft_lora  ...\n$ make test\n"))


# -- SQL, Python, TOML --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def empty_store(tmp_path_factory):
    import harness.store as package

    open_store = getattr(package, "open_store", None)
    if open_store is None:
        from harness.store.db import open_store
    store = open_store(tmp_path_factory.mktemp("store") / "docs.duckdb")
    yield store
    store.close()


@pytest.mark.parametrize("block", blocks_of("sql"))
def test_sql_example(block, empty_store):
    for statement in (s for s in block.text.split(";") if s.strip() and not all(
            line.strip().startswith("--") or not line.strip() for line in s.splitlines())):
        empty_store.query(statement)


@pytest.mark.parametrize("block", blocks_of("python", "py"))
def test_python_example_compiles(block):
    compile(block.text, block.where, "exec")


@pytest.mark.parametrize("block", blocks_of("toml"))
def test_toml_example_parses(block):
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    tomllib.loads(block.text)


# -- names of modules in the prose --------------------------------------------------------------

def _defines(module: Path, name: str) -> bool:
    """Whether a module defines (or imports) `name` at top level."""
    for node in ast.parse(module.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return True
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any((a.asname or a.name) == name for a in node.names):
            return True
    return False


def dotted_name_problem(name: str) -> str | None:
    """Why `harness.a.b[:attr]` does not name a module (and attribute) of the package, or None."""
    parts = name.replace(":", ".").split(".")
    for n in range(len(parts), 0, -1):
        base = REPO.joinpath(*parts[:n])
        module = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        if module.is_file():
            rest = parts[n:]
            if rest and not _defines(module, rest[0]):
                return f"{'.'.join(parts[:n])} defines no {rest[0]}"
            return None
    return "no such module"


def inline_names() -> list[tuple[str, str]]:
    """(page, name) for inline code that is a dotted harness name, outside fences and generated text."""
    found = []
    for page in PAGES:
        if page == DOCS / "reference.md":
            continue
        text = re.sub(r"<!-- BEGIN module-map -->.*?<!-- END module-map -->", "", page.read_text(encoding="utf-8"), flags=re.S)
        text = re.sub(r"^(\s*)(`{3,}|~{3,}).*?^\1\2", "", text, flags=re.S | re.M)
        for name in re.findall(r"`(harness(?:\.[A-Za-z_]\w*)+(?::[A-Za-z_][\w.]*)?)`", text):
            if name != "harness.plugins":  # the entry-point group, not a module
                found.append((str(page.relative_to(REPO)), name))
    return found


def test_module_names_in_the_docs_exist():
    problems = [f"{page}: `{name}`: {why}" for page, name in inline_names() if (why := dotted_name_problem(name))]
    assert not problems, "\n".join(problems)
    assert dotted_name_problem("harness.registry.BUILTINS") is None
    assert dotted_name_problem("harness.registry.NOPE") and dotted_name_problem("harness.nope.module")


def test_registered_modules_exist():
    from harness.registry import BUILTINS

    missing = [f"{kind} {name}: {target}" for kind, table in BUILTINS.items() for name, target in table.items()
               if dotted_name_problem(target)]
    assert not missing, missing


# -- generated pages ----------------------------------------------------------------------------

def _gen_docs():
    spec = importlib.util.spec_from_file_location("gen_docs", REPO / "scripts" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_is_generated():
    assert (DOCS / "reference.md").read_text(encoding="utf-8") == _gen_docs().render_reference(), \
        "docs/reference.md is out of date: run `python scripts/gen_docs.py` (or `harness schema --out docs/reference.md`)"


def test_reference_documents_recipe_and_scorer_configs():
    from harness import registry
    from harness.config.schema import scorer_config_model

    text = (DOCS / "reference.md").read_text(encoding="utf-8")
    for name in registry.BUILTINS["recipe"]:
        model = registry.resolve("recipe", name).config_model
        assert f"| `{name}` | [{model.__name__}]" in text and f"### {model.__name__}\n" in text, name
    for name in registry.BUILTINS["scorer"]:
        model = scorer_config_model(registry.resolve("scorer", name))
        assert model is None or f"### {model.__name__}\n" in text, name
    assert scorer_config_model(registry.resolve("scorer", "rubric")).__name__ == "RubricSpec"  # found through a helper
    assert scorer_config_model(registry.resolve("scorer", "rouge")) is None


def test_architecture_module_map_is_generated():
    gen = _gen_docs()
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    assert text == gen.render_architecture(text), "docs/architecture.md's module map is out of date: run `python scripts/gen_docs.py`"
    for module in (REPO / "harness").rglob("*.py"):
        if "__pycache__" not in module.parts and module.name != "__init__.py":
            assert f"`{module.relative_to(REPO).as_posix()}`" in text, module


def test_generated_checks_can_fail(tmp_path):
    gen = _gen_docs()
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    stale = text.replace("| `harness/cli.py` |", "| `harness/old_cli.py` |")
    assert stale != text and gen.render_architecture(stale) != stale
    with pytest.raises(ValueError, match="module-map"):
        gen.render_architecture(text.replace("<!-- END module-map -->", ""))


# -- the measurements page ----------------------------------------------------------------------

def _measurements():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import _measurements
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    return _measurements


def test_every_recording_benchmark_has_its_section():
    page = (DOCS / "measurements.md").read_text(encoding="utf-8")
    m = _measurements()
    names = []
    for script in sorted((REPO / "benchmarks").glob("[!_]*.py")):  # not the helper itself
        names += re.findall(r'run_recorded\("([^"]+)"', script.read_text(encoding="utf-8"))
    assert names, "no benchmark writes its section"
    for name in names:
        begin, end = m.markers(name)
        assert page.count(begin) == 1 and page.count(end) == 1, f"docs/measurements.md: markers of '{name}'"
        assert m.replace_section(page, name, m.section(page, name)) == page


def test_replace_section(tmp_path):
    m = _measurements()
    page = "# M\n\nintro\n<!-- BEGIN a -->\nold\n<!-- END a -->\nprose\n<!-- BEGIN b -->\nkept\n<!-- END b -->\n"
    new = m.replace_section(page, "a", "new\ntable")
    assert new == page.replace("old", "new\ntable") and m.section(new, "b") == "kept"
    for broken in (page.replace("<!-- END a -->\n", ""), page + "<!-- BEGIN a -->\n<!-- END a -->\n"):
        with pytest.raises(ValueError):
            m.replace_section(broken, "a", "x")
    assert m.format_output("# Title\n| a |\n|---|\n", markdown=True).startswith("### Title")
    assert m.format_output("plain\n", markdown=False) == "```text\nplain\n```"
    path = tmp_path / "m.md"
    path.write_text(page)
    m.write_section("b", "fresh", path)
    assert m.section(path.read_text(), "b") == "fresh"
