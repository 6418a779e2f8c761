"""Promises the project makes about itself: its public API, its examples, its set-up commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from haggler.run.spec import load_play_spec, load_selfplay_spec

ROOT = Path(__file__).resolve().parent.parent


def test_the_public_api_is_small_and_deliberate() -> None:
    import haggler

    assert sorted(haggler.__all__) == [
        "HagglerError",
        "PlaySpec",
        "PlayedGame",
        "RoleSpec",
        "SelfPlaySpec",
        "Store",
        "forget",
        "load_play_spec",
        "load_selfplay_spec",
        "make_game",
        "play",
        "play_sync",
        "selfplay",
    ]
    for name in haggler.__all__:
        assert getattr(haggler, name) is not None


def test_the_tournament_package_names_what_a_script_needs() -> None:
    # Loaded on first use, like haggler's own names: each must resolve to what it says.
    import haggler.tournament as tournament
    from haggler.tournament.running import run_tournament
    from haggler.tournament.spec import load_tournament_spec

    assert dir(tournament) == sorted(tournament.__all__)
    for name in tournament.__all__:
        assert getattr(tournament, name).__name__ == name
    assert tournament.run_tournament is run_tournament
    assert tournament.load_tournament_spec is load_tournament_spec
    with pytest.raises(AttributeError, match="no attribute 'play_match'"):
        _ = tournament.play_match


def test_importing_haggler_loads_no_heavy_dependency() -> None:
    code = (
        "import sys, haggler, haggler.cli, haggler.store, haggler.run.spec, haggler.tournament, "
        "haggler.tournament.spec, haggler.tournament.schedule; "
        "heavy = [m for m in ('litellm', 'torch', 'transformers', 'langgraph', 'openai', 'anthropic') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("spec", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_spec_is_valid(spec: Path) -> None:
    if spec.name.startswith("selfplay"):
        load_selfplay_spec(spec)
    elif spec.name.startswith("tournament"):
        from haggler.tournament.spec import load_tournament_spec

        load_tournament_spec(spec)
    elif spec.name.startswith("paper_grid"):
        from haggler.grid import load_grid_spec

        load_grid_spec(spec)
    elif spec.name.startswith("unlearn"):
        # Its schema; the strategies, judges and defences it names are the adversary's
        # plug-ins, checked where they are installed (tests/test_probe_runs.py).
        from haggler.probe.spec import UnlearnEvalSpec
        from haggler.run.spec import read_mapping

        UnlearnEvalSpec.model_validate(read_mapping(spec))
    else:
        load_play_spec(spec)


def test_ci_runs_exactly_the_test_command_of_the_readme() -> None:
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    readme = (ROOT / "README.md").read_text()
    assert f"```bash\n{ci_command}\n```" in readme


def test_the_code_passes_ruff() -> None:
    ruff = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--quiet", str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr


def test_every_package_is_in_the_build() -> None:
    # An editable install finds any folder; a wheel holds only the packages listed.
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    folders = ("agents", "games", "memory", "evals")
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "haggler").rglob("__init__.py")
    }
    # The mapped folders' own sub-packages (memory/forgetting -> haggler.memory.forgetting).
    found |= {
        ".".join(("haggler", *init.parent.relative_to(ROOT).parts))
        for folder in folders
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert found == listed


# --- a new user's install: what the tests import is declared, CI installs from nothing ------

# The folders whose Python files the package, its tests and its scripts are made of.
_SOURCE_FOLDERS = ("haggler", "agents", "games", "memory", "evals", "tests", "benchmarks")
# Import names of this project. `agents`, `games`, … are not: they are haggler.agents, …, and a
# bare `import agents` would reach someone else's distribution.
# `haggler_mediation` is the worked plug-in package of this repository (examples/plugins),
# installed by README's test command.
_FIRST_PARTY = {"haggler", "tests", "haggler_mediation"}
# Calls that import a module named by a string: it is a dependency all the same.
_IMPORTING_CALLS = {"import_module", "find_spec", "importorskip"}


def _imported_modules(path: Path) -> set[str]:
    """Top-level names of the modules `path` imports, lazily or not, absolute imports only."""
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Call) and node.args:
            called = node.func.attr if isinstance(node.func, ast.Attribute) else None
            called = called or (node.func.id if isinstance(node.func, ast.Name) else None)
            first = node.args[0]
            literal = first.value if isinstance(first, ast.Constant) else None
            if called in _IMPORTING_CALLS and isinstance(literal, str) and literal:
                names.add(literal)
    return {name.split(".")[0] for name in names}


def _normalized(distribution: str) -> str:
    import re

    return re.sub(r"[-_.]+", "-", distribution).lower()


def _declared(pyproject: Path) -> set[str]:
    """Distributions pyproject.toml declares: dependencies and every extra."""
    import re
    import tomllib

    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    return {
        _normalized(re.split(r"[\s\[<>=!~;(@]", r.strip(), maxsplit=1)[0]) for r in requirements
    }


def undeclared_imports(root: Path, folders: tuple[str, ...]) -> dict[str, list[str]]:
    """Third-party modules imported under `folders` of `root` whose distribution pyproject.toml
    does not declare, each with the files importing it."""
    from importlib.metadata import packages_distributions

    declared = _declared(root / "pyproject.toml")
    # What an installed module's distribution is called (yaml -> PyYAML); a module that is not
    # installed (an extra not installed here) is taken to be named as its distribution.
    owners = packages_distributions()
    missing: dict[str, list[str]] = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            for module in _imported_modules(path):
                if module in sys.stdlib_module_names or module in _FIRST_PARTY:
                    continue
                distributions = {_normalized(d) for d in owners.get(module, [module])}
                if not distributions & declared:
                    missing.setdefault(module, []).append(str(path.relative_to(root)))
    return missing


def test_every_third_party_module_imported_is_declared() -> None:
    # The machine's own Python may hold what no extra declares (hypothesis did): the suite then
    # passes here and fails in a new user's fresh environment.
    assert undeclared_imports(ROOT, _SOURCE_FOLDERS) == {}


def test_the_declaration_check_finds_what_is_undeclared(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["PyYAML>=6"]\n'
        '[project.optional-dependencies]\nplot = ["matplotlib>=3.7"]\n'
    )
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text(
        "import json\nimport yaml\nfrom haggler.run.spec import PlaySpec\nimport matplotlib.figure\n"
        "def f():\n    import hypothesis.strategies\n"
    )
    (tmp_path / "pkg" / "b.py").write_text(
        "import pytest\nnumpy = pytest.importorskip('numpy')\nfrom . import a\n"
    )
    assert undeclared_imports(tmp_path, ("pkg",)) == {
        "hypothesis": ["pkg/a.py"],
        "pytest": ["pkg/b.py"],
        "numpy": ["pkg/b.py"],
    }


def test_ci_installs_into_a_fresh_virtual_environment(tmp_path: Path) -> None:
    # Everything .ci/run does before README's test command, then a look at where that
    # command would run: a new, empty environment outside the clone, removed afterwards.
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    # -P: only what is installed is importable, not the clone's own folders.
    probe = (
        "python -P - <<'PROBE'\n"
        "import importlib.util, json, os, shutil, sys\n"
        "print(json.dumps({'prefix': sys.prefix, 'base': sys.base_prefix,\n"
        "  'pip': shutil.which('pip'), 'cwd': os.getcwd(),\n"
        "  'browser': os.environ.get('HAGGLER_REQUIRE_BROWSER'),\n"
        "  'found': [m for m in ('pytest', 'hypothesis', 'haggler', 'typer')\n"
        "            if importlib.util.find_spec(m)]}))\n"
        "PROBE"
    )
    # apt-get is stubbed: a machine without chromium is not changed by a test.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apt-get").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "apt-get").chmod(0o755)
    env = os.environ | {"PATH": f"{bin_dir}:{os.environ['PATH']}", "TMPDIR": str(tmp_path)}
    env.pop("VIRTUAL_ENV", None)
    script = "\n".join([*lines[:-1], probe])
    ran = subprocess.run(
        ["bash", "-c", script, str(ROOT / ".ci" / "run")],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    seen = json.loads(ran.stdout.strip().splitlines()[-1])
    prefix = Path(seen["prefix"])
    assert prefix != Path(seen["base"]), "README's command must run in a virtual environment"
    assert prefix.is_relative_to(tmp_path), "the environment must be new, made for this run"
    assert not prefix.is_relative_to(ROOT)
    assert seen["pip"] == str(prefix / "bin" / "pip")
    assert seen["cwd"] == str(ROOT)
    assert seen["browser"] == "1"
    assert seen["found"] == [], "nothing may be installed before README's command runs"
    assert not prefix.exists(), "the environment is removed when CI ends"


async def test_the_viewer_test_store_builds_inside_a_running_event_loop(tmp_path: Path) -> None:
    # The browser tests' playwright fixture leaves an event loop running on the test's thread
    # before the store fixture runs: building the store must not depend on fixture order.
    from haggler.store import Store
    from tests.fakes.viewer_store import build_viewer_store

    built = build_viewer_store(tmp_path / "viewer.db")
    with Store(built.path) as store:
        runs = {run.id: run.episodes for run in store.runs()}
    assert set(runs) == {built.selfplay_run, built.tournament_run, built.hostile_run}
    assert runs[built.selfplay_run] == 24 and runs[built.tournament_run] == 12
    assert len(built.hostile_games) == 2
