"""Concession tactics, rule-based negotiators, and whole episodes played through the graph."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haggler.agents.actions import Action, ActionKind, parse_action
from haggler.agents.base import Negotiator, PublicMessage, Reply, RoleView
from haggler.agents.rule_negotiator import RuleNegotiator
from haggler.agents.tactics import TACTICS, Position, Tactic, TimeDependent, TitForTat
from haggler.errors import PlayerError
from haggler.games.base import Game
from haggler.games.check import check_role
from haggler.games.episode import EpisodeResult, play_episode
from haggler.games.outcome import Outcome
from haggler.games.registry import make_game
from haggler.store.records import TurnRecord

OFFER, ACCEPT, WALK = ActionKind.OFFER, ActionKind.ACCEPT, ActionKind.WALK_AWAY
TACTIC_NAMES = ("boulware", "linear", "conceder", "tit-for-tat")
SECRETS = {"seller_cost": 8.37, "buyer_budget": 17.63}
HALF_CENT = 0.005 + 1e-9


# --- helpers -------------------------------------------------------------------------------


class Recording(RuleNegotiator):
    """A rule negotiator that remembers every view it was shown and every action it decided."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.views: list[RoleView] = []
        self.decided: list[Action] = []

    async def respond(self, view: RoleView) -> Reply:
        self.views.append(view)
        return await super().respond(view)

    def decide(self, view: RoleView) -> Action:
        action = super().decide(view)
        self.decided.append(action)
        return action


class Scripted(Negotiator):
    """Says the given texts in order, then repeats the last; remembers what it was shown."""

    def __init__(self, role: str, texts: Sequence[str]) -> None:
        self.role = role
        self.label = "scripted"
        self.texts = list(texts)
        self.views: list[RoleView] = []

    async def respond(self, view: RoleView) -> Reply:
        self.views.append(view)
        return Reply(self.texts[min(len(self.views), len(self.texts)) - 1])


def rule(role: str, tactic: str, seed: int = 0, **kwargs: Any) -> Recording:
    return Recording(role, TACTICS.get(tactic)(), seed=seed, **kwargs)


async def play(game: Game, seller: Negotiator, buyer: Negotiator, **kwargs: Any) -> EpisodeResult:
    return await play_episode(game, {"seller": seller, "buyer": buyer}, **kwargs)


def generated(result: EpisodeResult) -> list[TurnRecord]:
    return [t for t in result.turns if not t.scripted]


def texts(result: EpisodeResult) -> list[str]:
    return [t.text for t in result.turns]


def check_valid_bargain(game: Game, result: EpisodeResult) -> None:
    """A game between rule negotiators ends in a valid deal or a plain no-deal."""
    low, high = game.rules.buyer_opening, game.rules.seller_opening  # type: ignore[attr-defined]
    outcome = result.outcome
    assert outcome.kind in ("deal", "no_deal"), f"{outcome.describe()}\n" + "\n".join(texts(result))
    if outcome.kind == "deal":
        assert outcome.reason == "accepted"
        assert outcome.price is not None and low < outcome.price < high, outcome
    else:
        assert outcome.reason in ("walk_away", "turn_limit"), outcome
    assert set(result.scores) == {"seller", "buyer"}
    assert len(generated(result)) <= game.max_turns


# --- time-dependent tactics ----------------------------------------------------------------


SELLER_POSITION = dict(opening=20.0, reserve=12.0, own_offers=(20.0,), rival_offers=(10.0,))


def at(progress: float, **overrides: Any) -> Position:
    return Position(**(SELLER_POSITION | {"progress": progress} | overrides))


@pytest.mark.parametrize("exponent", [0.3, 1.0, 3.0, 0.05, 20.0])
def test_time_dependent_offer_follows_the_formula(exponent: float) -> None:
    tactic = TimeDependent(exponent)
    for t in (0.0, 0.1, 0.25, 0.5, 0.9, 1.0):
        expected = 20.0 + (12.0 - 20.0) * t ** (1 / exponent)
        assert tactic.next_offer(at(t)) == pytest.approx(expected), (exponent, t)


@pytest.mark.parametrize("exponent", [0.3, 1.0, 3.0])
def test_time_dependent_starts_at_the_opening_and_reaches_the_reserve(exponent: float) -> None:
    tactic = TimeDependent(exponent)
    assert tactic.next_offer(at(0.0)) == pytest.approx(20.0)
    assert tactic.next_offer(at(1.0)) == pytest.approx(12.0)
    # Progress outside [0, 1] is clamped rather than extrapolated past the reserve.
    assert tactic.next_offer(at(1.7)) == pytest.approx(12.0)
    assert tactic.next_offer(at(-0.5)) == pytest.approx(20.0)


@pytest.mark.parametrize("t", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_boulware_concedes_less_early_than_linear_and_conceder_more(t: float) -> None:
    boulware, linear, conceder = (TACTICS.get(name)() for name in TACTIC_NAMES[:3])
    # In the seller's direction a higher offer is a smaller concession.
    assert boulware.next_offer(at(t)) > linear.next_offer(at(t)) > conceder.next_offer(at(t))
    assert linear.next_offer(at(t)) == pytest.approx(20.0 - 8.0 * t)


@settings(max_examples=200, deadline=None)
@given(
    exponent=st.floats(0.05, 20.0),
    t1=st.floats(0.0, 1.0),
    t2=st.floats(0.0, 1.0),
    opening=st.floats(-5000.0, 5000.0),
    span=st.floats(0.01, 5000.0),
)
def test_time_dependent_concedes_monotonically_between_opening_and_reserve(
    exponent: float, t1: float, t2: float, opening: float, span: float
) -> None:
    tactic = TimeDependent(exponent)
    early, late = sorted((t1, t2))
    pos = dict(opening=opening, reserve=opening - span, own_offers=(), rival_offers=())
    first = tactic.next_offer(Position(progress=early, **pos))
    second = tactic.next_offer(Position(progress=late, **pos))
    tolerance = 1e-9 * max(1.0, abs(opening), span)
    assert second <= first + tolerance, "a later offer never takes back a concession"
    assert opening - span - tolerance <= second <= opening + tolerance


@pytest.mark.parametrize("exponent", [0.0, -1.0, float("nan"), float("inf"), True, "2"])
def test_time_dependent_needs_a_positive_exponent(exponent: float) -> None:
    with pytest.raises(ValueError, match="exponent must be a positive number"):
        TimeDependent(exponent)


def test_registered_tactics() -> None:
    assert set(TACTIC_NAMES) <= set(TACTICS.names())
    assert TACTICS.get("boulware")().describe() == "boulware(exponent=0.3)"
    assert TACTICS.get("linear")().describe() == "linear(exponent=1)"
    assert TACTICS.get("conceder")().describe() == "conceder(exponent=3)"
    assert TACTICS.get("conceder")(exponent=5).describe() == "conceder(exponent=5)"
    assert TACTICS.get("tit-for-tat")().describe() == "tit-for-tat(mirror=1)"


# --- tit-for-tat ---------------------------------------------------------------------------


def test_tit_for_tat_mirrors_the_rivals_last_concession() -> None:
    tactic = TitForTat()
    # The rival moved 10 -> 13 (a concession of 3), so we move 18 -> 15.
    assert tactic.next_offer(at(0.5, own_offers=(20.0, 18.0), rival_offers=(10.0, 13.0))) == 15.0
    assert TitForTat(mirror=0.5).next_offer(
        at(0.5, own_offers=(20.0, 18.0), rival_offers=(10.0, 13.0))
    ) == pytest.approx(16.5)


def test_tit_for_tat_does_not_reward_a_rival_that_backs_off() -> None:
    position = at(0.5, own_offers=(20.0, 18.0), rival_offers=(10.0, 13.0, 12.0))
    assert TitForTat().next_offer(position) == 18.0


def test_tit_for_tat_opens_with_a_small_step_and_stops_at_the_reserve() -> None:
    assert TitForTat().next_offer(at(0.1)) == pytest.approx(20.0 - 0.05 * 8.0)
    assert TitForTat(first_step=0.25).next_offer(at(0.1, own_offers=())) == pytest.approx(18.0)
    big = at(0.5, own_offers=(20.0, 13.0), rival_offers=(10.0, 19.0))
    assert TitForTat().next_offer(big) == 12.0, "never past the reserve"


def _view(game: Game, role: str, public: Sequence[PublicMessage], turn: int) -> RoleView:
    return RoleView(role, game.brief(role), tuple(public), game.facts, turn, game.max_turns)


def _offer(speaker: str, price: float, scripted: bool = False) -> PublicMessage:
    return PublicMessage(speaker, f"[OFFER ${price}]", Action(OFFER, price), scripted)


def test_tit_for_tat_buyer_mirrors_a_seller_concession_in_prices() -> None:
    game = make_game("balloon")
    buyer = RuleNegotiator("buyer", TitForTat(), jitter=0)
    opening = game.opening()
    public = [*opening, _offer("seller", 19.0), _offer("buyer", 11.0), _offer("seller", 16.0)]
    # The seller came down by 3, so the buyer goes up by 3 from its last offer.
    assert buyer.decide(_view(game, "buyer", public, 3)) == Action(OFFER, 14.0)


# --- rule negotiators ----------------------------------------------------------------------


def test_rule_negotiator_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="seller or buyer"):
        RuleNegotiator("moderator", TimeDependent(1.0))
    with pytest.raises(ValueError, match="reserve_share"):
        RuleNegotiator("seller", TimeDependent(1.0), reserve_share=1.5)
    assert RuleNegotiator("buyer", TACTICS.get("boulware")()).label == "rule:boulware"
    assert RuleNegotiator("buyer", TitForTat(), label="tft").label == "tft"


async def test_rule_negotiator_message_ends_with_its_tag_or_has_none_in_plain_text() -> None:
    game = make_game("balloon")
    view = _view(game, "seller", game.opening(), 0)
    tagged = await RuleNegotiator("seller", TimeDependent(1.0)).respond(view)
    assert tagged.completion is None
    assert tagged.text.rstrip().endswith("]") and parse_action(tagged.text).source == "tag"  # type: ignore[union-attr]
    plain = await RuleNegotiator("seller", TimeDependent(1.0), plain_text=True).respond(view)
    assert "[" not in plain.text
    assert parse_action(plain.text) is not None


class Reckless(Tactic):
    """Always proposes far past the reserve: the negotiator must hold the line itself."""

    name = "reckless"

    def next_offer(self, position: Position) -> float:
        return position.reserve - 1000.0


class Whimsical(Tactic):
    """Concedes to the reserve, then asks for more than its opening, and so on."""

    name = "whimsical"

    def next_offer(self, position: Position) -> float:
        if len(position.own_offers) % 2:
            return position.reserve
        return position.opening + 5.0


def _tactic(name: str) -> Tactic:
    extra: dict[str, type[Tactic]] = {"reckless": Reckless, "whimsical": Whimsical}
    return extra[name]() if name in extra else TACTICS.get(name)()


def _reserve(role: str, share: float, cost: float, budget: float | None) -> float:
    # The balloon's openings are 10 and 20, its price step $0.50.
    if role == "seller":
        return max(10.0 + share * 10.0, cost + 0.5)
    ceiling = 20.0 - share * 10.0
    return ceiling if budget is None else min(ceiling, budget)


@settings(max_examples=150, deadline=None)
@given(
    role=st.sampled_from(["seller", "buyer"]),
    tactic=st.sampled_from([*TACTIC_NAMES, "reckless", "whimsical"]),
    share=st.floats(0.0, 0.45),
    cost=st.floats(0.0, 18.5),
    budget=st.none() | st.floats(10.5, 40.0),
    rival_prices=st.lists(st.floats(0.0, 30.0).map(lambda p: round(p, 2)), max_size=12),
    max_exchanges=st.integers(1, 10),
)
def test_rule_negotiator_stays_inside_openings_and_reserve_and_never_takes_back(
    role: str,
    tactic: str,
    share: float,
    cost: float,
    budget: float | None,
    rival_prices: list[float],
    max_exchanges: int,
) -> None:
    game = make_game(
        "balloon", {"seller_cost": cost, "buyer_budget": budget, "max_exchanges": max_exchanges}
    )
    me = RuleNegotiator(role, _tactic(tactic), reserve_share=share, jitter=0)
    rival = "buyer" if role == "seller" else "seller"
    sign = 1.0 if role == "seller" else -1.0
    reserve = _reserve(role, share, cost, budget)
    public = list(game.opening())
    last_own = 20.0 if role == "seller" else 10.0
    turn = 0
    prices = iter(rival_prices)
    if role == "buyer":  # the seller speaks first
        price = next(prices, None)
        if price is None:
            return
        public.append(_offer(rival, price))
        turn += 1
    while turn < game.max_turns:
        view = _view(game, role, public, turn)
        action = me.decide(view)
        standing = next(m.action.price for m in reversed(public) if m.speaker == rival)
        if action.kind is OFFER:
            assert action.price is not None and 10.0 < action.price < 20.0, action
            assert sign * action.price <= sign * last_own + 1e-9, (action, last_own)
            # Prices are in cents, so a reserve such as 13.125 may be met at 13.12.
            assert sign * action.price >= sign * reserve - HALF_CENT, (action, reserve)
            last_own = action.price
        elif action.kind is ACCEPT:
            assert action.price == standing, (action, standing)
            assert 10.0 < action.price < 20.0, action
            assert sign * action.price >= sign * reserve - HALF_CENT, (action, reserve)
            return
        else:
            assert action.kind is WALK, action
            assert view.turns_left <= 2, f"walked away with {view.turns_left} turns left"
            return
        public.append(PublicMessage(role, "", action))
        turn += 1
        price = next(prices, None)
        if price is None or turn >= game.max_turns:
            return
        public.append(_offer(rival, price))
        turn += 1


@pytest.mark.parametrize(
    ("role", "params"),
    [("buyer", {"buyer_budget": 10.2}), ("seller", {"seller_cost": 19.8})],
)
def test_rule_negotiator_never_offers_past_a_reserve_next_to_the_rivals_opening(
    role: str, params: dict[str, float]
) -> None:
    game = make_game("balloon", params)
    public = list(game.opening())
    turn = 0
    if role == "buyer":
        public.append(_offer("seller", 19.5))
        turn = 1
    action = RuleNegotiator(role, TimeDependent(1.0), jitter=0).decide(
        _view(game, role, public, turn)
    )
    if role == "buyer":
        assert action.kind is not OFFER or action.price <= 10.2, action  # type: ignore[operator]
    else:
        assert action.kind is not OFFER or action.price >= 19.8, action  # type: ignore[operator]


@pytest.mark.parametrize("role", ["seller", "buyer"])
async def test_rule_negotiator_guards_against_its_own_tactic(role: str) -> None:
    # Whatever the tactic proposes, offers stay between the reserve and the last offer.
    game = make_game("balloon")
    reserve = _reserve(role, 0.25, 8.0, None)
    sign = 1 if role == "seller" else -1
    for tactic in (Reckless(), Whimsical()):
        me = Recording(role, tactic, jitter=0)
        rival = Scripted("buyer" if role == "seller" else "seller", ["[REJECT]"])
        players = {role: me, rival.role: rival}
        await play_episode(game, players)
        offers = [a.price for a in me.decided if a.kind is OFFER]
        assert offers, me.decided
        assert all(sign * p >= sign * reserve for p in offers), (tactic.name, offers)  # type: ignore[operator]
        assert all(
            sign * later <= sign * earlier  # type: ignore[operator]
            for earlier, later in itertools.pairwise(offers)
        ), (tactic.name, offers)


# --- tournaments between every pair of tactics ---------------------------------------------


@pytest.mark.parametrize("plain_text", [False, True], ids=["tags", "plain"])
@pytest.mark.parametrize(("seller", "buyer"), list(itertools.product(TACTIC_NAMES, repeat=2)))
@pytest.mark.parametrize("game_name", ["balloon", "diamond"])
async def test_every_pair_of_tactics_ends_validly(
    game_name: str, seller: str, buyer: str, plain_text: bool
) -> None:
    game = make_game(game_name)
    low, high = game.rules.buyer_opening, game.rules.seller_opening  # type: ignore[attr-defined]
    span = high - low
    for seed in (0, 1):
        players = {
            "seller": rule("seller", seller, seed, plain_text=plain_text),
            "buyer": rule("buyer", buyer, seed, plain_text=plain_text),
        }
        result = await play_episode(game, players)
        check_valid_bargain(game, result)
        history: dict[str, list[float]] = {"seller": [high], "buyer": [low]}
        for role in ("seller", "buyer"):
            mine = [t for t in generated(result) if t.speaker == role]
            decided = players[role].decided
            assert len(mine) == len(decided)
            for turn, action in zip(mine, decided, strict=True):
                # The moderator reads back exactly what the negotiator meant, prose or tag.
                assert turn.accepted and turn.error is None, turn
                assert turn.action is not None, turn.text
                assert (turn.action.kind, turn.action.price) == (action.kind.value, action.price)
                assert turn.action.source == ("text" if plain_text else "tag")
        for turn in generated(result):
            assert turn.action is not None
            price = turn.action.price
            sign = 1 if turn.speaker == "seller" else -1
            if turn.action.kind == "offer":
                assert price is not None and low < price < high, turn.text
                assert sign * price <= sign * history[turn.speaker][-1], "took back a concession"
                history[turn.speaker].append(price)
            if turn.action.kind in ("offer", "accept"):
                # With jitter 0.05 around 0.25, no reserve is nearer the rival than 20% in.
                if turn.speaker == "seller":
                    assert price >= low + 0.2 * span - 1e-9, turn.text
                else:
                    assert price <= high - 0.2 * span + 1e-9, turn.text
        if result.outcome.kind == "deal":
            last = generated(result)[-1]
            rival = "buyer" if last.speaker == "seller" else "seller"
            assert result.outcome.price == history[rival][-1], "a deal is at the rival's offer"
            assert result.scores == game.score(result.outcome)


@pytest.mark.parametrize("plain_text", [False, True], ids=["tags", "plain"])
async def test_rule_negotiators_never_reveal_their_secrets(plain_text: bool) -> None:
    game = make_game("balloon", SECRETS)
    for seller, buyer in itertools.product(TACTIC_NAMES, repeat=2):
        for seed in (0, 1):
            result = await play(
                game,
                rule("seller", seller, seed, plain_text=plain_text),
                rule("buyer", buyer, seed, plain_text=plain_text),
            )
            check_valid_bargain(game, result)
            for turn in generated(result):
                assert "8.37" not in turn.text and "17.63" not in turn.text, turn.text
                spoken = [m for m in (parse_action(turn.text),) if m and m.price is not None]
                assert all(a.price not in (8.37, 17.63) for a in spoken), turn.text
            if result.outcome.kind == "deal":
                assert 8.37 < result.outcome.price <= 17.63, result.outcome  # type: ignore[operator]


async def test_a_fast_conceder_does_not_offer_its_exact_budget() -> None:
    game = make_game("balloon", {"buyer_budget": 17.83})
    buyer = Recording("buyer", TACTICS.get("conceder")(exponent=50), reserve_share=0.0)
    result = await play(game, rule("seller", "boulware"), buyer)
    spoken = " ".join(t.text for t in generated(result) if t.speaker == "buyer")
    assert "17.83" not in spoken, spoken


@pytest.mark.parametrize("plain_text", [False, True], ids=["tags", "plain"])
async def test_rule_negotiators_are_read_correctly_at_millions(plain_text: bool) -> None:
    game = make_game(
        "balloon", {"seller_opening": 1_500_000, "buyer_opening": 1_000_000, "seller_cost": 10}
    )
    for seed in (0, 1, 2):
        seller = rule("seller", "linear", seed, plain_text=plain_text)
        buyer = rule("buyer", "linear", seed, plain_text=plain_text)
        result = await play(game, seller, buyer)
        check_valid_bargain(game, result)
        for turn in generated(result):
            assert turn.accepted, turn.error
            if turn.action is not None and turn.action.price is not None:
                assert 1_000_000 < turn.action.price < 1_500_000, turn.text


# --- determinism ---------------------------------------------------------------------------


@pytest.mark.parametrize("plain_text", [False, True], ids=["tags", "plain"])
async def test_same_seed_gives_the_same_transcript(plain_text: bool) -> None:
    game = make_game("balloon")
    for seller, buyer in [("boulware", "conceder"), ("tit-for-tat", "linear")]:
        runs = [
            await play(
                game,
                rule("seller", seller, 7, plain_text=plain_text),
                rule("buyer", buyer, 7, plain_text=plain_text),
            )
            for _ in range(2)
        ]
        assert texts(runs[0]) == texts(runs[1])
        assert runs[0].outcome == runs[1].outcome


@pytest.mark.parametrize("plain_text", [False, True], ids=["tags", "plain"])
async def test_different_seeds_give_different_transcripts(plain_text: bool) -> None:
    game = make_game("balloon")
    transcripts = set()
    for seed in range(4):
        result = await play(
            game,
            rule("seller", "linear", seed, plain_text=plain_text),
            rule("buyer", "linear", seed, plain_text=plain_text),
        )
        transcripts.add(tuple(texts(result)))
    assert len(transcripts) == 4, "every seed should play out differently"


def test_seeds_move_the_reserve_within_the_jitter() -> None:
    shares = {RuleNegotiator("seller", TitForTat(), seed=s).reserve_share for s in range(20)}
    assert len(shares) > 15
    assert all(0.2 <= s <= 0.3 for s in shares), shares
    assert RuleNegotiator("seller", TitForTat(), seed=3, jitter=0).reserve_share == 0.25


# --- bad negotiators -----------------------------------------------------------------------


BAD_MESSAGES = {
    "empty": ("", "unreadable"),
    "gibberish": ("asdkjh qweoiu zxcmn plork", "unreadable"),
    "html": ("<html><body><div class='offer'><p>Hello!</p></div></body></html>", "unreadable"),
    "huge": (("lorem ipsum dolor sit amet " * 4000)[:100_000], "unreadable"),
    "unicode": ("🎈🎈 ¿Qué tal? 価格は高すぎる — ça va? ∑∞", "unreadable"),
    "accept_unoffered": ("Deal, I accept! [ACCEPT $15]", "illegal_action"),
    "offer_without_price": ("How about this? [OFFER]", "unreadable"),
}


@pytest.mark.parametrize("bad_role", ["seller", "buyer"])
@pytest.mark.parametrize("name", list(BAD_MESSAGES))
async def test_a_bad_negotiator_gets_a_private_correction_then_loses(
    name: str, bad_role: str
) -> None:
    text, reason = BAD_MESSAGES[name]
    game = make_game("balloon")
    offender = Scripted(bad_role, [text])
    rival_role = "buyer" if bad_role == "seller" else "seller"
    rival = rule(rival_role, "linear")
    seen: list[TurnRecord] = []
    result = await play_episode(
        game, {bad_role: offender, rival_role: rival}, listeners=[seen.append]
    )

    assert result.outcome == Outcome.invalid(reason, by=bad_role)
    assert result.scores == {"seller": 0.0, "buyer": 0.0}
    rejected = [t for t in result.turns if not t.accepted]
    assert len(rejected) == 2, "one correction allowed, the second bad message ends it"
    for turn in rejected:
        assert turn.speaker == bad_role and turn.text == text
        assert turn.error, turn
        if reason == "unreadable":
            assert turn.action is None and "[OFFER $15]" in turn.error
        else:
            assert turn.action is not None and turn.action.kind == "accept"
            assert "$15" in turn.error
    # Rejected messages never reach the public conversation.
    assert all(m.text != text for m in result.public)
    assert len(result.public) == 2 + sum(1 for t in generated(result) if t.accepted)

    # The correction goes to the offender's next view, and to nobody else.
    assert [v.correction for v in offender.views] == [None, rejected[0].error]
    assert offender.views[0].public == offender.views[1].public
    assert offender.views[1].turn == offender.views[0].turn
    assert all(v.correction is None for v in rival.views)
    assert all(m.text != text for v in rival.views for m in v.public)
    assert rival.views if bad_role == "buyer" else not rival.views
    assert seen == list(result.turns)


async def test_a_rejected_accept_names_the_rivals_standing_price() -> None:
    game = make_game("balloon")
    seller = Scripted("seller", ["[OFFER $18]", "[OFFER $17]"])
    buyer = Scripted("buyer", ["Sure. [ACCEPT $15]", "[ACCEPT $15]"])
    result = await play(game, seller, buyer)
    assert result.outcome == Outcome.invalid("illegal_action", by="buyer")
    first_error = [t for t in result.turns if not t.accepted][0].error
    assert first_error is not None and "$18" in first_error and "$15" in first_error
    assert buyer.views[1].correction == first_error


@pytest.mark.parametrize("allowance", [0, 1, 2, 4])
async def test_invalid_allowance_is_how_many_bad_messages_are_forgiven(allowance: int) -> None:
    game = make_game("balloon")
    offender = Scripted("seller", ["nonsense"])
    result = await play(game, offender, rule("buyer", "linear"), invalid_allowance=allowance)
    assert result.outcome == Outcome.invalid("unreadable", by="seller")
    rejected = [t for t in result.turns if not t.accepted]
    assert len(rejected) == allowance + 1
    assert len(offender.views) == allowance + 1
    assert offender.views[0].correction is None
    assert all(v.correction == rejected[0].error for v in offender.views[1:])
    assert len(result.turns) == 2 + allowance + 1


async def test_allowance_zero_ends_at_the_first_bad_message() -> None:
    game = make_game("balloon")
    seller = Scripted("seller", ["[OFFER $18]", "[OFFER]"])
    buyer = rule("buyer", "boulware")
    result = await play(game, seller, buyer, invalid_allowance=0)
    assert result.outcome == Outcome.invalid("unreadable", by="seller")
    assert [t.accepted for t in generated(result)] == [True, True, False]
    assert len(seller.views) == 2 and len(buyer.views) == 1


@pytest.mark.parametrize("name", list(BAD_MESSAGES))
async def test_a_corrected_negotiator_plays_on_and_its_correction_is_cleared(name: str) -> None:
    game = make_game("balloon")
    bad, _ = BAD_MESSAGES[name]
    seller = Scripted("seller", [bad, "[OFFER $18]", "[OFFER $17]", "[WALK AWAY]"])
    buyer = Scripted("buyer", ["[OFFER $11]"])
    result = await play(game, seller, buyer)
    assert result.outcome == Outcome.no_deal("walk_away", by="seller")
    error = generated(result)[0].error
    assert error is not None
    assert [v.correction for v in seller.views] == [None, error, None, None]
    assert [v.correction for v in buyer.views] == [None, None]
    assert [v.turn for v in seller.views] == [0, 0, 2, 4]
    assert [m.text for m in result.public][2:] == [
        "[OFFER $18]",
        "[OFFER $11]",
        "[OFFER $17]",
        "[OFFER $11]",
        "[WALK AWAY]",
    ]


async def test_bad_messages_count_over_the_whole_episode_not_in_a_row() -> None:
    game = make_game("balloon")
    seller = Scripted("seller", ["???", "[OFFER $18]", "???", "[OFFER $17]"])
    result = await play(game, seller, Scripted("buyer", ["[OFFER $11]"]))
    assert result.outcome == Outcome.invalid("unreadable", by="seller")
    assert [t.accepted for t in generated(result)] == [False, True, True, False]


async def test_accepting_the_rivals_opening_ends_invalid_at_once() -> None:
    game = make_game("balloon")
    result = await play(game, Scripted("seller", ["Fine. [ACCEPT]"]), rule("buyer", "linear"))
    assert result.outcome == Outcome.invalid("price_out_of_range", by="seller", price=10.0)
    assert all(t.accepted for t in result.turns), "an out-of-range deal is no retry"


async def test_a_negotiator_that_raises_is_not_swallowed() -> None:
    class Crashing(Scripted):
        async def respond(self, view: RoleView) -> Reply:
            raise RuntimeError("backend down")

    # Not a game outcome: a one-line error for the run, the exception kept as its cause.
    with pytest.raises(PlayerError, match="backend down") as caught:
        await play(make_game("balloon"), Crashing("seller", []), rule("buyer", "linear"))
    assert isinstance(caught.value.__cause__, RuntimeError)


async def test_a_missing_player_is_refused() -> None:
    with pytest.raises(ValueError, match=r"needs a player for \['buyer'\]"):
        await play_episode(make_game("balloon"), {"seller": rule("seller", "linear")})


# --- the turn limit and listeners ----------------------------------------------------------


@pytest.mark.parametrize("exchanges", [1, 3, 10])
async def test_turn_limit_ends_with_no_deal_after_exactly_the_allowed_turns(
    exchanges: int,
) -> None:
    game = make_game("balloon", {"max_exchanges": exchanges})
    seller, buyer = Scripted("seller", ["[OFFER $18]"]), Scripted("buyer", ["[OFFER $12]"])
    result = await play(game, seller, buyer)
    assert result.outcome == Outcome.no_deal("turn_limit")
    assert len(generated(result)) == 2 * exchanges
    assert all(t.accepted for t in result.turns)
    assert len(seller.views) == len(buyer.views) == exchanges
    assert [v.turns_left for v in seller.views] == list(range(2 * exchanges, 0, -2))
    assert generated(result)[-1].speaker == "buyer"


async def test_rejected_turns_do_not_use_up_the_turn_limit() -> None:
    game = make_game("balloon", {"max_exchanges": 2})
    seller = Scripted("seller", ["???", "[OFFER $18]"])
    result = await play(game, seller, Scripted("buyer", ["[OFFER $12]"]))
    assert result.outcome == Outcome.no_deal("turn_limit")
    assert [t.accepted for t in generated(result)] == [False, True, True, True, True]


async def test_listeners_receive_every_turn_in_order_with_the_scripted_opening() -> None:
    game = make_game("balloon")
    first: list[TurnRecord] = []
    second: list[TurnRecord] = []
    seller = Scripted("seller", ["hmm", "[OFFER $16]", "[OFFER $15]"])
    buyer = Scripted("buyer", ["[OFFER $12]", "Deal. [ACCEPT]"])
    result = await play(game, seller, buyer, listeners=[first.append, second.append])
    assert result.outcome == Outcome.deal(15.0, by="buyer")
    assert first == second == list(result.turns)
    assert [t.index for t in first] == list(range(len(first)))
    opening = game.opening()
    assert [(t.speaker, t.text, t.scripted) for t in first[:2]] == [
        (m.speaker, m.text, True) for m in opening
    ]
    assert [t.text for t in first[2:]] == [
        "hmm",
        "[OFFER $16]",
        "[OFFER $12]",
        "[OFFER $15]",
        "Deal. [ACCEPT]",
    ]
    assert [t.accepted for t in first] == [True, True, False, True, True, True, True]
    assert all(t.started_at <= t.ended_at for t in first)
    assert first[0].action is not None and first[0].action.price == 20.0


async def test_a_deal_scores_and_ends_the_public_conversation() -> None:
    game = make_game("balloon", {"buyer_budget": 18})
    seller = Scripted("seller", ["[OFFER $16]"])
    buyer = Scripted("buyer", ["I accept $16. [ACCEPT $16]"])
    result = await play(game, seller, buyer)
    assert result.outcome == Outcome.deal(16.0, by="buyer")
    assert result.scores == {"seller": 8.0, "buyer": 2.0}
    assert result.public[-1] == PublicMessage(
        "buyer", "I accept $16. [ACCEPT $16]", Action(ACCEPT, 16.0)
    )


# --- conformance of the rule negotiator ----------------------------------------------------


@pytest.mark.parametrize("game_name", ["balloon", "diamond"])
@pytest.mark.parametrize("tactic", TACTIC_NAMES)
async def test_check_role_passes_for_rule_negotiators(game_name: str, tactic: str) -> None:
    await check_role(lambda role: RuleNegotiator(role, TACTICS.get(tactic)()), make_game(game_name))


async def test_check_role_catches_a_player_built_for_the_wrong_role() -> None:
    with pytest.raises(AssertionError, match="built a player for 'buyer'"):
        await check_role(
            lambda role: RuleNegotiator("buyer", TimeDependent(1.0)), make_game("balloon")
        )


async def test_check_role_catches_a_player_without_a_label() -> None:
    def unlabelled(role: str) -> Negotiator:
        player = Scripted(role, ["[WALK AWAY]"])
        player.label = ""
        return player

    with pytest.raises(AssertionError, match="has no label"):
        await check_role(unlabelled, make_game("balloon"))
