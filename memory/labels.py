"""The labels an item is shown under in a context, and the least room each kind can take."""

from __future__ import annotations

from haggler.memory.items import MemoryItem

__all__ = ["label", "smallest_rendering"]


def label(item: MemoryItem, *, summary: bool = False) -> str:
    """The label an item is shown under; content follows on the next line (or the same one)."""
    if item.kind == "episode":
        where = f"Round {item.round}, your game" if item.round is not None else "An earlier game"
        return f"{where} (summary): " if summary else f"{where}:\n"
    if item.kind == "feedback":
        after = f" after round {item.round}" if item.round is not None else ""
        return f"Your coach's advice{after}:\n"
    return "Note: "


def smallest_rendering(item: MemoryItem) -> int:
    """The fewest characters `item` can take in a context, label included (its summary, if
    that is shorter): a bound that lets a context skip items that cannot fit unread."""
    full = len(label(item)) + len(item.content)
    summary = item.meta.get("summary") if item.kind == "episode" else None
    if isinstance(summary, str):
        return min(full, len(label(item, summary=True)) + len(summary))
    return full
