"""haggler: LLM agents negotiate, a critic coaches them, and they learn in context.

The public API is deliberately small; everything else lives in the sub-packages
(`haggler.games`, `haggler.agents`, `haggler.llm`, `haggler.store`, …). Names load on first
use, so `import haggler` stays cheap and imports no model SDK or graph runtime.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = [
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

_WHERE = {
    "HagglerError": "haggler.errors",
    "PlaySpec": "haggler.run.spec",
    "RoleSpec": "haggler.run.spec",
    "load_play_spec": "haggler.run.spec",
    "SelfPlaySpec": "haggler.run.spec",
    "load_selfplay_spec": "haggler.run.spec",
    "selfplay": "haggler.run.experiment",
    "forget": "haggler.run.forgetting",
    "PlayedGame": "haggler.run.play",
    "play": "haggler.run.play",
    "play_sync": "haggler.run.play",
    "Store": "haggler.store",
    "make_game": "haggler.games",
}

if TYPE_CHECKING:
    from haggler.errors import HagglerError
    from haggler.games import make_game
    from haggler.run.experiment import selfplay
    from haggler.run.forgetting import forget
    from haggler.run.play import PlayedGame, play, play_sync
    from haggler.run.spec import (
        PlaySpec,
        RoleSpec,
        SelfPlaySpec,
        load_play_spec,
        load_selfplay_spec,
    )
    from haggler.store import Store


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'haggler' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
