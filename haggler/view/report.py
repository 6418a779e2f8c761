"""A static HTML report of one run: one file, no server, opens from disk with no network.

The run's chart and tables, a filterable list of its games, and every game's page as a section
of the same file, shown when its anchor is opened (CSS `:target`, so reading needs no script;
only the list's filter runs a few lines of inline script).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from haggler.errors import StoreError
from haggler.store.atomic_file import replace_atomically
from haggler.store.query import OUTCOMES, GameFilter, RunFacets
from haggler.store.records import CritiqueRecord
from haggler.store.sqlite import Store
from haggler.view.data import run_overview
from haggler.view.html import Markup, el, join, link
from haggler.view.layout import page
from haggler.view.pages import GamePage, game_body, games_table, run_header, run_results

__all__ = ["write_report"]


class ReportLinks:
    """Where things are inside the one file."""

    def runs(self) -> str:
        return "#top"

    def run(self, run_id: str, where: GameFilter | None = None, page: int = 1) -> str:
        return "#games"

    def game(self, episode_id: str) -> str:
        return f"#game-{episode_id}"


_FILTER_SCRIPT = Markup("""
(function () {
  var form = document.getElementById('filters');
  var rows = Array.prototype.slice.call(document.querySelectorAll('tr.game-row'));
  var count = document.getElementById('match-count');
  function apply() {
    var outcome = form.outcome.value, player = form.player.value, role = form.role.value;
    var round = form.round ? form.round.value : '', arm = form.arm ? form.arm.value : '';
    var words = form.text.value.toLowerCase();
    var shown = 0;
    rows.forEach(function (row) {
      var players = row.dataset.players.split('\\n');
      var ok = (!outcome || row.dataset.outcome === outcome) &&
        (!round || row.dataset.round === round) && (!arm || row.dataset.arm === arm) &&
        (!player || players.some(function (p) {
          var i = p.indexOf('=');
          return p.slice(i + 1) === player && (!role || p.slice(0, i) === role);
        })) &&
        (!role || player || players.some(function (p) { return p.indexOf(role + '=') === 0; }));
      if (ok && words) {
        // As the viewer searches: the messages and the critic's feedback, not briefs or names.
        var section = document.getElementById('game-' + row.dataset.game);
        var said = section ? section.querySelectorAll('.msg, .feedback') : [];
        ok = Array.prototype.some.call(said, function (el) {
          return el.textContent.toLowerCase().indexOf(words) >= 0;
        });
      }
      row.style.display = ok ? '' : 'none';
      if (ok) shown += 1;
    });
    count.textContent = shown + ' of ' + rows.length + ' games shown';
  }
  // Searching the text of every game on each key is slow for a large run: wait for a pause.
  var timer = null;
  form.addEventListener('input', function () { clearTimeout(timer); timer = setTimeout(apply, 250); });
  form.addEventListener('submit', function (event) { event.preventDefault(); apply(); });
})();
""")


# The report opens from disk, where no server sends a policy: it carries its own, which lets
# only its filter script run.
_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    f"script-src 'sha256-{base64.b64encode(hashlib.sha256(_FILTER_SCRIPT.encode()).digest()).decode()}'"
)


def _filters(facets: RunFacets) -> Markup:
    def select(name: str, options: list[object]) -> Markup:
        return el(
            "label",
            name,
            el(
                "select",
                el("option", "any", value=""),
                [el("option", str(o).replace("_", " "), value=o) for o in options],
                name=name,
            ),
        )

    return el(
        "form",
        select("outcome", list(OUTCOMES)),
        select("player", list(facets.players)),
        select("role", list(facets.roles)),
        select("round", list(facets.rounds)) if facets.rounds else None,
        select("arm", list(facets.arms)) if facets.arms else None,
        el(
            "label",
            "text",
            el("input", type="search", name="text", placeholder="words in messages or feedback"),
        ),
        class_="filters",
        id="filters",
    )


def write_report(
    store: Store, run_id: str, path: str | Path, where: GameFilter | None = None
) -> int:
    """Write the report of `run_id` (its games that `where` keeps) to `path`; return how many
    games it holds. Games are read and written one at a time, so memory stays flat however
    large the run."""
    target = Path(path)
    links = ReportLinks()
    overview = run_overview(store, run_id)
    games = store.find_episodes(run_id, where)
    kept = {g.id for g in games}
    critiques: dict[str, list[CritiqueRecord]] = {}
    for critique in store.critiques(run_id=run_id):
        critiques.setdefault(critique.episode_id, []).append(critique)
    lineage_rounds: dict[str, dict[int, str]] = {}
    for game in games:
        if game.lineage_id is not None and game.lineage_id not in lineage_rounds:
            # Links only to rounds the report holds.
            lineage_rounds[game.lineage_id] = {
                r: g for r, g in store.lineage_rounds(game.lineage_id).items() if g in kept
            }

    filtered = f" · games where {where.describe()}" if where and not where.is_empty() else ""
    sections = Markup("<!--haggler:games-->")  # agent text cannot forge it: `<` is escaped
    body = join(
        [
            el("a", id="top"),
            run_header(overview),
            el(
                "p",
                f"Static report written by haggler{filtered}. Pick a game to read it.",
                class_="muted",
            ),
            run_results(overview),
            el("h2", "Games", id="games"),
            _filters(overview.facets),
            el("p", f"{len(games)} games", id="match-count", class_="muted"),
            games_table(games, links, data=True),
            sections,
        ]
    )
    html = page(
        f"haggler report — run {run_id}",
        body,
        crumbs=join(["haggler · run ", run_id]),
        script=_FILTER_SCRIPT,
        policy=_POLICY,
    )
    forgotten = store.forgettings_by_round(run_id)
    head, tail = html.split(sections, 1)
    try:
        with replace_atomically(target) as out:
            out.write(head)
            for game in games:
                episode = store.episode(game.id)
                rounds = lineage_rounds.get(episode.lineage_id or "", {})
                before = rounds.get(episode.round - 1) if episode.round is not None else None
                view = GamePage(
                    episode=episode,
                    critiques=critiques.get(episode.id, []),
                    earlier=critiques.get(before, []) if before else [],
                    rounds=rounds,
                    forgetting=forgotten.get((episode.lineage_id or "", episode.round or 0), []),
                )
                out.write(
                    el(
                        "section",
                        link("#games", "↑ back to the games"),
                        game_body(view, links),
                        id=f"game-{episode.id}",
                        class_="game-section",
                    )
                )
            out.write(tail)
    except OSError as error:
        raise StoreError(f"report {target}: {error.strerror}; choose another -o path") from None
    return len(games)
