"""The docs cite the code as it is: every file path and every haggler module or name they
mention exists (README.md and docs/*.md).

Paths are written from the repository root (`haggler/llm/retry.py`, `games/episode.py`,
`examples/offline_balloon.yaml`); a link (`[selfplay.md](selfplay.md)`) from the page's folder;
a bare file name (`schedule.py`) must name a file of the source tree. Dotted names
(`haggler.tournament.running.run_tournament`) must name a module, and the name after it one
that module defines; `haggler.X` may also be a public name of haggler or an entry-point group.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.test_layers import source_modules

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# The repository's own top-level entries: a path starting with one of them is the project's.
_TOP = r"(?:haggler|agents|games|memory|evals|tests|examples|benchmarks|docs|\.ci)"
# What a cited file of the project ends with; other slashed words are model names
# (openai/gpt-4o), agents' names (shop/ai/0/seller) or a user's own files (/path/to/model).
_FILE = r"[\w.-]*\.(?:py|md|ya?ml|toml|json|txt)"
# A path of the project: a folder of it (`tests/fakes/`), or a file with one of those endings.
_PATH = re.compile(rf"(?<![\w./-])({_TOP}/(?:[\w.-]+/)*(?:{_FILE})?|(?:[\w-]+/)+{_FILE})(?![\w/-])")
_BARE_MODULE = re.compile(r"(?<![\w./-])([\w-]+\.py)(?![\w/-])")
_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
_DOTTED = re.compile(r"(?<![\w./-])(haggler(?:\.\w+)+)(?![\w/])")
# Dotted words that are file names, not modules: haggler.db, the default store.
_FILE_SUFFIXES = {"db", "md", "py", "yaml", "html", "csv", "json", "toml", "txt", "png", "svg"}


def _source_files() -> set[str]:
    folders = ("haggler", "agents", "games", "memory", "evals", "tests", "benchmarks")
    return {path.name for folder in folders for path in (ROOT / folder).rglob("*.py")}


def _defined_names(path: Path) -> set[str]:
    """Top-level names of a module: what it defines, imports, lists in `__all__` or loads on
    first use (a `_WHERE` table, as haggler/__init__.py has)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
            if isinstance(node.value, ast.List | ast.Tuple | ast.Dict):
                keys = node.value.keys if isinstance(node.value, ast.Dict) else node.value.elts
                names |= {k.value for k in keys if isinstance(k, ast.Constant)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.If):  # `if TYPE_CHECKING:` imports name what loads lazily
            for inner in node.body:
                if isinstance(inner, ast.ImportFrom):
                    names |= {a.asname or a.name for a in inner.names}
    return names


def _entry_point_groups() -> set[str]:
    """The entry-point groups haggler's registries read: Registry(kind, "haggler.games")."""
    groups: set[str] = set()
    for path in source_modules(ROOT).values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Registry"
                and len(node.args) > 1
                and isinstance(node.args[1], ast.Constant)
            ):
                groups.add(node.args[1].value)
    return groups


def missing_citations(text: str, *, name: str, folder: Path) -> list[str]:
    """What the page `name` (in `folder`, holding `text`) cites that does not exist, each as
    `name: citation (why)`."""
    missing: list[str] = []
    for path in sorted(set(_PATH.findall(text))):
        if not (ROOT / path).exists():
            missing.append(f"{name}: {path} (no such path from the repository root)")
    files = _source_files()
    for bare in sorted(set(_BARE_MODULE.findall(text))):
        if bare not in files:
            missing.append(f"{name}: {bare} (no file of that name in the source tree)")
    for target in sorted(set(_LINK.findall(text))):
        if "://" not in target and not (folder / target).exists():
            missing.append(f"{name}: {target} (a link to nothing)")
    modules = source_modules(ROOT)
    groups = _entry_point_groups()
    for dotted in sorted(set(_DOTTED.findall(text))):
        parts = dotted.split(".")
        if parts[-1] in _FILE_SUFFIXES:
            continue
        module = max(
            (
                ".".join(parts[:n])
                for n in range(1, len(parts) + 1)
                if ".".join(parts[:n]) in modules
            ),
            key=len,
        )
        rest = parts[len(module.split(".")) :]
        if not rest:
            continue
        if module == "haggler" and dotted in groups:
            continue
        if rest[0] not in _defined_names(modules[module]):
            missing.append(f"{name}: {dotted} ({module} has no {rest[0]!r})")
    return missing


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_and_module_the_docs_cite_exists(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert missing_citations(text, name=str(page.relative_to(ROOT)), folder=page.parent) == []


def test_the_check_finds_what_moved() -> None:
    text = (
        "`haggler/llm/retry.py` and `games/episode.py` are; `haggler/tournament.py`, "
        "`view/pages.py`, `runner.py` and [old](gone.md) are not; [that](selfplay.md) is. "
        "`haggler.llm.retry`, `haggler.play` and `haggler.registry.Registry` are, "
        "`haggler.experiment.selfplay` and `haggler.llm.retry.no_such_name` are not; "
        "`haggler.tactics`, an entry-point group, and `haggler.db`, a file, are words. "
        "`tests/fakes/` is, `tests/forgeries/` is not; games/s is a unit, and openai/gpt-4o, "
        "shop/ai/0/seller and /path/to/model are not the project's."
    )
    assert missing_citations(text, name="new.md", folder=ROOT / "docs") == [
        "new.md: haggler/tournament.py (no such path from the repository root)",
        "new.md: tests/forgeries/ (no such path from the repository root)",
        "new.md: view/pages.py (no such path from the repository root)",
        "new.md: runner.py (no file of that name in the source tree)",
        "new.md: gone.md (a link to nothing)",
        "new.md: haggler.experiment.selfplay (haggler has no 'experiment')",
        "new.md: haggler.llm.retry.no_such_name (haggler.llm.retry has no 'no_such_name')",
    ]
