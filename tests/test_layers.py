"""The code's layers, read from its imports (docs/architecture.md draws them).

Lower layers never import upper ones: a backend knows nothing of roles, a role nothing of
tournaments, the specs and what plays them nothing of the command line. And the model layer,
haggler.llm, has no import cycle between its modules. Every import counts: at the top of a file,
inside a function (imported on first use) or for type checking only.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Folders of the repository and the import names they hold (pyproject.toml maps the last four).
PACKAGES = {
    "haggler": "haggler",
    "agents": "haggler.agents",
    "games": "haggler.games",
    "memory": "haggler.memory",
    "evals": "haggler.evals",
}

# Bottom to top: a module may import its own layer and the layers below it. Every module of
# the source tree belongs to one (a new folder of haggler/ is placed here on purpose).
LAYERS: list[tuple[str, ...]] = [
    # The core's leaves: one error tree, the plug-in registry, the rule for a model's text.
    ("haggler.errors", "haggler.registry", "haggler.model_text"),
    ("haggler.llm", "haggler.store", "haggler.executors"),
    ("haggler.agents", "haggler.memory"),
    ("haggler.games", "haggler.evals"),
    # Specs and what plays them: a game, a self-play experiment, roles cast to backends.
    ("haggler.run",),
    ("haggler.tournament",),
    ("haggler.grid", "haggler.probe"),
    ("haggler.view", "haggler.cli"),
    # The public API: haggler/__init__.py.
    ("haggler",),
]

# Imports that go up a layer on purpose, each with its reason: (importing module, imported).
UPWARD_ON_PURPOSE = {
    # An error's message is redacted where it is made; secrets.py imports nothing.
    ("haggler.errors", "haggler.llm.secrets"),
    # The adversary plays games against its target: it names them in annotations only.
    ("haggler.agents.adversary.base", "haggler.games.base"),
    ("haggler.agents.adversary.base", "haggler.games.episode"),
    ("haggler.agents.adversary.defences", "haggler.games.episode"),
}


def source_modules(root: Path) -> dict[str, Path]:
    """Every module of the source tree under `root`, by its import name."""
    modules: dict[str, Path] = {}
    for folder, package in PACKAGES.items():
        for path in sorted((root / folder).rglob("*.py")):
            parts = [*package.split("."), *path.relative_to(root / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """The haggler modules `name` (at `path`) imports, anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from haggler.llm import base` imports the module haggler.llm.base.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            if target == "haggler" or target.startswith("haggler."):
                yield target


def layer_of(module: str) -> int | None:
    """The index in LAYERS of `module`'s layer; None when it belongs to none."""
    for index, layer in enumerate(LAYERS):
        for top in layer:
            if module == top or (top != "haggler" and module.startswith(top + ".")):
                return index
    return None


def layering_faults(root: Path) -> list[str]:
    """Modules outside every layer, and imports from a lower layer of an upper one."""
    modules = source_modules(root)
    known = set(modules)
    faults = [
        f"{name} ({path}) belongs to no layer"
        for name, path in modules.items()
        if layer_of(name) is None
    ]
    for name, path in modules.items():
        here = layer_of(name)
        for target in sorted(set(imports_of(name, path, known))):
            there = layer_of(target)
            if here is None or there is None or there <= here:
                continue
            if (name, target) not in UPWARD_ON_PURPOSE:
                faults.append(f"{path.relative_to(root)}: {name} imports {target}, a layer above")
    return faults


def import_cycles(root: Path, package: str) -> list[list[str]]:
    """The import cycles between the modules of `package`, each as a path back to its start."""
    modules = source_modules(root)
    known = set(modules)
    inside = {m for m in modules if m == package or m.startswith(package + ".")}
    graph = {m: sorted(set(imports_of(m, modules[m], known)) & inside - {m}) for m in inside}
    cycles: list[list[str]] = []
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        for target in graph[module]:
            if target in path:
                cycles.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target, [*path, target])
        done.add(module)

    for module in sorted(inside):
        if module not in done:
            visit(module, [module])
    return cycles


def test_lower_layers_never_import_upper_ones() -> None:
    assert layering_faults(ROOT) == []


# The model layer's providers and backends once imported each other; the folders of the core
# are kept free of cycles as they are now.
@pytest.mark.parametrize(
    "package", ["haggler.llm", "haggler.store", "haggler.run", "haggler.tournament", "haggler.cli"]
)
def test_no_import_cycle_inside(package: str) -> None:
    assert import_cycles(ROOT, package) == []


def test_every_layer_named_is_a_folder_or_module_of_the_tree() -> None:
    # A layer renamed in the tree but not here would let its modules import anything.
    modules = set(source_modules(ROOT))
    for layer in LAYERS:
        for top in layer:
            assert top in modules, f"{top} is in LAYERS but not in the source tree"


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for folder in PACKAGES:
        (root / folder).mkdir(exist_ok=True)
    return root


def test_the_checks_find_an_upward_import_and_a_cycle(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "haggler/__init__.py": "",
            "haggler/cli/__init__.py": "",
            "haggler/loose.py": "",
            "haggler/llm/__init__.py": "",
            # Imported on first use, and for type checking only: both count.
            "haggler/llm/a.py": "def f():\n    from haggler.llm import b\n",
            "haggler/llm/b.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from haggler.llm.a import f\n"
            ),
            "agents/__init__.py": "",
            "agents/role.py": "from ..cli import app\n",
            "games/__init__.py": "from haggler.agents.role import x\n",
        },
    )
    assert layering_faults(root) == [
        "haggler.loose (" + str(root / "haggler/loose.py") + ") belongs to no layer",
        "agents/role.py: haggler.agents.role imports haggler.cli, a layer above",
    ]
    assert import_cycles(root, "haggler.llm") == [
        ["haggler.llm.a", "haggler.llm.b", "haggler.llm.a"]
    ]
