"""Promises the project makes about itself: its public API, its examples, its set-up commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from haggler.spec import load_play_spec, load_selfplay_spec

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
        "load_play_spec",
        "load_selfplay_spec",
        "make_game",
        "play",
        "play_sync",
        "selfplay",
    ]
    for name in haggler.__all__:
        assert getattr(haggler, name) is not None


def test_importing_haggler_loads_no_heavy_dependency() -> None:
    code = (
        "import sys, haggler, haggler.cli, haggler.store, haggler.spec; "
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
        from haggler.tournament_spec import load_tournament_spec

        load_tournament_spec(spec)
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
