"""Games, their episodes as LangGraph graphs, and the registry that names them."""

from haggler.games.bargaining import BALLOON, DIAMOND, BargainingGame, BargainingRules
from haggler.games.base import Game, Step
from haggler.games.outcome import Outcome
from haggler.games.registry import GAMES, make_game

__all__ = [
    "BALLOON",
    "DIAMOND",
    "GAMES",
    "BargainingGame",
    "BargainingRules",
    "Game",
    "Outcome",
    "Step",
    "make_game",
]
