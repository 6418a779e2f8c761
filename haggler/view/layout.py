"""The page shell shared by the viewer and the static report: one HTML file, its style inline,
nothing fetched from anywhere (it opens offline and from disk)."""

from __future__ import annotations

from haggler.view.html import Markup, Node, el, text

__all__ = ["outcome_badge", "page"]

_STYLE = Markup("""
:root { --seller: #D55E00; --buyer: #0072B2; --deal: #009E73; --bad: #b00020; --muted: #666;
  --line: #ddd; --bg: #f7f7f8; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
  color: #222; background: var(--bg); }
header.top { background: #20232a; color: #eee; padding: 8px 20px; }
header.top a { color: #fff; text-decoration: none; font-weight: 600; }
header.top .crumbs a { font-weight: normal; color: #cde; }
main { padding: 16px 20px 40px; max-width: 1400px; margin: 0 auto; }
h1 { font-size: 20px; margin: 4px 0 12px; } h2 { font-size: 16px; margin: 20px 0 8px; }
a { color: #0057a0; }
.muted { color: var(--muted); }
/* Ids are shown whole; a long one wraps rather than pushing the page wider. */
code, .crumbs { overflow-wrap: anywhere; }
a.game-link { font-family: ui-monospace, monospace; font-size: 12px; white-space: nowrap; }
.cards { display: flex; gap: 10px; flex-wrap: wrap; margin: 8px 0 16px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px;
  min-width: 110px; }
.card b { display: block; font-size: 18px; }
table.grid { border-collapse: collapse; background: #fff; width: 100%; }
table.grid th, table.grid td { border-bottom: 1px solid var(--line); padding: 4px 8px;
  text-align: left; vertical-align: top; }
table.grid th { background: #eef0f3; font-weight: 600; position: sticky; top: 0; }
table.grid td.num, table.grid th.num { text-align: right; font-variant-numeric: tabular-nums; }
form.filters { display: flex; gap: 8px; flex-wrap: wrap; align-items: end; background: #fff;
  border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; margin-bottom: 10px; }
form.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
form.filters input, form.filters select { font: inherit; padding: 3px 6px; }
.pager { margin: 10px 0; display: flex; gap: 12px; align-items: center; }
.outcome { padding: 1px 7px; border-radius: 10px; font-size: 12px; white-space: nowrap; }
.outcome-deal { background: #dff3ea; color: #035c3d; }
.outcome-no_deal { background: #f1f1f1; color: #444; }
.outcome-invalid, .outcome-failed { background: #fde3e6; color: var(--bad); }
.outcome-running { background: #fff3cd; color: #7a5a00; }
.outcome-leak { background: #fde3e6; color: var(--bad); }
.outcome-no_leak { background: #dff3ea; color: #035c3d; }
.outcome-undetermined { background: #fff3cd; color: #7a5a00; }
.game-layout { display: grid; grid-template-columns: minmax(0, 3fr) minmax(280px, 2fr);
  gap: 20px; }
@media (max-width: 900px) { .game-layout { grid-template-columns: 1fr; } }
.chat { display: flex; flex-direction: column; gap: 8px; }
.turn { max-width: 80%; background: #fff; border: 1px solid var(--line); border-radius: 10px;
  padding: 8px 12px; border-left: 4px solid var(--muted); }
.turn.role-seller { border-left-color: var(--seller); align-self: flex-start; }
.turn.role-buyer { border-left-color: var(--buyer); align-self: flex-end; }
.turn.rejected { opacity: .75; border-style: dashed; }
.turn .who { font-weight: 600; }
.turn .msg { white-space: pre-wrap; overflow-wrap: anywhere; margin: 4px 0; }
.turn .meta { font-size: 12px; color: var(--muted); }
.action { font-family: ui-monospace, monospace; font-size: 12px; padding: 1px 6px;
  border-radius: 4px; background: #e8eefc; color: #1a3d8f; }
.action-accept { background: #dff3ea; color: #035c3d; }
.action-walk_away, .action-reject { background: #fde3e6; color: var(--bad); }
.error { color: var(--bad); font-size: 12px; }
.panel { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px;
  margin-bottom: 12px; }
.panel h3 { margin: 0 0 6px; font-size: 14px; }
.private { border: 1px dashed #b58900; background: #fffbea; }
.private-label { font-size: 11px; text-transform: uppercase; letter-spacing: .04em;
  color: #8a6d00; font-weight: 700; }
.brief { white-space: pre-wrap; font-size: 13px; }
.feedback { white-space: pre-wrap; }
.rounds-nav a, .rounds-nav span { margin-right: 8px; }
.rounds-nav .current { font-weight: 700; }
svg.chart { max-width: 100%; height: auto; background: #fff; border: 1px solid var(--line);
  border-radius: 6px; }
section.game-section { display: none; margin-top: 20px; }
section.game-section:target { display: block; }
""")


def page(
    title: str,
    body: Node,
    *,
    crumbs: Node = None,
    script: Markup | None = None,
    refresh_s: int | None = None,
    policy: str | None = None,
) -> str:
    """A whole HTML document; `refresh_s` has the browser reload it after that many seconds."""
    return "<!DOCTYPE html>\n" + el(
        "html",
        el(
            "head",
            el("meta", charset="utf-8"),
            el("meta", http_equiv="Content-Security-Policy", content=policy) if policy else None,
            el("meta", name="viewport", content="width=device-width, initial-scale=1"),
            el("title", title),
            el("meta", http_equiv="refresh", content=refresh_s) if refresh_s else None,
            el("style", _STYLE),
        ),
        el(
            "body",
            el("header", el("span", crumbs, class_="crumbs"), class_="top"),
            el("main", body),
            el("script", script) if script is not None else None,
        ),
        lang="en",
    )


def outcome_badge(standing: str) -> Markup:
    """A game's standing (`EpisodeSummary.standing`) as a coloured label."""
    return el("span", text(standing.replace("_", " ")), class_=f"outcome outcome-{standing}")
