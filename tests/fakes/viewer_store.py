"""Stores for the viewer's tests: real offline runs, and a run whose agents wrote hostile HTML.

`build_viewer_store(path)` fills a store with a small self-play run (rule-based, AI-critic
and no-feedback arms, 3 rounds), a small tournament of the four tactics, and a "hostile" run:
one self-play lineage whose messages, briefs, player names and feedback carry markup that must
show as text. Returns the ids and the hostile strings.

It builds the store on a worker thread with an event loop of its own, so it works whatever the
calling thread runs: a sync test, an async one, or a fixture that comes after playwright's
sync API (which leaves an event loop running on the test's thread).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from haggler.run.experiment import selfplay
from haggler.run.spec import check_selfplay_spec
from haggler.store import Store
from haggler.store.records import (
    ActionRecord,
    CritiqueRecord,
    OutcomeRecord,
    RoleRecord,
    TurnRecord,
)
from haggler.tournament.running import run_tournament
from haggler.tournament.spec import check_tournament_spec

# Each would run, or break the page, if it reached the HTML unescaped.
SCRIPT = "<script>window.__pwned = 1; document.title = 'pwned'</script>"
IMG = '<img src=x onerror="window.__pwned = 2">'
ATTR = '"><b id="injected">bold</b>'
HOSTILE_PLAYER = "<i>evil</i>&co"


@dataclass(frozen=True)
class ViewerStore:
    path: Path
    selfplay_run: str
    tournament_run: str
    hostile_run: str
    hostile_games: list[str]  # round 1, round 2


def _turn(index: int, speaker: str, text: str, action: ActionRecord | None, **extra: object):
    now = time.time()
    return TurnRecord(
        index=index,
        speaker=speaker,
        text=text,
        action=action,
        started_at=now,
        ended_at=now,
        **extra,  # type: ignore[arg-type]
    )


def _hostile_game(round_: int) -> dict[str, object]:
    offer = ActionRecord(kind="offer", price=20.0 - round_)
    turns = [
        _turn(
            0,
            "seller",
            "This is a good balloon and its price is $20. [OFFER $20]",
            ActionRecord(kind="offer", price=20.0),
            scripted=True,
        ),
        _turn(
            1,
            "buyer",
            "Would you sell it for $10? [OFFER $10]",
            ActionRecord(kind="offer", price=10.0),
            scripted=True,
        ),
        _turn(
            2,
            "seller",
            f"{SCRIPT} Fine: {IMG} [OFFER ${20 - round_}]",
            offer,
            model="openai/gpt-4o",
            prompt_tokens=120,
            completion_tokens=30,
            cost_usd=0.0012,
            latency_s=0.35,
        ),
        _turn(
            3,
            "buyer",
            f"{ATTR} & <u>deal</u>",
            None,
            accepted=False,
            error="no action <em>found</em>",
            model="openai/gpt-4o-mini",
        ),
        _turn(
            4,
            "buyer",
            f"</div></section> I accept. [ACCEPT ${20 - round_}]",
            ActionRecord(kind="accept", price=20.0 - round_),
            model="openai/gpt-4o-mini",
            prompt_tokens=150,
            completion_tokens=12,
            cost_usd=0.0001,
            latency_s=0.2,
        ),
    ]
    roles = {
        "seller": RoleRecord(
            model="openai/gpt-4o", brief=f"Your cost is $8. {SCRIPT}", private={"cost": 8.0}
        ),
        "buyer": RoleRecord(model=HOSTILE_PLAYER, brief=f"Budget secret {IMG}"),
    }
    return {
        "game": "balloon",
        "rules": {"seller_cost": 8, "seller_opening": 20, "buyer_opening": 10},
        "roles": roles,
        "seed": round_,
        "turns": turns,
        "outcome": OutcomeRecord(kind="deal", reason="accepted", price=20.0 - round_, by="buyer"),
        "scores": {"seller": 12.0 - round_, "buyer": round_ - 10.0},
    }


def build_viewer_store(path: Path) -> ViewerStore:
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="viewer-store") as worker:
        return worker.submit(lambda: asyncio.run(_build(path))).result()


async def _build(path: Path) -> ViewerStore:
    spec = check_selfplay_spec(
        {
            "game": "balloon",
            "roles": {"seller": {"model": "rule:linear"}, "buyer": {"model": "rule:linear"}},
            "coached": "seller",
            "critic": "rule",
            "rounds": 3,
            "lineages": 4,
            "feedback": ["ai", "none"],
            "seed": 0,
        },
        source="test",
        base=path.parent,
    )
    tournament = check_tournament_spec(
        {
            "name": "viewer",
            "players": [
                {"name": t, "model": f"rule:{t}"}
                for t in ("boulware", "linear", "conceder", "tit-for-tat")
            ],
            "games": ["balloon"],
            "schedule": "round_robin",
            "repetitions": 1,
            "seed": 0,
        },
        source="test",
    )
    with Store(path) as store:
        played = await selfplay(spec, store=store)
        tour = await run_tournament(tournament, store=store)
        hostile = store.start_run("selfplay", {"name": "hostile <script>x</script>"})
        critique = CritiqueRecord(
            episode_id="",
            role="seller",
            source="ai (openai/gpt-4o)",
            text=f"Ask for more. {SCRIPT} {IMG}",
            created_at=time.time(),
        )
        lineage = store.add_lineage(
            hostile,
            arm="ai",
            coached="seller",
            seed=0,
            games=[_hostile_game(1), _hostile_game(2)],
            critiques=[critique, critique.model_copy(update={"text": "Round two: <b>hold</b>"})],
        )
        assert lineage is not None
        games = sorted(store.find_episodes(hostile), key=lambda e: e.round or 0)
    return ViewerStore(
        path=path,
        selfplay_run=played.run_id,
        tournament_run=tour.run_id,
        hostile_run=hostile,
        hostile_games=[g.id for g in games],
    )
