"""The viewer over HTTP, the static report, and the terminal's filters and side-by-side view.

Pages are read as a client reads them (urllib against the server on loopback); what a browser
makes of them is tests/test_view_browser.py.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from haggler.cli import app
from haggler.store import Store
from haggler.view import make_server, write_report
from haggler.view.html import Markup, el, text
from haggler.view.server import ViewerServer
from tests.fakes.viewer_store import (
    ATTR,
    HOSTILE_PLAYER,
    IMG,
    SCRIPT,
    ViewerStore,
    build_viewer_store,
)

runner = CliRunner()


def haggler(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env={"COLUMNS": "160"}, catch_exceptions=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> ViewerStore:
    return build_viewer_store(tmp_path_factory.mktemp("view") / "view.db")


@pytest.fixture(scope="module")
def server(built: ViewerStore) -> Iterator[ViewerServer]:
    # Pages wait for their results: what they show does not depend on the machine's speed.
    viewer = make_server(built.path, port=0, results_wait_s=60)
    viewer.start_in_background()
    yield viewer
    viewer.shutdown()
    viewer.server_close()


def get(server: ViewerServer, path: str, **headers: str) -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(server.url.rstrip("/") + path, headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


def assert_inert(page: str, own_scripts: int = 0) -> None:
    """No agent-written markup survived as markup; each shows as its escaped text."""
    for hostile in (SCRIPT, IMG, ATTR):
        assert hostile not in page
    for tag in ("<img", '<b id="injected">', "<u>", "<em>", "<i>evil"):
        assert tag not in page
    assert page.count("<script") == own_scripts


# -- the HTML builder ----------------------------------------------------------------------


def test_plain_strings_are_text_and_markup_is_kept() -> None:
    built = el("p", "<b>x</b> & y", el("i", "ok"), title='"><script>')
    assert built == '<p title="&quot;&gt;&lt;script&gt;">&lt;b&gt;x&lt;/b&gt; &amp; y<i>ok</i></p>'
    assert text(Markup("<b>x</b>")) == "<b>x</b>"
    assert text(["a<", None, 3]) == "a&lt;3"
    assert el("input", disabled=True, hidden=False, value=None) == "<input disabled>"
    assert el("td", class_="num", data_game="g") == '<td class="num" data-game="g"></td>'


# -- the server ------------------------------------------------------------------------------


def test_it_listens_on_loopback_only(server: ViewerServer) -> None:
    assert server.server_address[0] == "127.0.0.1"
    assert server.url.startswith("http://127.0.0.1:")


def test_runs_page_lists_every_run(server: ViewerServer, built: ViewerStore) -> None:
    status, page, headers = get(server, "/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    for run in (built.selfplay_run, built.tournament_run, built.hostile_run):
        assert f'href="/run/{run}"' in page
    assert_inert(page)


def test_pages_forbid_scripts(server: ViewerServer) -> None:
    _, _, headers = get(server, "/")
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_other_host_names_are_refused(server: ViewerServer) -> None:
    # A page elsewhere that points its own name at 127.0.0.1 must not read the store.
    status, body, _ = get(server, "/", Host="evil.example")
    assert status == 403 and "loopback" in body
    assert get(server, "/", Host="localhost")[0] == 200


def test_self_play_run_page_has_chart_table_and_games(
    server: ViewerServer, built: ViewerStore
) -> None:
    status, page, _ = get(server, f"/run/{built.selfplay_run[:-2]}")
    assert status == 200
    assert page.count('class="game-row"') == 24
    assert "Price and deal rate by round" in page and "<svg" in page
    assert "games 1–24 of 24 matching (all)" in page
    # The filter form offers the run's own values.
    for value in ("ai", "none", "rule:linear"):
        assert f'<option value="{value}">' in page


def test_run_page_filters_and_pages(server: ViewerServer, built: ViewerStore) -> None:
    with Store(built.path) as store:
        second_round = {e.id for e in store.episodes(built.selfplay_run) if e.round == 2}
    _, page, _ = get(server, f"/run/{built.selfplay_run}?round=2&outcome=")
    shown = set(re.findall(r'href="/game/([^"]+)"', page))
    assert shown == second_round
    assert "of 8 matching (round 2)" in page
    assert '<option value="2" selected>' in page
    # A later page of the tournament, and nothing past the last.
    _, first, _ = get(server, f"/run/{built.tournament_run}?role=seller")
    assert "page 1 of 1" in first and 'rel="next"' not in first
    _, none, _ = get(server, f"/run/{built.selfplay_run}?text=zzzz-not-said")
    assert "No game matches these filters." in none


def test_bad_filters_and_unknown_ids_answer_in_one_line(server: ViewerServer) -> None:
    status, page, _ = get(server, "/run/tour-viewer?round=two")
    assert status == 400 and "round 'two' is not a whole number" in page
    status, page, _ = get(server, "/game/ep-does-not-exist")
    assert status == 404 and "no game" in page
    assert get(server, "/nowhere")[0] == 404
    assert get(server, "/run/..%2f..%2fetc")[0] == 404


def test_tournament_run_page_shows_the_leaderboard(
    server: ViewerServer, built: ViewerStore
) -> None:
    _, page, _ = get(server, f"/run/{built.tournament_run}")
    board = page[page.index('class="grid leaderboard"') :]
    board = board[: board.index("</table>")]
    for player in ("boulware", "linear", "conceder", "tit-for-tat"):
        assert f"<td>{player}</td>" in board
    assert page.count('class="game-row"') == 12


def test_a_run_page_does_not_wait_long_for_its_results(built: ViewerStore) -> None:
    from haggler.view import data

    data.forget_results()
    impatient = make_server(built.path, port=0, results_wait_s=0)
    impatient.start_in_background()
    try:
        _, page, _ = get(impatient, f"/run/{built.tournament_run}")
        # Served at once (the results are computed in another process), with the games, and
        # told to come back.
        assert "Computing the leaderboard" in page
        assert '<meta http-equiv="refresh" content="1">' in page
        assert page.count('class="game-row"') == 12
        deadline = time.monotonic() + 60
        while "Computing the leaderboard" in page:
            assert time.monotonic() < deadline
            time.sleep(0.1)
            _, page, _ = get(impatient, f"/run/{built.tournament_run}")
        assert 'class="grid leaderboard"' in page and "http-equiv" not in page
    finally:
        impatient.shutdown()
        impatient.server_close()


def test_run_state_moves_with_whatever_the_results_read(built: ViewerStore, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    with Store(built.path) as source, Store(copy) as target:
        source._db.backup(target._db)  # noqa: SLF001 (a byte-for-byte copy to change)
    with Store(copy) as store:
        before = store.run_state(built.selfplay_run)
        lineage = store.lineages(built.selfplay_run)[0]
        store.update_lineage(lineage.id, rounds_played=lineage.rounds_played, status="stopped")
        stopped = store.run_state(built.selfplay_run)
        assert stopped != before
        tournament = store.run_state(built.tournament_run)
        store._db.execute(  # noqa: SLF001 (a rerun with an edited spec changes only this)
            "UPDATE runs SET spec_json = '{}' WHERE id = ?", (built.tournament_run,)
        )
        assert store.run_state(built.tournament_run) != tournament
        assert store.run_state(built.selfplay_run) == stopped


def test_a_changing_run_gets_one_computation_at_a_time(built: ViewerStore, tmp_path: Path) -> None:
    import threading

    from haggler.view import data

    copy = tmp_path / "live.db"
    with Store(built.path) as source, Store(copy) as target:
        source._db.backup(target._db)  # noqa: SLF001
    data.forget_results()
    viewer = make_server(copy, port=0, results_wait_s=0)
    viewer.start_in_background()
    stop = threading.Event()

    def writer() -> None:  # a run in progress: a game ends every few milliseconds
        with Store(copy) as store:
            while not stop.is_set():
                store._db.execute(  # noqa: SLF001
                    "UPDATE episodes SET ended_at = ended_at + 1 WHERE id = ?",
                    (built.hostile_games[0],),
                )
                time.sleep(0.005)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        most = 0
        for _ in range(30):
            get(viewer, f"/run/{built.hostile_run}")
            most = max(most, data.computations_in_flight())
            time.sleep(0.02)
        assert most <= 1
        stop.set()
        thread.join()
        deadline = time.monotonic() + 60
        while True:  # once the run rests, the page catches up with it
            _, page, _ = get(viewer, f"/run/{built.hostile_run}")
            if "Computing" not in page and "moved on" not in page:
                break
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert "Price and deal rate by round" in page
    finally:
        stop.set()
        viewer.shutdown()
        viewer.server_close()


def test_game_page_shows_the_chat_briefs_feedback_and_rounds(
    server: ViewerServer, built: ViewerStore
) -> None:
    with Store(built.path) as store:
        game = next(
            e for e in store.run_episodes(built.selfplay_run) if e.round == 2 and e.arm == "ai"
        )
        rounds = store.lineage_rounds(game.lineage_id or "")
        feedback = store.critiques(episode_id=game.id)
        earlier = store.critiques(episode_id=rounds[1])
    status, page, _ = get(server, f"/game/{game.id}")
    assert status == 200
    assert page.count('class="turn role-') == len(game.transcript)
    for turn in game.transcript:
        assert html.escape(turn.text, quote=False) in page
    assert page.count('class="action action-') == sum(t.action is not None for t in game.transcript)
    assert "private to the seller" in page and "private to the buyer" in page
    assert html.escape(game.roles["seller"].brief, quote=False) in page
    assert "Critic&#x27;s feedback after this round" in page or "Critic's feedback" in page
    assert html.escape(feedback[0].text, quote=False) in page
    assert html.escape(earlier[0].text, quote=False) in page
    assert f'href="/game/{rounds[1]}" rel="prev"' in page
    assert f'href="/game/{rounds[3]}" rel="next"' in page
    assert 'class="chart price-chart"' in page and page.count("<polyline") == 2
    # Ids whole: cut to 12 characters, every lineage of a day read the same.
    assert f"lineage <code>{game.lineage_id}</code>" in page
    assert f"<title>game {game.id} — haggler</title>" in page


def test_hostile_text_shows_as_text_everywhere(server: ViewerServer, built: ViewerStore) -> None:
    pages = [get(server, f"/run/{built.hostile_run}")[1], get(server, "/")[1]]
    pages += [get(server, f"/game/{game}")[1] for game in built.hostile_games]
    for page in pages:
        assert_inert(page)
    run_page, _, first, second = pages
    assert html.escape(HOSTILE_PLAYER, quote=False) in run_page
    assert html.escape(SCRIPT, quote=False) in first  # the message, as text
    assert html.escape(IMG, quote=False) in first  # the brief, as text
    assert html.escape(ATTR, quote=False) in first
    assert "no action &lt;em&gt;found&lt;/em&gt;" in first
    # Model turns carry their model, tokens, cost and latency; rule-based turns say so.
    assert "openai/gpt-4o · 120 + 30 tokens · $0.00120 · 350 ms" in first
    assert "Round two: &lt;b&gt;hold&lt;/b&gt;" in second


# -- the static report -----------------------------------------------------------------------


def test_static_report_holds_every_game_and_no_live_markup(
    built: ViewerStore, tmp_path: Path
) -> None:
    with Store(built.path) as store:
        count = write_report(store, built.hostile_run, tmp_path / "hostile.html")
        selfplay = write_report(store, built.selfplay_run, tmp_path / "selfplay.html")
    assert (count, selfplay) == (2, 24)
    report = (tmp_path / "hostile.html").read_text()
    assert_inert(report, own_scripts=1)  # the list's filter
    for game in built.hostile_games:
        assert f'id="game-{game}"' in report and f'href="#game-{game}"' in report
    page = (tmp_path / "selfplay.html").read_text()
    assert page.count('class="game-section"') == 24
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page


def test_cli_exports_a_filtered_report_and_jsonl(built: ViewerStore, tmp_path: Path) -> None:
    out = tmp_path / "deals.html"
    result = haggler(
        "export",
        built.tournament_run,
        "-o",
        str(out),
        "--player",
        "boulware",
        "--role",
        "seller",
        "--db",
        str(built.path),
    )
    assert result.exit_code == 0, result.output
    assert "wrote 3 games" in result.output
    assert out.read_text().count('class="game-section"') == 3
    lines = tmp_path / "round2.jsonl"
    result = haggler(
        "export", built.selfplay_run, "-o", str(lines), "--round", "2", "--db", str(built.path)
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in lines.read_text().splitlines()]
    assert len(records) == 8 and {r["round"] for r in records} == {2}
    assert all(r["schema"] == "haggler.episode/1" for r in records)
    # Each game carries the feedback it drew: the AI arm's games one critique each.
    coached = [r for r in records if r["arm"] == "ai"]
    assert coached and all(len(r["critiques"]) == 1 for r in coached)
    assert {"role", "source", "text", "cost_usd"} <= set(coached[0]["critiques"][0])
    assert all(r["critiques"] == [] for r in records if r["arm"] == "none")
    bad = haggler("export", "-o", str(tmp_path / "no" / "x.html"), "--db", str(built.path))
    assert bad.exit_code == 2 and "does not exist; create it first" in bad.output


# -- the terminal ----------------------------------------------------------------------------


def test_show_lists_with_filters(built: ViewerStore) -> None:
    result = haggler(
        "show",
        "--list",
        "--run",
        built.selfplay_run,
        "--round",
        "3",
        "--outcome",
        "deal",
        "--db",
        str(built.path),
    )
    assert result.exit_code == 0, result.output
    assert "8 of 24 where outcome deal, round 3" in result.output
    assert result.output.count("ep-") == 8
    limited = haggler(
        "show", "--list", "--run", built.selfplay_run, "--limit", "5", "--db", str(built.path)
    )
    assert "(the latest 5 shown)" in limited.output and limited.output.count("ep-") == 5


def test_show_picks_the_latest_game_the_filters_keep(built: ViewerStore) -> None:
    with Store(built.path) as store:
        latest = store.find_episodes(built.tournament_run, limit=1, latest_first=True, where=None)
        as_seller = [
            e
            for e in store.episodes(built.tournament_run)
            if e.roles["seller"].player == "boulware"
        ]
    result = haggler(
        "show",
        "--run",
        built.tournament_run,
        "--player",
        "boulware",
        "--role",
        "seller",
        "--db",
        str(built.path),
    )
    assert result.exit_code == 0, result.output
    assert as_seller[-1].id in result.output
    # The filter chose it: the run's latest game overall is another one, and is not shown.
    assert latest[0].id != as_seller[-1].id and latest[0].id not in result.output
    nothing = haggler(
        "show", "--run", built.tournament_run, "--search", "zzzz", "--db", str(built.path)
    )
    assert nothing.exit_code == 2
    assert "holds no game where text zzzz; loosen the filters" in nothing.output


def test_show_compares_two_rounds_side_by_side(built: ViewerStore) -> None:
    second = built.hostile_games[1]
    result = haggler("show", second, "--compare", "1", "--db", str(built.path))
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if "round 1" in line)
    # Round 1 on the left, round 2 on the right, on one line.
    assert header.index("round 1") < header.index("round 2")
    assert "Ask for more." in result.output and "Round two: <b>hold</b>" in result.output
    missing = haggler("show", second, "--compare", "7", "--db", str(built.path))
    assert missing.exit_code == 2 and "played rounds 1, 2; pick one of those" in missing.output
    with Store(built.path) as store:
        solo = store.episodes(built.tournament_run)[0].id
    alone = haggler("show", solo, "--compare", "1", "--db", str(built.path))
    assert alone.exit_code == 2 and "is not a self-play round" in alone.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--outcome", "won"], "outcome 'won' is not one of"),
        (["--round", "0"], "rounds count from 1"),
        (["--list", "--limit", "0"], "--limit 0: give a number of games"),
    ],
)
def test_show_rejects_bad_filters_in_one_line(
    built: ViewerStore, args: list[str], message: str
) -> None:
    result = haggler("show", *args, "--db", str(built.path))
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


# -- `haggler view` ---------------------------------------------------------------------------


def test_view_command_serves_the_store_until_stopped(built: ViewerStore) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "haggler.cli", "view", str(built.path), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        address = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert address, line + (process.stderr.read() if process.stderr else "")
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(address[0] + "health") as response:
                    assert response.read() == b"ok"
                    break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        with urllib.request.urlopen(address[0]) as response:
            assert built.tournament_run in response.read().decode()
        workers = _children(process.pid)
        assert workers, "the results worker starts with the viewer"
        process.terminate()  # as `kill` does: stopped like Ctrl-C, its worker with it
        out, _ = process.communicate(timeout=20)
        assert process.returncode == 0 and "viewer stopped" in out
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in workers):
            assert time.monotonic() < deadline, "the worker outlived the viewer"
            time.sleep(0.1)
    finally:
        process.kill()
        process.wait(timeout=10)


def _children(pid: int) -> list[int]:
    """The processes `pid` started (Linux: read from /proc)."""
    deadline = time.monotonic() + 10
    while True:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["absent.db"], "no such file"),
        (["--port", "70000"], "--port 70000 is not a port"),
    ],
)
def test_view_command_rejects_bad_input(
    built: ViewerStore, args: list[str], message: str, tmp_path: Path
) -> None:
    args = [str(tmp_path / "absent.db")] if args[0] == "absent.db" else [str(built.path), *args]
    result = haggler("view", *args)
    assert result.exit_code == 2 and message in result.output


# -- found in review: what agents, names and URLs can throw at the viewer --------------------


def _game_with_offers(store: Store, run_id: str, prices: list[float]) -> str:
    from tests.fakes.viewer_store import _hostile_game

    fields = _hostile_game(1)
    turns = fields["turns"]
    for turn, price in zip(turns[2:3], prices, strict=False):  # type: ignore[index]
        turn.action = turn.action.model_copy(update={"price": price})
    game_id = store.add_episode(run_id, **fields)  # type: ignore[arg-type]
    assert game_id is not None
    return game_id


@pytest.mark.parametrize("price", [1e11, 1e300])
def test_absurd_prices_still_show_the_game(tmp_path: Path, price: float) -> None:
    db = tmp_path / "absurd.db"
    with Store(db) as store:
        run = store.start_run("play")
        game = _game_with_offers(store, run, [price])
        count = write_report(store, run, tmp_path / "absurd.html")
    assert count == 1
    viewer = make_server(db, port=0, results_wait_s=60)
    viewer.start_in_background()
    try:
        status, page, _ = get(viewer, f"/game/{game}")
    finally:
        viewer.shutdown()
        viewer.server_close()
    assert status == 200
    assert ("<polyline" in page) == (price < 1e15)


def test_any_run_name_opens_and_odd_requests_get_one_line(tmp_path: Path) -> None:
    db = tmp_path / "names.db"
    with Store(db) as store:
        store.ensure_run("tour-a+b c/d", "tournament", {"name": "a+b"})
        _game_with_offers(store, "tour-a+b c/d", [15.0])
    viewer = make_server(db, port=0, results_wait_s=60)
    viewer.start_in_background()
    try:
        _, runs, _ = get(viewer, "/")
        href = re.search(r'href="(/run/[^"]+)"', runs)
        assert href and href[1] == "/run/tour-a%2Bb%20c%2Fd"
        assert get(viewer, href[1])[0] == 200
        status, page, _ = get(viewer, href[1] + "?round=" + "9" * 30)
        assert status == 400 and "rounds count from 1" in page
        status, page, _ = get(viewer, href[1] + "?page=" + "9" * 30)
        assert status == 200 and "page 1 of 1" in page  # past the end: the last page
        assert get(viewer, "/", Host="localhost:1@evil.example")[0] == 403
        request = urllib.request.Request(viewer.url, data=b"GET /health HTTP/1.1\r\n\r\n")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request)
        assert refused.value.code == 501
        assert "default-src 'none'" in refused.value.headers["Content-Security-Policy"]
        assert refused.value.headers["Connection"] == "close"
    finally:
        viewer.shutdown()
        viewer.server_close()


def test_the_report_lets_only_its_own_script_run(built: ViewerStore, tmp_path: Path) -> None:
    import base64
    import hashlib

    with Store(built.path) as store:
        write_report(store, built.hostile_run, tmp_path / "r.html")
    report = (tmp_path / "r.html").read_text()
    script = report[report.rindex("<script>") + len("<script>") : report.rindex("</script>")]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = html.unescape(
        re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', report)[1]
    )
    assert f"script-src 'sha256-{digest}'" in policy and "default-src 'none'" in policy


def test_ids_are_shown_whole_so_that_two_never_read_the_same(tmp_path: Path) -> None:
    # `tour-tactics-sp` once read as `tour-tactics`, and every game of a second alike.
    db = tmp_path / "ids.db"
    runs = ["tour-tactics", "tour-tactics-sp"]
    with Store(db) as store:
        games: dict[str, list[str]] = {}
        for run in runs:
            store.ensure_run(run, "tournament", {"name": run[5:]})
            games[run] = [_game_with_offers(store, run, [15.0]) for _ in range(2)]
        for run in runs:
            write_report(store, run, tmp_path / f"{run}.html")
    viewer = make_server(db, port=0, results_wait_s=60)
    viewer.start_in_background()
    try:
        shown: dict[str, set[str]] = {}
        for run in runs:
            _, page, _ = get(viewer, f"/run/{run}")
            assert f"<title>run {run} — haggler</title>" in page
            assert f"› run {run}</span>" in page
            assert re.findall(r'class="game-link">([^<]+)</a>', page) == games[run]
            shown[run] = {re.search(r"<title>(.*?)</title>", page)[1]}  # type: ignore[index]
            for game in games[run]:
                _, game_page, _ = get(viewer, f"/game/{game}")
                assert f">run {run}</a> › game {game}</span>" in game_page
                assert f"<title>game {game} — haggler</title>" in game_page
            report = (tmp_path / f"{run}.html").read_text()
            assert f"<title>haggler report — run {run}</title>" in report
            assert f"haggler · run {run}</span>" in report
            shown[run].add(re.search(r"<title>(.*?)</title>", report)[1])  # type: ignore[index]
        assert shown[runs[0]].isdisjoint(shown[runs[1]])
    finally:
        viewer.shutdown()
        viewer.server_close()
