"""Tournaments: a spec of players, games and a schedule, expanded into matches named by their
content, played concurrently by an executor and stored whole, so that a rerun plays only what
is missing.

    spec = load_tournament_spec("examples/tournament_offline.yaml")
    run = await run_tournament(spec, store=store)

`spec` reads and checks the YAML, `schedule` expands it into matches (without loading the
episode graph or a model backend: the viewer and the leaderboard read it), `matches` plays one
anywhere (here or on a Ray worker), `running` drives a whole tournament. Names load on first
use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = [
    "MatchJob",
    "TournamentProgress",
    "TournamentRun",
    "TournamentSpec",
    "check_tournament_spec",
    "expand",
    "load_tournament_spec",
    "run_tournament",
    "unfinished_matches",
]

_WHERE = {
    "TournamentSpec": "haggler.tournament.spec",
    "check_tournament_spec": "haggler.tournament.spec",
    "load_tournament_spec": "haggler.tournament.spec",
    "MatchJob": "haggler.tournament.schedule",
    "expand": "haggler.tournament.schedule",
    "TournamentProgress": "haggler.tournament.running",
    "TournamentRun": "haggler.tournament.running",
    "run_tournament": "haggler.tournament.running",
    "unfinished_matches": "haggler.tournament.running",
}

if TYPE_CHECKING:
    from haggler.tournament.running import (
        TournamentProgress,
        TournamentRun,
        run_tournament,
        unfinished_matches,
    )
    from haggler.tournament.schedule import MatchJob, expand
    from haggler.tournament.spec import TournamentSpec, check_tournament_spec, load_tournament_spec


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'haggler.tournament' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
