"""Hostile model replies, from the wire to the terminal (issue 14).

A provider may send anything: lone surrogates, NUL and terminal escapes in its text, rich markup,
no text at all, token counts that are negative, astronomical, fractional or missing, prices in
e-notation or with four hundred digits, bodies that are not JSON. Whatever it sends, every
command (`play`, `selfplay`, `tournament`, then `show`, `export`, `report`, `leaderboard`) ends
without a traceback, every game is stored finished or failed with its reason, the store holds
only sane usage and cost, the JSONL export is strict JSON, a terminal sees the text inert, and
a budget holds.

Everything runs against the fake server (tests/fakes/llm_server.py) through the real SDKs, on
both hosted paths: the direct openai-SDK backend (`openai/...`) and litellm (`anthropic/...`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import re
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner, Result

from haggler.cli import app
from haggler.cli.render import print_episode, turn_line
from haggler.errors import ModelError
from haggler.llm import Message, RetryPolicy, open_backend
from haggler.llm.base import MAX_CALL_TOKENS, Backend, Completion, Usage
from haggler.model_text import storable_text, terminal_text
from haggler.store import Store
from haggler.store.records import ActionRecord, EpisodeRecord, TurnRecord
from tests.fakes.llm_server import (
    BROKEN_JSON,
    OMIT,
    FakeLLMServer,
    Garbage,
    RecordedRequest,
    Reply,
    Status,
    Text,
)
from tests.fakes.negotiating_llm import negotiate

KEY = "sk-test-fuzz-0123456789"
FAST = RetryPolicy(attempts=3, initial_wait=0.0, max_wait=0.0, jitter=0.0)
RETRY_SPEC = "{attempts: 3, initial_wait: 0, max_wait: 0}"
CHAT = [Message("system", "You sell balloons."), Message("user", "I offer $10. [OFFER $10]")]


@dataclass(frozen=True)
class HostedPath:
    """A hosted path through haggler: a model name that open_backend sends one way."""

    model: str
    base: Callable[[FakeLLMServer], str]
    # Replies its client library cannot read at all: haggler fails the call, in one clean line.
    unreadable: frozenset[str]
    # Token counts its client library makes whole before haggler sees them.
    coerced: frozenset[Any] = frozenset()


# gpt-4o-mini goes straight through the openai SDK; claude-haiku-4-5 through litellm. Both
# have a price in litellm's map, so a budget has something to count.
PATHS = {
    "openai-sdk": HostedPath(
        "openai/gpt-4o-mini", lambda server: server.openai_base, frozenset({"broken JSON"})
    ),
    # litellm's Anthropic parser raises on a NaN count, a missing usage and a non-text block,
    # and turns 1.5 and true into 1.
    "litellm": HostedPath(
        "anthropic/claude-haiku-4-5",
        lambda server: server.url,
        frozenset({"broken JSON", "NaN usage", "no usage", "number content"}),
        frozenset({1.5, True}),
    ),
}


@pytest.fixture(params=sorted(PATHS))
def path(request: pytest.FixtureRequest) -> HostedPath:
    return PATHS[request.param]


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)


# --- what a hostile provider sends ----------------------------------------------------------

SURROGATES = "\ud800\udfff\udc00 lone"  # a pair (one character once decoded), then a lone half
ESCAPES = "\x1b[31mred\x1b[0m \x1b]0;pwned\x07 \u202eevil\u202c \x9b2J \r\x00 \x7f"
MARKUP = "[bold red]shout[/] [link=https://evil.example]click[/link]"
NAN_BODY = {
    "openai": (
        b'{"id": "x", "object": "chat.completion", "model": "m", "choices": [{"index": 0, '
        b'"message": {"role": "assistant", "content": "NaN counts [OFFER $15]"}, '
        b'"finish_reason": "stop"}], "usage": {"prompt_tokens": NaN, '
        b'"completion_tokens": -Infinity, "total_tokens": Infinity}}'
    ),
    "anthropic": (
        b'{"id": "x", "type": "message", "role": "assistant", "model": "m", "content": '
        b'[{"type": "text", "text": "NaN counts [OFFER $15]"}], "stop_reason": "end_turn", '
        b'"usage": {"input_tokens": NaN, "output_tokens": Infinity}}'
    ),
}


def _prefixed(prefix: str) -> Callable[[RecordedRequest], Reply]:
    def reply(request: RecordedRequest) -> Reply:
        sane = negotiate(request)
        return replace(sane, text=f"{prefix} {sane.text}")

    return reply


def _counted(prompt: Any, completion: Any, usage: bool = True) -> Callable[..., Reply]:
    def reply(request: RecordedRequest) -> Reply:
        sane = negotiate(request)
        return replace(sane, prompt_tokens=prompt, completion_tokens=completion, usage=usage)

    return reply


def _constant(reply: Reply) -> Callable[[RecordedRequest], Reply]:
    return lambda request: reply


# Each hostile reply, by name. Replies that carry a readable action keep games moving, so that
# the hostile text reaches the store, the critic, the moderator and the terminal.
HOSTILE: dict[str, Callable[[RecordedRequest], Reply]] = {
    "surrogates": _prefixed(SURROGATES),
    "usage of 10**30": _counted(10**30, 5),
    "terminal escapes": _prefixed(ESCAPES),
    "400-digit price": _constant(Text("Take it. [OFFER $" + "9" * 400 + "]")),
    "negative usage": _counted(-(10**12), -5),
    "untagged": lambda request: negotiate(request, tagged=False),
    "broken JSON": _constant(Garbage(BROKEN_JSON)),
    "rich markup": _prefixed(MARKUP),
    "e-notation offer": _constant(Text("Fine. [OFFER $1e308]")),
    "fractional usage": _counted(1.5, "abc"),
    "no usage": _counted(10, 5, usage=False),
    "null content": _constant(Text(None)),
    "e-notation accept": _constant(Text("Deal. [ACCEPT $1.5e3]")),
    "NaN usage": lambda request: Garbage(NAN_BODY[request.api]),
    "empty content": _constant(Text("")),
    "huge verdict": _constant(
        Text('{"reasoning": "\\udc00", "action": "offer", "price": 1e308} a gazillion')
    ),
    "missing counts": _counted(OMIT, OMIT),
    "number content": _constant(Text(42)),
}


class HostileProvider:
    """A responder for FakeLLMServer whose every reply is hostile in one of the `HOSTILE` ways.

    Which way is a function of the request (its body, and how often that same body was sent
    before: a retry meets another way), never of the order in which concurrent games happen
    to call: a run is the same run every time.
    """

    def __init__(self, kinds: list[str] | None = None) -> None:
        self.kinds = kinds or list(HOSTILE)
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.sent: Counter[str] = Counter()

    def __call__(self, request: RecordedRequest) -> Reply:
        body = json.dumps(request.json, sort_keys=True).encode("utf-8", "surrogatepass")
        digest = hashlib.sha256(body).hexdigest()
        with self._lock:
            attempt = self._seen[digest]
            self._seen[digest] += 1
            kind = self.kinds[(int(digest[:8], 16) + attempt) % len(self.kinds)]
            self.sent[kind] += 1
        return HOSTILE[kind](request)


# --- the boundary: one call, every hostile reply, both paths --------------------------------


def _backend(server: FakeLLMServer, path: HostedPath) -> Backend:
    return open_backend(path.model, api_base=path.base(server), timeout_s=5, retry_policy=FAST)


def assert_sane(completion: Completion) -> None:
    """What Backend.complete promises for any reply it returns."""
    completion.text.encode("utf-8")  # storable: raises on a lone surrogate
    assert "\x00" not in completion.text
    for count in (completion.usage.prompt_tokens, completion.usage.completion_tokens):
        assert type(count) is int and 0 <= count <= MAX_CALL_TOKENS, completion.usage
    assert type(completion.cost_usd) is float
    assert math.isfinite(completion.cost_usd) and completion.cost_usd >= 0, completion


def assert_one_clean_line(message: str) -> None:
    assert "\n" not in message and "Traceback" not in message, message
    message.encode("utf-8")
    assert KEY not in message


@pytest.mark.parametrize("kind", list(HOSTILE))
async def test_every_hostile_reply_becomes_a_sane_completion_or_a_clean_error(
    fake_llm_server: FakeLLMServer, path: HostedPath, kind: str
) -> None:
    fake_llm_server.responder = HostileProvider([kind])
    backend = _backend(fake_llm_server, path)
    try:
        completion = await backend.complete(CHAT, max_tokens=50)
    except ModelError as error:
        # Only a reply its client cannot read may fail, and then in one clean line.
        assert kind in path.unreadable, (kind, str(error))
        assert_one_clean_line(str(error))
        return
    finally:
        await backend.aclose()
    assert_sane(completion)


async def test_lone_surrogates_are_stored_as_their_escape_and_pairs_as_their_character(
    fake_llm_server: FakeLLMServer, path: HostedPath
) -> None:
    # The issue's reply: it ended a tournament with a UnicodeEncodeError in the store.
    fake_llm_server.script(Text("\ud800\udfff\udc00 lone [OFFER $15]"))
    completion = await _backend(fake_llm_server, path).complete(CHAT)
    assert completion.text == "\U000103ff\\udc00 lone [OFFER $15]"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (10, 5)
    assert not completion.usage.estimated


@pytest.mark.parametrize(
    ("prompt", "completion"),
    [
        (10**30, 5),
        (-(10**12), 5),
        (10, -1),
        (1.5, 5),
        ("abc", 5),
        (OMIT, OMIT),
        (True, 5),
        (0, 5),  # nothing counted for a prompt that was sent
        (10, 0),  # nothing counted for a text that came back
        (MAX_CALL_TOKENS + 1, 5),
    ],
)
async def test_unbelievable_usage_is_counted_from_characters_and_priced(
    fake_llm_server: FakeLLMServer,
    path: HostedPath,
    prompt: Any,
    completion: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if prompt in path.coerced:
        pytest.skip(f"{path.model}'s client library makes {prompt!r} a whole count itself")
    text = "I could do $14. [OFFER $14]"
    sent = sum(len(m.content) for m in CHAT)
    counted = Usage(math.ceil(sent / 4), math.ceil(len(text) / 4), estimated=True)
    fake_llm_server.script(
        Text(text, prompt_tokens=prompt, completion_tokens=completion),
        Text(text, prompt_tokens=prompt, completion_tokens=completion),
        # The same call, had the provider reported haggler's own count.
        Text(
            text, prompt_tokens=counted.prompt_tokens, completion_tokens=counted.completion_tokens
        ),
    )
    backend = _backend(fake_llm_server, path)
    with caplog.at_level("WARNING", logger="haggler.llm.base"):
        reply = await backend.complete(CHAT)
        again = await backend.complete(CHAT)
    honest = await backend.complete(CHAT)
    assert reply.usage == again.usage == counted
    # Priced as the model's own count would be: never free, never below nothing.
    assert reply.cost_usd == pytest.approx(honest.cost_usd) and reply.cost_usd > 0
    warnings = [r.getMessage() for r in caplog.records if r.name == "haggler.llm.base"]
    assert len(warnings) == 1, "one warning per model, not one per call"
    assert (
        f"{path.model}: the provider's token counts are missing or cannot be right" in (warnings[0])
    )


async def test_believable_usage_is_taken_as_given(
    fake_llm_server: FakeLLMServer, path: HostedPath
) -> None:
    fake_llm_server.script(Text("$14. [OFFER $14]", prompt_tokens=12.0, completion_tokens=7))
    reply = await _backend(fake_llm_server, path).complete(CHAT)
    assert reply.usage == Usage(12, 7)


@pytest.mark.parametrize(
    "reply", [Text(None), Text(""), Text("   ")], ids=["null", "empty", "blank"]
)
async def test_a_reply_with_no_text_is_told_back_to_its_speaker(
    fake_llm_server: FakeLLMServer, path: HostedPath, reply: Text
) -> None:
    from haggler import play

    fake_llm_server.responder = lambda request: reply
    spec = {
        "roles": {"buyer": {"model": path.model, "api_base": path.base(fake_llm_server)}},
        "invalid_allowance": 1,
    }
    played = await play(spec)
    outcome = played.result.outcome
    assert (outcome.kind, outcome.reason, outcome.by) == ("invalid", "unreadable", "buyer")
    said = [t for t in played.result.turns if t.speaker == "buyer" and not t.scripted]
    assert [(t.text, t.accepted) for t in said] == [("", False), ("", False)]
    assert all(t.error and "no action could be read" in t.error for t in said)


async def test_a_provider_error_holding_escapes_and_surrogates_is_one_clean_line(
    fake_llm_server: FakeLLMServer, path: HostedPath
) -> None:
    fake_llm_server.script(Status(400, f"bad request {SURROGATES} {ESCAPES}"))
    with pytest.raises(ModelError) as failed:
        await _backend(fake_llm_server, path).complete(CHAT)
    assert_one_clean_line(str(failed.value))


class _Reported(Backend):
    """A backend whose provider reports whatever the test says, as a provider's SDK would."""

    def __init__(self, text: Any, prompt: Any, completion: Any, cost: Any) -> None:
        super().__init__("fake/reported", retry_policy=FAST)
        self.reply = (text, prompt, completion, cost)

    async def _generate(self, messages: list[Message], **params: Any) -> Completion:
        text, prompt, completion, cost = self.reply
        return Completion(text, self.model, Usage(prompt, completion), cost)

    def cost_of(self, usage: Usage) -> float:
        return usage.total_tokens * 1e-6


_ANYTHING = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.none(),
    st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(
    text=st.one_of(st.text(st.characters(exclude_categories=())), st.none(), st.integers()),
    prompt=_ANYTHING,
    completion=_ANYTHING,
    cost=_ANYTHING,
)
@example(text="ok", prompt=-(10**12), completion=5, cost=-2.5)
@example(text="ok", prompt=10**30, completion=5, cost=math.inf)
@example(text="ok", prompt=10, completion=5, cost=math.nan)
@example(text="", prompt=12.0, completion=0.0, cost=0)
def test_nothing_a_provider_reports_escapes_the_check(
    text: Any, prompt: Any, completion: Any, cost: Any
) -> None:
    reply = asyncio.run(_Reported(text, prompt, completion, cost).complete(CHAT))
    assert_sane(reply)
    if not reply.usage.estimated:
        assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (prompt, completion)
    else:
        assert reply.cost_usd == pytest.approx(reply.usage.total_tokens * 1e-6)


# --- the storable-text and terminal rules ---------------------------------------------------

_ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=60)


@settings(max_examples=300, deadline=None)
@given(_ANY_TEXT)
@example("\ud800\udfff\udc00 lone")
@example("a\x00b")
def test_storable_text_is_stored_and_read_back_exactly(text: str) -> None:
    stored = storable_text(text)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (x TEXT)")
    db.execute("INSERT INTO t VALUES (?)", (stored,))
    assert db.execute("SELECT x, length(x) FROM t").fetchone() == (stored, len(stored))
    assert storable_text(stored) == stored
    if not re.search("[\ud800-\udfff\x00]", text):
        assert stored == text, "text a store can hold is kept as sent"


def test_storable_text_escapes_what_it_must_and_nothing_else() -> None:
    assert storable_text("\ud800\udfff") == "\U000103ff"
    assert storable_text("\udfff\ud800") == "\\udfff\\ud800"
    assert storable_text("a\x00b\udc00") == "a\\x00b\\udc00"
    assert storable_text("\x1b[31m é 🎈") == "\x1b[31m é 🎈"


_DRIVES_A_TERMINAL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


@settings(max_examples=300, deadline=None)
@given(_ANY_TEXT)
@example(ESCAPES)
def test_terminal_text_leaves_nothing_that_drives_a_terminal(text: str) -> None:
    shown = terminal_text(text)
    assert not _DRIVES_A_TERMINAL.search(shown)
    if not _DRIVES_A_TERMINAL.search(text):
        assert shown == text


def _turn(text: str, **fields: Any) -> TurnRecord:
    return TurnRecord(index=3, speaker="buyer", text=text, started_at=0, ended_at=0, **fields)


def _printed(renderable: Any, width: int = 80) -> str:
    console = Console(width=width, record=True, color_system=None, highlight=False)
    console.print(renderable)
    return console.export_text()


def test_a_turn_prints_escapes_visibly_and_markup_as_written() -> None:
    turn = _turn(f"{ESCAPES} {MARKUP} [OFFER $15]", error=f"no \x1b[2J{MARKUP}", accepted=False)
    shown = _printed(turn_line(turn), width=200)
    assert not _DRIVES_A_TERMINAL.search(shown)
    assert "\\x1b[31mred\\x1b[0m \\x1b]0;pwned\\x07 \\u202eevil\\u202c \\x9b2J" in shown
    assert "\\x0d\\x00 \\x7f" in shown
    assert MARKUP in shown, "rich markup in a reply is text, not markup"
    assert f"rejected: no \\x1b[2J{MARKUP}" in shown


@pytest.mark.parametrize("width", range(30, 120, 7))
def test_piped_show_never_wraps_inside_an_action(width: int) -> None:
    # Issue 12.9: `[OFFER` on one line and `$15]` on the next when stdout is not a terminal.
    words = "I hear you, but this balloon is hand-made and worth much more than that, so"
    turn = _turn(
        f"{words} [OFFER $1,250.50] and [WALK AWAY]",
        action=ActionRecord(kind="offer", price=1250.5),
    )
    lines = _printed(turn_line(turn), width).splitlines()
    assert len(lines) > 1, "the case must wrap to test anything"
    for tag in ("[OFFER $1,250.50]", "[WALK AWAY]", "⟨offer $1,250.50⟩"):
        assert any(tag in line for line in lines), (tag, lines)


# --- every command, end to end --------------------------------------------------------------

runner = CliRunner()


def haggler(*args: str) -> Result:
    result = runner.invoke(app, list(args))
    everything = result.output + (result.stderr or "")
    assert "Traceback" not in everything, everything
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    return result


def _model(path: HostedPath, server: FakeLLMServer) -> str:
    return f"{{model: {path.model}, api_base: '{path.base(server)}'}}"


def _write(folder: Path, name: str, text: str) -> str:
    spec = folder / name
    spec.write_text(text)
    return str(spec)


@dataclass
class HostileRun:
    db: Path
    provider: HostileProvider
    outputs: list[str]


@pytest.fixture
def hostile_run(
    tmp_path: Path, fake_llm_server: FakeLLMServer, path: HostedPath
) -> Iterator[HostileRun]:
    """`play`, `selfplay` and `tournament` against a provider whose every reply is hostile."""
    provider = HostileProvider()
    fake_llm_server.responder = provider
    db = str(tmp_path / "hostile.db")
    model = _model(path, fake_llm_server)
    common = f"moderator: {model}\nretry: {RETRY_SPEC}\ninvalid_allowance: 3\n"
    play = _write(
        tmp_path,
        "play.yaml",
        f"rules: {{max_exchanges: 5}}\nroles: {{seller: {model}, buyer: {model}}}\n{common}",
    )
    selfplay = _write(
        tmp_path,
        "selfplay.yaml",
        f"rules: {{max_exchanges: 4}}\nroles: {{seller: {model}, buyer: 'rule:linear'}}\n"
        f"critic: {model}\ncoached: seller\nrounds: 2\nlineages: 2\nfeedback: [ai]\n{common}",
    )
    tournament = _write(
        tmp_path,
        "tournament.yaml",
        f"name: hostile\nplayers:\n  - {{name: llm, model: {path.model}, "
        f"api_base: '{path.base(fake_llm_server)}'}}\n  - {{name: boulware, model: 'rule:boulware'}}\n"
        f"games: [{{game: balloon, rules: {{max_exchanges: 4}}}}]\nrepetitions: 3\n"
        f"concurrency: 4\n{common}",
    )
    outputs = []
    for seed in range(3):
        played = haggler("play", play, "--db", db, "--seed", str(seed))
        assert played.exit_code in (0, 1, 2), played.output
        outputs.append(played.output)
    outputs.append(haggler("play", play, "--db", db, "--seed", "9", "-q").output)
    for args in (["selfplay", selfplay], ["tournament", tournament]):
        result = haggler(*args, "--db", db)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    yield HostileRun(tmp_path / "hostile.db", provider, outputs)


def test_every_command_survives_a_hostile_provider(hostile_run: HostileRun, tmp_path: Path) -> None:
    db = str(hostile_run.db)
    assert set(hostile_run.provider.sent) == set(HOSTILE), "every hostile reply was sent"
    for output in hostile_run.outputs:
        assert not _DRIVES_A_TERMINAL.search(output), output

    with Store(hostile_run.db) as store:
        runs = {run.id: run.kind for run in store.runs()}
        episodes = [e for run_id in runs for e in store.run_episodes(run_id)]
        critiques = [c for run_id in runs for c in store.critiques(run_id=run_id)]
        memories = [m for owner in store.memory_owners() for m in store.memory(owner)]
    kinds = Counter(runs[e.run_id] for e in episodes)
    assert kinds == {"play": 4, "selfplay": 2 * 2, "tournament": 2 * 3}, kinds
    _assert_stored_sanely(episodes)
    # Counts haggler made itself are marked so in the store, the others are not.
    flags = {t.usage_estimated for e in episodes for t in e.transcript if t.model}
    assert flags == {True, False}, flags
    assert any(c.model for c in critiques), "a model critic was asked"
    for critique in critiques:
        critique.text.encode("utf-8")
        assert math.isfinite(critique.cost_usd) and critique.cost_usd >= 0
        assert 0 <= critique.prompt_tokens <= MAX_CALL_TOKENS
    for memory in memories:
        memory.content.encode("utf-8")

    for episode in episodes:
        shown = haggler("show", episode.id, "--db", db, "--briefs")
        assert shown.exit_code == 0, shown.output
        assert not _DRIVES_A_TERMINAL.search(shown.output), shown.output
    for run_id in runs:
        listed = haggler("show", "--list", "--run", run_id, "--db", db)
        assert listed.exit_code == 0 and not _DRIVES_A_TERMINAL.search(listed.output)
        _assert_strict_jsonl_export(db, run_id, tmp_path / f"{run_id}.jsonl")
        page = haggler("export", run_id, "-o", str(tmp_path / f"{run_id}.html"), "--db", db)
        assert page.exit_code == 0, page.output
    (selfplay,) = [run_id for run_id, kind in runs.items() if kind == "selfplay"]
    (tournament,) = [run_id for run_id, kind in runs.items() if kind == "tournament"]
    assert haggler("report", selfplay, "--db", db).exit_code == 0
    assert haggler("leaderboard", tournament, "--db", db).exit_code == 0


def _assert_stored_sanely(episodes: list[EpisodeRecord]) -> None:
    texts = [t.text for e in episodes for t in e.transcript]
    assert any("\\udc00" in text for text in texts), "the lone surrogate was kept, escaped"
    assert any("\x1b[31m" in text for text in texts), "escapes are stored as the model sent them"
    for episode in episodes:
        if episode.status == "finished":
            assert episode.outcome is not None, episode.id
        else:
            assert episode.status == "failed" and episode.error, (episode.id, episode.status)
            assert "Traceback" not in episode.error
        for turn in episode.transcript:
            turn.text.encode("utf-8")
            assert "\x00" not in turn.text
            if turn.action is not None and turn.action.price is not None:
                assert math.isfinite(turn.action.price), turn
            if turn.moderation and turn.moderation.unreadable_verdict is not None:
                turn.moderation.unreadable_verdict.encode("utf-8")
            for tokens, cost in [
                (turn.prompt_tokens + turn.completion_tokens, turn.cost_usd),
                *(
                    [
                        (
                            turn.moderation.prompt_tokens + turn.moderation.completion_tokens,
                            turn.moderation.cost_usd,
                        )
                    ]
                    if turn.moderation
                    else []
                ),
            ]:
                assert 0 <= tokens <= 2 * MAX_CALL_TOKENS, turn
                assert math.isfinite(cost) and cost >= 0, turn


def _refuse(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def _assert_strict_jsonl_export(db: str, run_id: str, target: Path) -> None:
    exported = haggler("export", run_id, "-o", str(target), "--db", db)
    assert exported.exit_code == 0, exported.output
    lines = target.read_text(encoding="utf-8").splitlines()
    assert lines
    for line in lines:
        json.loads(line, parse_constant=_refuse)


def test_a_budget_holds_when_the_provider_reports_negative_usage(
    tmp_path: Path, fake_llm_server: FakeLLMServer, path: HostedPath
) -> None:
    # Issue 14.5: -10^12 tokens a call let every match of a $0.0001 budget play,
    # "$-18225000.0000 spent".
    fake_llm_server.responder = HostileProvider(["negative usage"])
    spec = _write(
        tmp_path,
        "budget.yaml",
        f"name: thrifty\nplayers:\n  - {{name: llm, model: {path.model}, "
        f"api_base: '{path.base(fake_llm_server)}'}}\n  - {{name: boulware, model: 'rule:boulware'}}\n"
        f"repetitions: 10\nconcurrency: 1\nbudget_usd: 0.0001\nretry: {RETRY_SPEC}\n",
    )
    db = tmp_path / "budget.db"
    result = haggler("tournament", spec, "--db", str(db))
    assert result.exit_code == 1, result.output  # work left undone: the budget stopped it
    assert "budget reached" in result.output + (result.stderr or ""), result.output
    spent = re.search(r"\$(-?[\d.]+)\s+spent in all", result.output)
    assert spent is not None and float(spent.group(1)) > 0, result.output
    with Store(db) as store:
        (run,) = store.runs()
        played = store.run_episodes(run.id, transcripts=False)
        assert store.run_cost(run.id) > 0
    assert 0 < len(played) < 20, "the budget stopped the tournament early"


def test_the_issues_surrogate_reply_no_longer_ends_a_tournament_process(
    tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    # Issue 14.1, as a user met it: a 65-line traceback, 0 games stored. In a real process,
    # whose stdout is strict UTF-8; a vLLM server, so that no price map is loaded.
    fake_llm_server.responder = lambda request: Text("\ud800\udfff\udc00 lone [OFFER $15]")
    spec = _write(
        tmp_path,
        "tournament.yaml",
        f"name: lone\nplayers:\n  - {{name: llm, model: hosted_vllm/served, "
        f"api_base: '{fake_llm_server.openai_base}'}}\n  - {{name: linear, model: 'rule:linear'}}\n"
        f"repetitions: 2\n",
    )
    db = tmp_path / "lone.db"
    env = dict(os.environ, OPENAI_API_KEY=KEY, PYTHONIOENCODING="utf-8:strict")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from haggler.cli import main; main()",
            "tournament",
            spec,
            "--db",
            str(db),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    with Store(db) as store:
        (run,) = store.runs()
        episodes = store.run_episodes(run.id)
    assert len(episodes) == 4 and all(e.status == "finished" for e in episodes)
    said = [t.text for e in episodes for t in e.transcript if t.model]
    assert said and all(t == "\U000103ff\\udc00 lone [OFFER $15]" for t in said)


def test_show_and_export_read_a_store_that_holds_an_infinite_price(tmp_path: Path) -> None:
    # Issue 14.2: a store written before prices were checked holds price Inf; `show` of that
    # game crashed every time and the export wrote `"price": Infinity`.
    db = tmp_path / "old.db"
    assert haggler("play", "--db", str(db), "-q").exit_code == 0
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE turns SET price = 9e999 WHERE idx = 1")
        assert raw.execute("SELECT price FROM turns WHERE idx = 1").fetchone() == (math.inf,)
    shown = haggler("show", "--db", str(db))
    assert shown.exit_code == 0, shown.output
    exported = haggler("export", "-o", str(tmp_path / "old.jsonl"), "--db", str(db))
    assert exported.exit_code == 0, exported.output
    (line,) = (tmp_path / "old.jsonl").read_text().splitlines()
    game = json.loads(line, parse_constant=_refuse)
    assert game["transcript"][1]["action"] == {"kind": "offer", "price": None, "source": "tag"}


def test_play_and_show_print_model_text_inert(
    tmp_path: Path, fake_llm_server: FakeLLMServer
) -> None:
    # Issue 14.3: a reply with \x1b[31m and an OSC title sequence was printed raw.
    fake_llm_server.responder = lambda request: Text(f"{ESCAPES} [OFFER $15]")
    db = str(tmp_path / "esc.db")
    spec = _write(
        tmp_path, "esc.yaml", f"roles: {{buyer: {_model(PATHS['openai-sdk'], fake_llm_server)}}}\n"
    )
    played = haggler("play", spec, "--db", db)
    shown = haggler("show", "--db", db)
    for result in (played, shown):
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\u202e" not in result.output
        assert "\\x1b[31mred\\x1b[0m \\x1b]0;pwned\\x07" in result.output
    with Store(db) as store:
        (episode,) = store.episodes()
        said = [t.text for t in store.episode(episode.id).transcript if t.model]
    stored = ESCAPES.replace("\x00", "\\x00")  # NUL is the one control a store cannot hold
    assert said[0] == f"{stored} [OFFER $15]", "stored as sent"


def test_print_episode_of_a_failed_game_shows_its_reason_inert() -> None:
    episode = EpisodeRecord(
        id="ep-1",
        run_id="run-1",
        game="balloon",
        seed=0,
        status="failed",
        roles={},
        error=f"openai/x: the provider failed (HTTP 500: {ESCAPES}); usually passes",
        started_at=0,
    )
    console = Console(width=100, record=True, color_system=None)
    print_episode(console, episode)
    shown = console.export_text()
    assert not _DRIVES_A_TERMINAL.search(shown) and "failed: openai/x" in shown
