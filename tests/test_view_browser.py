"""The viewer in a real browser: Debian's chromium, headless, driven by playwright.

What a person sees: the runs, a run's games filtered, a game read as a chat with its chart,
briefs, feedback and round links; agents' markup shown as text and never run; the static report
working from disk with no server. Skips where chromium or playwright is missing, unless
HAGGLER_REQUIRE_BROWSER=1 (set by .ci/run) makes that a failure.
"""

from __future__ import annotations

import importlib.util
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest

from haggler.store import Store
from haggler.store.records import EpisodeRecord
from haggler.view import ViewerServer, make_server, write_report
from tests.fakes.viewer_store import (
    ATTR,
    HOSTILE_PLAYER,
    IMG,
    SCRIPT,
    ViewerStore,
    build_viewer_store,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Dialog, Locator, Page, Route

CHROMIUM = Path("/usr/bin/chromium")
# Offline and quiet: no sandbox (containers), no GPU, nothing fetched in the background.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TOURNAMENT_PLAYERS = {"boulware", "linear", "conceder", "tit-for-tat"}


def _why_no_browser() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing; install Debian's chromium (apt-get install chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is missing; pip install -e '.[dev]'"
    return None


# CI sets HAGGLER_REQUIRE_BROWSER=1 so that these tests can never pass by skipping there: the
# `browser` fixture fails instead, and the rest of the suite still runs and reports.
_MISSING = _why_no_browser()
_REQUIRED = os.environ.get("HAGGLER_REQUIRE_BROWSER") == "1"
if _MISSING is not None and not _REQUIRED:
    pytest.skip(_MISSING, allow_module_level=True)


# --- fixtures: one store and one browser per module; a server and a page per test ---------


@pytest.fixture(scope="module")
def viewer_store(tmp_path_factory: pytest.TempPathFactory) -> ViewerStore:
    return build_viewer_store(tmp_path_factory.mktemp("viewer") / "viewer.db")


@pytest.fixture(scope="module")
def browser(viewer_store: ViewerStore) -> Iterator[Browser]:
    # The store is built first: playwright's sync API keeps an event loop running in this
    # thread, where building it (asyncio.run) could not start another.
    if _MISSING is not None:
        pytest.fail(f"HAGGLER_REQUIRE_BROWSER=1 but {_MISSING}", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # Debian's chromium, never a download: `playwright install` fails offline.
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def server(viewer_store: ViewerStore) -> Iterator[ViewerServer]:
    # Per test (it starts in milliseconds), so the report tests run with no server at all.
    server = make_server(viewer_store.path, port=0, results_wait_s=60)
    server.start_in_background()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(5_000)  # a missing element fails in seconds, not in 30
    yield page
    context.close()


# --- what the store holds: the answers the pages are checked against ----------------------


def _episodes(viewer_store: ViewerStore, run_id: str) -> list[EpisodeRecord]:
    with Store(viewer_store.path) as store:
        return store.run_episodes(run_id)


def _phrase_of_one_game(viewer_store: ViewerStore, run_id: str) -> tuple[str, str]:
    """A phrase said in exactly one game of the run (messages and feedback, any case): its
    own feedback and the advice it came in with, which its section shows too."""
    with Store(viewer_store.path) as store:
        episodes = store.run_episodes(run_id)
        feedback: dict[str, str] = {}
        for critique in store.critiques(run_id=run_id):
            feedback[critique.episode_id] = feedback.get(critique.episode_id, "") + critique.text
    before = {(e.lineage_id, (e.round or 0) + 1): e.id for e in episodes}
    said = {
        e.id: " ".join([*(t.text for t in e.transcript), feedback.get(e.id, ""),
                        feedback.get(before.get((e.lineage_id, e.round or 0), ""), "")])
        for e in episodes
    }  # fmt: skip
    lowered = {game: words.lower() for game, words in said.items()}
    for game, words in said.items():
        for phrase in re.findall(r"\S{4,}", words):
            if sum(phrase.lower() in other for other in lowered.values()) == 1:
                return phrase, game
    raise AssertionError(f"no phrase of run {run_id} is said in one game only")


def _watch(page: Page) -> list[str]:
    """Everything that would mean a script ran or tried to: dialogs, errors, CSP reports."""
    alarms: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        alarms.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: alarms.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            alarms.append(f"console: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    return alarms


def _assert_nothing_ran(page: Page, alarms: list[str]) -> None:
    assert page.evaluate("typeof window.__pwned") == "undefined", "an agent's script ran"
    assert page.title() != "pwned"
    assert page.locator("#injected").count() == 0, "an agent's markup became an element"
    assert page.locator("img[src=x]").count() == 0
    assert alarms == []


def _shown_rounds(page: Page) -> list[str]:
    return page.locator("tr.game-row:visible td:nth-child(5)").all_inner_texts()


def _submit_filters(page: Page, **choices: str) -> None:
    form = page.locator("form#filters")
    for name, value in choices.items():
        if name == "text":
            form.locator("input[name=text]").fill(value)
        else:
            form.locator(f"select[name={name}]").select_option(value)
    with page.expect_navigation():
        form.get_by_role("button", name="Filter").click()


def _match_count(page: Page) -> Locator:
    return page.locator("#match-count")


def _critiques(viewer_store: ViewerStore, episode_id: str) -> list:  # type: ignore[type-arg]
    with Store(viewer_store.path) as store:
        return store.critiques(episode_id=episode_id)


def _query(page: Page) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(page.url).query).items()}


# --- the live viewer ----------------------------------------------------------------------


def test_runs_page_lists_the_runs_and_opens_a_selfplay_run(
    page: Page, server: ViewerServer, viewer_store: ViewerStore
) -> None:
    from playwright.sync_api import expect

    page.goto(server.url)
    links = page.locator("a.run-link")
    expect(links).to_have_count(3)
    assert set(links.all_inner_texts()) == {
        viewer_store.selfplay_run,
        viewer_store.tournament_run,
        viewer_store.hostile_run,
    }

    page.get_by_role("link", name=viewer_store.selfplay_run).click()
    page.wait_for_url(f"**/run/{viewer_store.selfplay_run}")
    chart = page.locator("div.rounds-chart svg")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0
    games = len(_episodes(viewer_store, viewer_store.selfplay_run))
    expect(page.locator("tr.game-row")).to_have_count(games)
    expect(_match_count(page)).to_contain_text(f"of {games} matching")


def test_filters_narrow_the_games_and_clear_resets(
    page: Page, server: ViewerServer, viewer_store: ViewerStore
) -> None:
    from playwright.sync_api import expect

    run = viewer_store.selfplay_run
    episodes = _episodes(viewer_store, run)
    page.goto(f"{server.url}run/{run}")
    expect(page.locator("tr.game-row")).to_have_count(len(episodes))

    _submit_filters(page, round="2")
    assert _query(page)["round"] == "2"
    in_round_2 = [e for e in episodes if e.round == 2]
    assert 0 < len(in_round_2) < len(episodes)
    expect(page.locator("tr.game-row")).to_have_count(len(in_round_2))
    expect(_match_count(page)).to_contain_text(f"of {len(in_round_2)} matching")
    expect(_match_count(page)).to_contain_text("round 2")
    assert set(_shown_rounds(page)) == {"2"}
    # The form remembers what was chosen, so the next choice narrows further.
    expect(page.locator("select[name=round]")).to_have_value("2")

    _submit_filters(page, outcome="deal", arm="ai")
    assert _query(page).items() >= {"round": "2", "outcome": "deal", "arm": "ai"}.items()
    kept = [e for e in in_round_2 if e.arm == "ai" and e.outcome and e.outcome.kind == "deal"]
    assert 0 < len(kept) < len(in_round_2)
    expect(page.locator("tr.game-row")).to_have_count(len(kept))
    expect(_match_count(page)).to_contain_text(f"of {len(kept)} matching")
    assert set(_shown_rounds(page)) == {"2"}
    assert set(page.locator("tr.game-row td:nth-child(6)").all_inner_texts()) == {"ai"}

    # Every game of this run ended in a deal: asking for the others finds nothing, and says so.
    _submit_filters(page, outcome="no_deal")
    assert _query(page)["outcome"] == "no_deal"
    expect(page.locator("tr.game-row")).to_have_count(0)
    expect(page.get_by_text("No game matches these filters.")).to_be_visible()
    expect(_match_count(page)).to_contain_text("of 0 matching")

    with page.expect_navigation():
        page.locator("form#filters").get_by_role("link", name="clear").click()
    assert urlsplit(page.url).query == ""
    expect(page.locator("tr.game-row")).to_have_count(len(episodes))
    expect(page.locator("select[name=round]")).to_have_value("")


def test_player_and_role_filters_on_a_tournament(
    page: Page, server: ViewerServer, viewer_store: ViewerStore
) -> None:
    from playwright.sync_api import expect

    run = viewer_store.tournament_run
    episodes = _episodes(viewer_store, run)
    page.goto(f"{server.url}run/{run}")

    _submit_filters(page, player="boulware")
    assert _query(page)["player"] == "boulware"
    playing = [e for e in episodes if any(r.player == "boulware" for r in e.roles.values())]
    assert 0 < len(playing) < len(episodes)
    expect(page.locator("tr.game-row")).to_have_count(len(playing))
    for cell in page.locator("tr.game-row td:nth-child(2)").all_inner_texts():
        assert "boulware" in cell

    _submit_filters(page, role="seller")
    assert _query(page).items() >= {"player": "boulware", "role": "seller"}.items()
    selling = [e for e in playing if e.roles["seller"].player == "boulware"]
    assert 0 < len(selling) < len(playing)
    expect(page.locator("tr.game-row")).to_have_count(len(selling))
    expect(_match_count(page)).to_contain_text(f"of {len(selling)} matching")
    for cell in page.locator("tr.game-row td:nth-child(2)").all_inner_texts():
        assert re.search(r"^seller: boulware$", cell, re.MULTILINE), cell


def test_text_search_narrows_to_the_one_game_that_says_it(
    page: Page, server: ViewerServer, viewer_store: ViewerStore
) -> None:
    from playwright.sync_api import expect

    run = viewer_store.selfplay_run
    phrase, game = _phrase_of_one_game(viewer_store, run)
    page.goto(f"{server.url}run/{run}")
    _submit_filters(page, text=phrase)
    assert _query(page)["text"] == phrase
    expect(page.locator("tr.game-row")).to_have_count(1)
    expect(_match_count(page)).to_contain_text("of 1 matching")
    assert page.locator("a.game-link").get_attribute("href") == f"/game/{game}"


def test_a_game_opened_from_the_list_reads_as_a_chat_with_its_chart_and_briefs(
    page: Page, server: ViewerServer, viewer_store: ViewerStore
) -> None:
    from playwright.sync_api import expect

    # A round-2 game of the AI-feedback arm: the critic wrote after it and before it.
    page.goto(f"{server.url}run/{viewer_store.selfplay_run}?round=2&arm=ai")
    first = page.locator("a.game-link").first
    game_id = (first.get_attribute("href") or "").rsplit("/", 1)[-1]
    with page.expect_navigation():
        first.click()
    assert urlsplit(page.url).path == f"/game/{game_id}"
    with Store(viewer_store.path) as store:
        episode = store.episode(game_id)
        critiques = store.critiques(episode_id=game_id)

    # One bubble a stored turn, each with its speaker, in order.
    turns = page.locator("div.chat > div.turn")
    expect(turns).to_have_count(len(episode.transcript))
    assert turns.locator(".who").all_inner_texts() == [t.speaker for t in episode.transcript]
    acted = [t for t in episode.transcript if t.action is not None]
    actions = page.locator("div.chat span.action")
    expect(actions).to_have_count(len(acted))
    for turn, label in zip(acted, actions.all_inner_texts(), strict=True):
        assert turn.action is not None
        assert turn.action.kind.replace("_", " ").upper() in label
        if turn.action.price is not None:
            assert f"${turn.action.price:g}" in label

    chart = page.locator("svg.price-chart")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0
    lines = chart.locator("polyline")
    expect(lines).to_have_count(2)
    assert {lines.nth(i).get_attribute("data-role") for i in range(2)} == {"seller", "buyer"}

    # Briefs sit folded under a label naming the role they are private to; opened, they show.
    for role, record in episode.roles.items():
        private = page.locator(f"details.private[data-role={role}]")
        # Lower-cased: the label's CSS shows it in capitals.
        marked = private.locator(".private-label").text_content() or ""
        assert marked.lower() == f"private to the {role}"
        brief = private.locator(".brief")
        expect(brief).to_be_hidden()
        private.locator("summary").click()
        expect(brief).to_be_visible()
        assert brief.text_content() == record.brief

    assert critiques, "a coached round of the AI arm must have the critic's feedback"
    panel = page.locator("div.panel.critique").filter(has_text="after this round")
    expect(panel).to_be_visible()
    assert panel.locator(".feedback").all_text_contents() == [c.text for c in critiques]
    expect(
        page.locator("div.panel.critique").filter(has_text="going into this round")
    ).to_be_visible()


def test_round_links_walk_the_lineage(
    page: Page, server: ViewerServer, viewer_store: ViewerStore
) -> None:
    from playwright.sync_api import expect

    episode = next(
        e
        for e in _episodes(viewer_store, viewer_store.selfplay_run)
        if e.round == 2 and e.lineage_id is not None
    )
    assert episode.lineage_id is not None
    with Store(viewer_store.path) as store:
        rounds = store.lineage_rounds(episode.lineage_id)
    assert sorted(rounds) == [1, 2, 3]
    page.goto(f"{server.url}game/{episode.id}")
    current = page.locator(".rounds-nav .current")
    expect(current).to_have_text("round 2")

    with page.expect_navigation():
        page.locator("a.next-round").click()
    assert urlsplit(page.url).path == f"/game/{rounds[3]}"
    expect(current).to_have_text("round 3")
    expect(page.locator("a.next-round")).to_have_count(0)  # the lineage's last round

    for expected in (2, 1):
        with page.expect_navigation():
            page.locator("a.prev-round").click()
        assert urlsplit(page.url).path == f"/game/{rounds[expected]}"
        expect(current).to_have_text(f"round {expected}")
    expect(page.locator("a.prev-round")).to_have_count(0)  # nothing before round 1


def test_tournament_page_shows_the_leaderboard_of_the_four_players(
    page: Page, server: ViewerServer, viewer_store: ViewerStore
) -> None:
    from playwright.sync_api import expect

    page.goto(server.url)
    page.get_by_role("link", name=viewer_store.tournament_run).click()
    board = page.locator("table.leaderboard")
    expect(board).to_be_visible()
    expect(board.locator("tbody tr")).to_have_count(4)
    assert set(board.locator("tbody td:nth-child(2)").all_inner_texts()) == TOURNAMENT_PLAYERS


def test_ids_are_unique_on_a_long_run_page(
    page: Page, server: ViewerServer, viewer_store: ViewerStore
) -> None:
    page.goto(f"{server.url}run/{viewer_store.selfplay_run}")
    assert page.locator("tr.game-row").count() > 20  # long enough for the pager below
    ids = page.evaluate("Array.from(document.querySelectorAll('[id]'), e => e.id)")
    assert sorted(ids) == sorted(set(ids)), "an id names more than one element"


def test_agents_markup_shows_as_text_and_never_runs_in_the_viewer(
    page: Page, server: ViewerServer, viewer_store: ViewerStore
) -> None:
    from playwright.sync_api import expect

    alarms = _watch(page)
    page.goto(f"{server.url}run/{viewer_store.hostile_run}")
    _assert_nothing_ran(page, alarms)
    expect(page.locator("h1").first).to_contain_text("hostile <script>x</script>")
    expect(page.locator("tr.game-row td:nth-child(2)").first).to_contain_text(HOSTILE_PLAYER)
    assert page.locator("script").count() == 0, "the viewer's pages carry no script at all"

    for game_id in viewer_store.hostile_games:
        page.goto(f"{server.url}game/{game_id}")
        for summary in page.locator("details.private summary").all():
            summary.click()  # open the briefs, which quote the markup too
        _assert_nothing_ran(page, alarms)
        chat = page.locator("div.chat").inner_text()
        for hostile in (SCRIPT, IMG, ATTR, "</div></section>", "no action <em>found</em>"):
            assert hostile in chat, f"{hostile!r} is not shown as text"
        expect(page.get_by_text(f"Your cost is $8. {SCRIPT}")).to_be_visible()
        expect(page.get_by_text(f"Budget secret {IMG}")).to_be_visible()
        expect(page.locator("details.private[data-role=buyer] summary")).to_contain_text(
            HOSTILE_PLAYER
        )
    # The first round's feedback quotes both; it shows on both games (after, and going in).
    expect(page.get_by_text(f"Ask for more. {SCRIPT} {IMG}")).to_be_visible()
    assert page.locator("script").count() == 0


def test_the_viewer_answers_loopback_names_only_and_forbids_scripts(
    server: ViewerServer,
) -> None:
    port = server.server_address[1]

    def get(host: str) -> tuple[int, dict[str, str]]:
        request = urllib.request.Request(server.url, headers={"Host": host})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers)

    # DNS rebinding: a name the attacker controls, pointed at 127.0.0.1.
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.evil.example:{port}"):
        status, headers = get(host)
        assert status == 403, host
        _assert_csp_forbids_scripts(headers)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        status, headers = get(host)
        assert status == 200, host
        _assert_csp_forbids_scripts(headers)


def _assert_csp_forbids_scripts(headers: dict[str, str]) -> None:
    policy = headers.get("Content-Security-Policy")
    assert policy, "every response must carry a Content-Security-Policy"
    directives = {
        name: values
        for name, *values in (part.split() for part in policy.split(";") if part.strip())
    }
    assert directives.get("default-src") == ["'none'"], policy
    assert not {"script-src", "script-src-elem", "script-src-attr"} & set(directives), policy


# --- the static report, from disk with no server ------------------------------------------


def _open_report(page: Page, path: Path) -> list[str]:
    """Open `path` from disk; return the list that collects any request off the disk."""
    fetched: list[str] = []

    def refuse(route: Route) -> None:
        fetched.append(route.request.url)
        route.abort()

    page.route(re.compile(r"^(?!file:).*"), refuse)
    page.goto(path.as_uri())
    return fetched


def test_static_report_works_from_disk(
    page: Page, viewer_store: ViewerStore, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    # No `server` fixture here: the report must stand alone.
    run = viewer_store.selfplay_run
    episodes = _episodes(viewer_store, run)
    report = tmp_path / "selfplay.html"
    with Store(viewer_store.path) as store:
        assert write_report(store, run, report) == len(episodes)
    alarms = _watch(page)
    fetched = _open_report(page, report)

    chart = page.locator("div.rounds-chart svg")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0
    rows = page.locator("tr.game-row:visible")
    expect(rows).to_have_count(len(episodes))
    expect(page.locator("section.game-section:visible")).to_have_count(0)
    ids = page.evaluate("Array.from(document.querySelectorAll('[id]'), e => e.id)")
    assert sorted(ids) == sorted(set(ids)), "an anchor must name one section"

    # A game's link shows its section (CSS :target) and only that one.
    link = page.locator("a.game-link").nth(3)
    game_id = (link.get_attribute("href") or "").removeprefix("#game-")
    link.click()
    assert urlsplit(page.url).fragment == f"game-{game_id}"
    shown = page.locator("section.game-section:visible")
    expect(shown).to_have_count(1)
    expect(shown).to_have_id(f"game-{game_id}")
    expect(shown.locator("svg.price-chart")).to_be_visible()
    expect(shown.locator("div.chat > div.turn").first).to_be_visible()

    # The list's filter, in the page itself.
    page.goto(f"{report.as_uri()}#games")
    form = page.locator("form#filters")
    count = page.locator("#match-count")
    form.locator("select[name=outcome]").select_option("no_deal")
    expect(rows).to_have_count(0)
    expect(count).to_have_text(f"0 of {len(episodes)} games shown")

    form.locator("select[name=outcome]").select_option("deal")
    form.locator("select[name=round]").select_option("2")
    in_round_2 = [e for e in episodes if e.round == 2]
    expect(rows).to_have_count(len(in_round_2))
    expect(count).to_have_text(f"{len(in_round_2)} of {len(episodes)} games shown")
    assert set(_shown_rounds(page)) == {"2"}

    form.locator("select[name=round]").select_option("")
    phrase, game = _phrase_of_one_game(viewer_store, run)
    form.locator("input[name=text]").fill(phrase)
    expect(rows).to_have_count(1)
    assert rows.locator("a.game-link").get_attribute("href") == f"#game-{game}"
    form.locator("input[name=text]").fill("")
    expect(rows).to_have_count(len(episodes))
    expect(count).to_have_text(f"{len(episodes)} of {len(episodes)} games shown")

    # The arm, and a search that reads what was said, not the briefs (as the viewer does).
    form.locator("select[name=arm]").select_option("ai")
    expect(rows).to_have_count(sum(e.arm == "ai" for e in episodes))
    form.locator("select[name=arm]").select_option("")
    brief_only = episodes[0].roles["seller"].brief.split(".")[0]
    said = [t.text for e in episodes for t in e.transcript] + [
        c.text for e in episodes for c in _critiques(viewer_store, e.id)
    ]
    if not any(brief_only.lower() in text.lower() for text in said):
        form.locator("input[name=text]").fill(brief_only)
        expect(rows).to_have_count(0)
        form.locator("input[name=text]").fill("")

    assert fetched == [], "the report must open from disk with nothing fetched"
    assert alarms == []


def test_static_report_of_a_tournament_has_its_leaderboard(
    page: Page, viewer_store: ViewerStore, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    report = tmp_path / "tournament.html"
    with Store(viewer_store.path) as store:
        write_report(store, viewer_store.tournament_run, report)
    fetched = _open_report(page, report)
    board = page.locator("table.leaderboard")
    expect(board).to_be_visible()
    assert set(board.locator("tbody td:nth-child(2)").all_inner_texts()) == TOURNAMENT_PLAYERS
    form = page.locator("form#filters")
    form.locator("select[name=player]").select_option("boulware")
    form.locator("select[name=role]").select_option("seller")
    episodes = _episodes(viewer_store, viewer_store.tournament_run)
    selling = [e for e in episodes if e.roles["seller"].player == "boulware"]
    expect(page.locator("tr.game-row:visible")).to_have_count(len(selling))
    assert fetched == []


def test_agents_markup_shows_as_text_and_never_runs_in_the_report(
    page: Page, viewer_store: ViewerStore, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    report = tmp_path / "hostile.html"
    with Store(viewer_store.path) as store:
        write_report(store, viewer_store.hostile_run, report)
    alarms = _watch(page)
    fetched = _open_report(page, report)
    _assert_nothing_ran(page, alarms)
    expect(page.locator("h1").first).to_contain_text("hostile <script>x</script>")
    expect(page.locator("tr.game-row td:nth-child(2)").first).to_contain_text(HOSTILE_PLAYER)
    # Only the report's own filter script: an agent's <script> never became an element.
    expect(page.locator("script")).to_have_count(1)

    for game_id in viewer_store.hostile_games:
        page.locator(f"a.game-link[href='#game-{game_id}']").click()
        section = page.locator(f"section#game-{game_id}")
        expect(section).to_be_visible()
        for summary in section.locator("details.private summary").all():
            summary.click()
        _assert_nothing_ran(page, alarms)
        chat = section.locator("div.chat").inner_text()
        for hostile in (SCRIPT, IMG, ATTR, "</div></section>", "no action <em>found</em>"):
            assert hostile in chat, f"{hostile!r} is not shown as text"
        expect(section.get_by_text(f"Your cost is $8. {SCRIPT}")).to_be_visible()
        expect(section.get_by_text(f"Budget secret {IMG}")).to_be_visible()
        expect(section.get_by_text(f"Ask for more. {SCRIPT} {IMG}")).to_be_visible()
        page.goto(f"{report.as_uri()}#games")
    # The filter still works on the hostile run's list (its data attributes held the markup).
    page.locator("form#filters select[name=player]").select_option(HOSTILE_PLAYER)
    expect(page.locator("tr.game-row:visible")).to_have_count(2)
    _assert_nothing_ran(page, alarms)
    assert fetched == []
