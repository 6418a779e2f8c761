"""Players that differ by prompt: a player's own instructions reach its model (and no other
role's), are part of its matches' ids, and are stored with every game it played."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from haggler.agents.base import Brief, RoleView
from haggler.agents.llm_negotiator import negotiator_prompt
from haggler.cli import app
from haggler.store import Store
from haggler.tournament.running import run_tournament
from haggler.tournament.schedule import expand
from haggler.tournament.spec import check_tournament_spec
from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.negotiating_llm import negotiate

TOUGH = "PERSONA-TOUGH: never move more than a dollar at a time."
SOFT = "PERSONA-SOFT: you want a quick and friendly deal."
RULES = [
    {"name": "boulware", "model": "rule:boulware"},
    {"name": "linear", "model": "rule:linear"},
    {"name": "tft", "model": "rule:tit-for-tat"},
]


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-prompts-0123456789")


def players(base: str) -> list[dict[str, str]]:
    return [
        {"name": "tough", "model": "openai/same-model", "api_base": base, "prompt": TOUGH},
        {"name": "soft", "model": "openai/same-model", "api_base": base, "prompt": SOFT},
        {"name": "boulware", "model": "rule:boulware"},
    ]


def test_the_same_model_with_two_prompts_is_two_players_with_their_own_matches() -> None:
    spec = check_tournament_spec({"name": "p", "players": players("http://127.0.0.1:9/v1")})
    jobs = expand(spec)
    assert len({job.id for job in jobs}) == len(jobs) == 6
    tough = {job.id for job in jobs if "tough" in (job.seller, job.buyer)}
    soft = {job.id for job in jobs if "soft" in (job.seller, job.buyer)}
    edited = players("http://127.0.0.1:9/v1")
    edited[0]["prompt"] = TOUGH + " Really."
    again = {job.id for job in expand(check_tournament_spec({"name": "p", "players": edited}))}
    assert (tough - soft).isdisjoint(again), "an edited prompt makes its player's matches new"
    assert soft - tough <= again, "the others keep theirs"


def test_players_without_a_prompt_keep_the_match_ids_they_had() -> None:
    # Ids from before prompts existed: a store played then must not be replayed now.
    model = {"name": "gpt", "model": "openai/gpt-4o", "params": {"temperature": 0.5}}
    jobs = expand(
        check_tournament_spec(
            {"name": "ids", "players": [*RULES, model], "games": ["balloon", "diamond"]}
        )
    )
    assert (jobs[0].id, jobs[-1].id) == ("m-5348d922fba9dad530e7", "m-a2bae184b15764af19f4")
    lineages = expand(
        check_tournament_spec({"name": "ids", "players": RULES, "schedule": {"kind": "selfplay"}})
    )
    assert (lineages[0].id, lineages[-1].id) == ("m-db29710703de19235676", "m-feb91eef8a184a1f4a16")


async def test_a_prompt_reaches_its_players_model_only_and_is_stored_with_its_games(
    tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    fake_llm_server.responder = negotiate
    spec = check_tournament_spec(
        {"name": "personas", "players": players(fake_llm_server.openai_base), "repetitions": 2}
    )
    with Store(tmp_path / "h.db") as store:
        run = await run_tournament(spec, store=store)
        episodes = [store.episode(e.id) for e in store.episodes(run.run_id)]
    assert (run.finished, run.failed) == (12, 0), run.errors

    systems = [request.messages[0]["content"] for request in fake_llm_server.requests]
    everything = [json.dumps(request.json) for request in fake_llm_server.requests]
    # Each request carries at most one player's prompt, in its system message, after the brief.
    assert all(not (TOUGH in text and SOFT in text) for text in everything)
    for persona in (TOUGH, SOFT):
        for opening in ("You are selling", "You want to buy"):
            carrying = [s for s in systems if persona in s and s.startswith(opening)]
            assert carrying, f"{persona!r} never reached its model as {opening!r}"
            assert all(s.index(persona) > s.index(" remain.") for s in carrying)
    # The other role's model never reads it: in tough-vs-soft games, each role's requests
    # hold its own player's prompt only.
    seller_asks = [s for s in systems if s.startswith("You are selling")]
    buyer_asks = [s for s in systems if s.startswith("You want to buy")]
    assert {TOUGH in s or SOFT in s for s in seller_asks + buyer_asks} == {True}
    assert len(seller_asks) + len(buyer_asks) == len(systems)
    # Stored with the match: each role's prompt is its player's.
    prompts = {"tough": TOUGH, "soft": SOFT, "boulware": None}
    for episode in episodes:
        for record in episode.roles.values():
            assert record.prompt == prompts[str(record.player)]


def test_show_and_export_carry_the_prompt(tmp_path: Path, fake_llm_server: FakeLLMServer) -> None:
    fake_llm_server.responder = negotiate
    spec = tmp_path / "t.yaml"
    (tmp_path / "tough.md").write_text(TOUGH + "\n")
    spec.write_text(
        "name: shown\nplayers:\n"
        f"  - {{name: tough, model: openai/m, api_base: '{fake_llm_server.openai_base}', "
        "prompt: {file: tough.md}}\n"
        "  - {name: boulware, model: 'rule:boulware'}\n"
    )
    db = tmp_path / "h.db"
    played = CliRunner().invoke(app, ["tournament", str(spec), "--db", str(db)])
    assert played.exit_code == 0, played.output
    shown = CliRunner().invoke(
        app, ["show", "--run", "tour-shown", "--player", "tough", "--briefs", "--db", str(db)]
    )
    assert shown.exit_code == 0, shown.output
    assert f"own prompt: {TOUGH}" in " ".join(shown.output.split())
    CliRunner().invoke(
        app, ["export", "tour-shown", "-o", str(tmp_path / "g.jsonl"), "--db", str(db)]
    )
    games = [json.loads(line) for line in (tmp_path / "g.jsonl").read_text().splitlines()]
    assert len(games) == 2
    for game in games:
        by_player = {r["player"]: r["prompt"] for r in game["roles"].values()}
        assert by_player == {"tough": TOUGH, "boulware": None}, "the file's text, stripped"


def test_a_prompt_file_is_the_same_player_as_its_text(tmp_path: Path) -> None:
    (tmp_path / "tough.md").write_text(TOUGH)
    from_file = players("http://127.0.0.1:9/v1")
    from_file[0]["prompt"] = {"file": "tough.md"}  # type: ignore[assignment]
    source = str(tmp_path / "t.yaml")
    spec = check_tournament_spec({"name": "p", "players": from_file}, source=source)
    inline = check_tournament_spec({"name": "p", "players": players("http://127.0.0.1:9/v1")})
    assert spec.players[0].prompt == TOUGH
    assert [j.id for j in expand(spec)] == [j.id for j in expand(inline)]


BAD = {
    "rule player": (
        "  - {name: b, model: 'rule:boulware', prompt: be tough}\n",
        "players.1.prompt: Value error, rule:boulware is rule-based and reads no prompt",
    ),
    "empty prompt": (
        "  - {name: b, model: openai/m, prompt: '  '}\n",
        "players.1.prompt: the prompt is empty",
    ),
    "missing file": (
        "  - {name: b, model: openai/m, prompt: {file: nowhere.md}}\n",
        "players.1.prompt.file: ",
    ),
    "not a file": (
        "  - {name: b, model: openai/m, prompt: {path: x.md}}\n",
        "players.1.prompt: write the prompt as text, or as {file: PATH}",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_prompt_is_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    line, expected = BAD[case]
    spec = tmp_path / "t.yaml"
    spec.write_text("name: t\nplayers:\n  - {name: a, model: 'rule:linear'}\n" + line)
    result = CliRunner().invoke(app, ["tournament", str(spec), "--db", str(tmp_path / "h.db")])
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert "\n" not in message and message.startswith(f"error: {spec}: ")
    assert expected.replace("Value error, ", "") in message


def test_the_prompt_follows_the_brief_in_the_system_message() -> None:
    view = RoleView(
        role="seller",
        brief=Brief("seller", "You are selling a balloon.", {"cost": 8.0}),
        public=(),
        facts={},
        turn=0,
        max_turns=10,
    )
    plain = negotiator_prompt(view)[0].content
    with_prompt = negotiator_prompt(view, TOUGH)[0].content
    assert with_prompt == f"{plain}\n\n{TOUGH}"


async def test_a_role_of_a_single_game_takes_a_prompt_too(
    tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    import haggler

    fake_llm_server.responder = negotiate
    spec = {
        "roles": {
            "seller": {"model": "openai/m", "api_base": fake_llm_server.openai_base},
            "buyer": {"model": "openai/m", "api_base": fake_llm_server.openai_base, "prompt": SOFT},
        }
    }
    with Store(tmp_path / "h.db") as store:
        played = await haggler.play(spec, store=store)
        assert played.episode_id is not None
        roles = store.episode(played.episode_id).roles
    assert (roles["seller"].prompt, roles["buyer"].prompt) == (None, SOFT)
    systems = [r.messages[0]["content"] for r in fake_llm_server.requests]
    assert all((SOFT in s) == s.startswith("You want to buy") for s in systems)
