"""The in-context history an agent sees: its memory, rendered for a prompt under a token budget.

Budget policy
-------------
Transcripts grow several-fold from round to round (a GPT-4 seller's messages went from about
320 to 1050 characters in the reference paper), so transcripts are what gets squeezed first
and the critic's advice what is kept longest. Items are taken in this order of priority, each
kept only if the rendered text still fits the budget:

1. the newest feedback: always kept;
2. the newest episode;
3. older feedback, newest first;
4. notes, newest first;
5. older episodes, newest first.

An episode that does not fit is shown by its one-line summary (`meta["summary"]`) instead,
when it has one and that fits; otherwise it is left out. Items are never cut mid-way, with one
exception: when the newest feedback alone exceeds the budget, it is cut to the budget and
ends with a "[truncated]" marker, so advice is never lost silently. Every item is considered
in turn, so a small older item may still fit after a bigger newer one was left out.

The budget counts `estimate_tokens` of the whole rendered text (labels and blank lines
included), and `Recollection.tokens <= budget_tokens` always holds. The kept items are rendered
in the order they were made, each under a label that names its round:

    Round 1, your game:
    <transcript>

    Your coach's advice after round 1:
    <advice>

An item without a round is rendered as "An earlier game:", "Your coach's advice:", and
notes as "Note: <text>".
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from haggler.memory.agent_memory import AgentMemory
from haggler.memory.items import Environment, MemoryItem
from haggler.memory.tokens import estimate_tokens

__all__ = ["TRUNCATION_MARKER", "Recollection", "build_context", "render_items"]

TRUNCATION_MARKER = " [truncated]"
_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Recollection:
    """What an agent recalls for one prompt, and what the budget left out.

    `items` are the kept items, oldest first (summarised episodes included); `dropped` the ids
    left out for the budget, `summarised` the episodes shown only by their summary, and
    `truncated` the feedback cut to fit (at most the newest). `advice` is the kept feedback
    text, oldest first, exactly as it appears in `text`.
    """

    items: tuple[MemoryItem, ...]
    text: str
    tokens: int
    dropped: tuple[str, ...] = ()
    summarised: tuple[str, ...] = ()
    advice: tuple[str, ...] = ()
    truncated: tuple[str, ...] = ()


def _label(item: MemoryItem, *, summary: bool = False) -> str:
    """The label an item is shown under; content follows on the next line (or the same one)."""
    if item.kind == "episode":
        where = f"Round {item.round}, your game" if item.round is not None else "An earlier game"
        return f"{where} (summary): " if summary else f"{where}:\n"
    if item.kind == "feedback":
        after = f" after round {item.round}" if item.round is not None else ""
        return f"Your coach's advice{after}:\n"
    return "Note: "


def render_items(items: Iterable[MemoryItem]) -> str:
    """`items` in full, in the given order, as `build_context` shows them when all fit."""
    return _SEPARATOR.join(_piece(item) for item in items)


def _piece(item: MemoryItem) -> str:
    return _label(item) + item.content


def _fits_prefix(render: Callable[[int], str], length: int, budget: int) -> int:
    """The longest k <= length for which render(k) fits the budget, or -1 if none does.

    A binary search over the estimate itself, so the cut stays right whatever the estimator.
    """
    low, high = -1, length
    while low < high:
        middle = (low + high + 1) // 2
        if estimate_tokens(render(middle)) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def _cut_to_budget(item: MemoryItem, budget: int) -> tuple[str, str]:
    """The newest feedback cut to fit the budget alone: (rendered piece, advice as shown).

    The label goes before the advice does; the marker goes only when even that leaves room.
    """
    content, label = item.content, _label(item)
    k = _fits_prefix(lambda k: label + content[:k] + TRUNCATION_MARKER, len(content), budget)
    if k > 0:
        shown = content[:k] + TRUNCATION_MARKER
        return label + shown, shown
    k = _fits_prefix(lambda k: content[:k] + TRUNCATION_MARKER, len(content), budget)
    if k > 0:
        shown = content[:k] + TRUNCATION_MARKER
        return shown, shown
    # A budget of a few tokens: show what fits, which is at least the first character.
    k = max(_fits_prefix(lambda k: content[:k], len(content), budget), 0)
    return content[:k], content[:k]


def build_context(
    memory: AgentMemory, *, budget_tokens: int, env: Environment | None = None
) -> Recollection:
    """Recall `memory` (only items from within `env`, when given) in at most `budget_tokens`,
    following the budget policy of this module."""
    if isinstance(budget_tokens, bool) or not isinstance(budget_tokens, int) or budget_tokens < 1:
        raise ValueError(f"budget_tokens must be a positive whole number, got {budget_tokens!r}")
    considered = memory.items(env=env)
    order = {item.id: i for i, item in enumerate(considered)}

    def newest_first(kind: str) -> list[MemoryItem]:
        return [item for item in reversed(considered) if item.kind == kind]

    feedback, episodes = newest_first("feedback"), newest_first("episode")
    priority = [
        *feedback[:1],
        *episodes[:1],
        *feedback[1:],
        *newest_first("note"),
        *episodes[1:],
    ]

    # Kept pieces as (position, rendered text), in the order they were made.
    kept: list[tuple[int, str]] = []
    shown_advice: dict[str, str] = {}
    summarised: list[str] = []
    truncated: list[str] = []

    def try_keep(item: MemoryItem, piece: str) -> bool:
        entry = (order[item.id], piece)
        bisect.insort(kept, entry)
        if estimate_tokens(_SEPARATOR.join(p for _, p in kept)) <= budget_tokens:
            return True
        kept.remove(entry)
        return False

    for rank, item in enumerate(priority):
        if item.kind == "episode":
            if try_keep(item, _piece(item)):
                continue
            summary = item.meta.get("summary")
            if isinstance(summary, str) and try_keep(item, _label(item, summary=True) + summary):
                summarised.append(item.id)
        elif item.kind == "feedback":
            if try_keep(item, _piece(item)):
                shown_advice[item.id] = item.content
            elif rank == 0:
                # Nothing is kept yet, so the cut piece is the whole text and fits by design.
                piece, shown = _cut_to_budget(item, budget_tokens)
                kept.append((order[item.id], piece))
                shown_advice[item.id] = shown
                truncated.append(item.id)
        else:
            try_keep(item, _piece(item))

    text = _SEPARATOR.join(piece for _, piece in kept)
    kept_ids = {considered[position].id for position, _ in kept}
    return Recollection(
        items=tuple(item for item in considered if item.id in kept_ids),
        text=text,
        tokens=estimate_tokens(text),
        dropped=tuple(item.id for item in considered if item.id not in kept_ids),
        summarised=tuple(sorted(summarised, key=order.__getitem__)),
        advice=tuple(shown_advice[i] for i in sorted(shown_advice, key=order.__getitem__)),
        truncated=tuple(truncated),
    )
