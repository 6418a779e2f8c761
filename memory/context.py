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
ends with a "[truncated]" marker, so advice is never lost silently. Every item that could still
fit is considered in turn, so a small older item may still fit after a bigger newer one was
left out; items whose smallest rendering is longer than what is left are skipped without being
read, which keeps the cost of a context independent of how much the memory holds.

The budget counts the `TokenCounter`'s tokens of the whole rendered text (labels and blank
lines included): a model's own tokenizer when the caller knows one, else `estimate_tokens`;
`Recollection.tokens <= budget_tokens` always holds. The kept items are rendered in the order
they were made, each under a label that names its round:

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
from dataclasses import dataclass, field

from haggler.memory.agent_memory import AgentMemory
from haggler.memory.items import Environment, MemoryItem, MemoryKind
from haggler.memory.labels import label as _label
from haggler.memory.tokens import CharEstimate, TokenCounter

__all__ = ["TRUNCATION_MARKER", "Recollection", "build_context", "render_items"]

TRUNCATION_MARKER = " [truncated]"
_SEPARATOR = "\n\n"
_ESTIMATE = CharEstimate()


@dataclass(frozen=True)
class Recollection:
    """What an agent recalls for one prompt, and what the budget left out.

    `items` are the kept items, oldest first (summarised episodes included); `summarised` the
    episodes shown only by their summary, and `truncated` the feedback cut to fit (at most the
    newest). `advice` is the kept feedback text, oldest first, exactly as it appears in `text`.
    `dropped`, the ids left out, is read from the memory when asked (it names every other item,
    so building it would cost time in proportion to the memory's size).
    """

    items: tuple[MemoryItem, ...]
    text: str
    tokens: int
    summarised: tuple[str, ...] = ()
    advice: tuple[str, ...] = ()
    truncated: tuple[str, ...] = ()
    _left_out: Callable[[], tuple[str, ...]] = field(default=lambda: (), repr=False, compare=False)

    @property
    def dropped(self) -> tuple[str, ...]:
        """Ids of the items (within the environment asked for) left out, oldest first."""
        return self._left_out()


def render_items(items: Iterable[MemoryItem]) -> str:
    """`items` in full, in the given order, as `build_context` shows them when all fit."""
    return _SEPARATOR.join(_piece(item) for item in items)


def _piece(item: MemoryItem) -> str:
    return _label(item) + item.content


class _Tally:
    """The kept pieces in the order their items were made, and what they cost together.

    With the character estimate the cost of the joined text follows from its length alone,
    exactly; with a real tokenizer pieces are counted one by one and the separators added,
    which `build_context` checks against the whole text at the end.
    """

    def __init__(self, counter: TokenCounter) -> None:
        self.counter = counter
        self.by_length = isinstance(counter, CharEstimate)
        self.separator = 0 if self.by_length else counter.count(_SEPARATOR)
        self.kept: list[tuple[int, str]] = []
        self.length = 0  # characters of the joined text
        self.summed = 0  # tokens, pieces counted one by one, when not by length

    def cost_with(self, piece: str) -> tuple[int, int]:
        """(tokens of the kept text with `piece` added, the piece's own tokens)."""
        joined = self.length + len(piece) + (len(_SEPARATOR) if self.kept else 0)
        if self.by_length:
            assert isinstance(self.counter, CharEstimate)
            return self.counter.count_length(joined), 0
        own = self.counter.count(piece)
        return self.summed + own + (self.separator if self.kept else 0), own

    def tokens(self) -> int:
        if self.by_length:
            assert isinstance(self.counter, CharEstimate)
            return self.counter.count_length(self.length)
        return self.summed + self.separator * max(0, len(self.kept) - 1)

    def add(self, position: int, piece: str, own: int) -> None:
        self.length += len(piece) + (len(_SEPARATOR) if self.kept else 0)
        self.summed += own
        bisect.insort(self.kept, (position, piece))

    def remove(self, position: int) -> None:
        index = next(i for i, (p, _) in enumerate(self.kept) if p == position)
        _, piece = self.kept.pop(index)
        self.length -= len(piece) + (len(_SEPARATOR) if self.kept else 0)
        if not self.by_length:
            self.summed -= self.counter.count(piece)

    def text(self) -> str:
        return _SEPARATOR.join(piece for _, piece in self.kept)


def _fits_prefix(
    count: Callable[[str], int], render: Callable[[int], str], length: int, budget: int
) -> int:
    """The longest k <= length for which render(k) fits the budget, or -1 if none does.

    A binary search over the count itself, so the cut stays right whatever the counter.
    """
    low, high = -1, length
    while low < high:
        middle = (low + high + 1) // 2
        if count(render(middle)) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def _cut_to_budget(item: MemoryItem, budget: int, count: Callable[[str], int]) -> tuple[str, str]:
    """The newest feedback cut to fit the budget alone: (rendered piece, advice as shown).

    The label goes before the advice does; the marker goes only when even that leaves room.
    """
    content, label = item.content, _label(item)
    k = _fits_prefix(count, lambda k: label + content[:k] + TRUNCATION_MARKER, len(content), budget)
    if k > 0:
        shown = content[:k] + TRUNCATION_MARKER
        return label + shown, shown
    k = _fits_prefix(count, lambda k: content[:k] + TRUNCATION_MARKER, len(content), budget)
    if k > 0:
        shown = content[:k] + TRUNCATION_MARKER
        return shown, shown
    # A budget of a few tokens: show what fits, which is at least the first character.
    k = max(_fits_prefix(count, lambda k: content[:k], len(content), budget), 0)
    return content[:k], content[:k]


def _first(memory: AgentMemory, kind: MemoryKind, env: Environment | None) -> MemoryItem | None:
    """The newest item of `kind` within `env`."""
    return next(memory.newest(kind, env), None)


def build_context(
    memory: AgentMemory,
    *,
    budget_tokens: int,
    env: Environment | None = None,
    counter: TokenCounter | None = None,
) -> Recollection:
    """Recall `memory` (only items from within `env`, when given) in at most `budget_tokens`
    tokens of `counter` (the character estimate when None), following the budget policy of
    this module."""
    if isinstance(budget_tokens, bool) or not isinstance(budget_tokens, int) or budget_tokens < 1:
        raise ValueError(f"budget_tokens must be a positive whole number, got {budget_tokens!r}")
    counter = counter or _ESTIMATE
    tally = _Tally(counter)
    shown_advice: dict[str, str] = {}
    summarised: list[str] = []
    truncated: list[str] = []
    # Kept items in the order of priority they were taken in: the last is the first to give
    # way if a real tokenizer's whole-text count comes out above the pieces' sum.
    taken: list[MemoryItem] = []

    def room() -> float:
        """The longest rendering that could still fit (an upper bound: nothing longer is read)."""
        if tally.by_length:
            assert isinstance(counter, CharEstimate)
            return budget_tokens * counter.chars_per_token - tally.length - len(_SEPARATOR)
        return counter.chars_at_most(budget_tokens - tally.tokens())

    def try_keep(item: MemoryItem, piece: str) -> bool:
        total, own = tally.cost_with(piece)
        if total > budget_tokens:
            return False
        tally.add(memory.position(item.id), piece, own)
        taken.append(item)
        return True

    def consider(item: MemoryItem, *, newest_feedback: bool = False) -> None:
        if item.kind == "episode":
            if try_keep(item, _piece(item)):
                return
            summary = item.meta.get("summary")
            if isinstance(summary, str) and try_keep(item, _label(item, summary=True) + summary):
                summarised.append(item.id)
        elif item.kind == "feedback":
            if try_keep(item, _piece(item)):
                shown_advice[item.id] = item.content
            elif newest_feedback:
                # Nothing is kept yet, so the cut piece is the whole text and fits by design.
                piece, shown = _cut_to_budget(item, budget_tokens, counter.count)
                tally.add(memory.position(item.id), piece, counter.count(piece))
                taken.append(item)
                shown_advice[item.id] = shown
                truncated.append(item.id)
        else:
            try_keep(item, _piece(item))

    def walk(kind: MemoryKind, after: MemoryItem | None) -> None:
        """Older items of `kind` than `after`, newest first, that might still fit."""
        current = after
        while (current := memory.older(kind, current, room(), env)) is not None:
            consider(current)

    newest_feedback = _first(memory, "feedback", env)
    newest_episode = _first(memory, "episode", env)
    if newest_feedback is not None:
        consider(newest_feedback, newest_feedback=True)
    if newest_episode is not None:
        consider(newest_episode)
    if newest_feedback is not None:
        walk("feedback", newest_feedback)
    walk("note", None)
    if newest_episode is not None:
        walk("episode", newest_episode)

    text = tally.text()
    tokens = counter.count(text)
    # Pieces counted one by one can sum a token or two below the whole text; give way from
    # the lowest priority until the whole fits (never the newest feedback, cut to fit alone).
    while tokens > budget_tokens and len(taken) > 1:
        dropped = taken.pop()
        tally.remove(memory.position(dropped.id))
        shown_advice.pop(dropped.id, None)
        if dropped.id in summarised:
            summarised.remove(dropped.id)
        text = tally.text()
        tokens = counter.count(text)

    kept = sorted(taken, key=lambda item: memory.position(item.id))
    kept_ids = {item.id for item in kept}
    order = {item.id: i for i, item in enumerate(kept)}

    def left_out() -> tuple[str, ...]:
        return tuple(item.id for item in memory.items(env=env) if item.id not in kept_ids)

    return Recollection(
        items=tuple(kept),
        text=text,
        tokens=tokens,
        summarised=tuple(sorted(summarised, key=order.__getitem__)),
        advice=tuple(shown_advice[i] for i in sorted(shown_advice, key=order.__getitem__)),
        truncated=tuple(truncated),
        _left_out=left_out,
    )
