"""A recency index: items of one kind in the order they were made, searchable by size.

Building a context walks items newest first and keeps those that still fit the budget. Walking
all of them costs time in proportion to the memory's size; this index instead jumps straight to
the next older item whose smallest rendering is short enough to fit what is left, so a context
costs time in proportion to the items it looks at, whatever the memory holds.

It is a segment tree of minimums over positions (one per item ever added, in order); a removed
item's slot holds infinity. Appending is amortised O(1), removing and searching O(log n).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

__all__ = ["RecencyIndex"]

_GONE = math.inf
_LARGEST = 1.7976931348623157e308


class RecencyIndex:
    """Keys in the order they were added, each with a size; removable; searchable by size."""

    def __init__(self) -> None:
        self._keys: list[str | None] = []
        self._position: dict[str, int] = {}
        self._capacity = 1
        self._tree: list[float] = [_GONE, _GONE]

    def __len__(self) -> int:
        return len(self._position)

    def __contains__(self, key: object) -> bool:
        return key in self._position

    def add(self, key: str, size: int) -> None:
        if key in self._position:
            raise ValueError(f"{key!r} is indexed already")
        if len(self._keys) == self._capacity:
            self._grow()
        position = len(self._keys)
        self._keys.append(key)
        self._position[key] = position
        self._set(position, size)

    def extend(self, entries: list[tuple[str, int]]) -> None:
        """Add many keys at once, in order: O(n) for the lot rather than O(log n) each."""
        for key, _ in entries:
            if key in self._position:
                raise ValueError(f"{key!r} is indexed already")
        start = len(self._keys)
        while self._capacity < start + len(entries):
            self._capacity *= 2
        leaves = self._tree[len(self._tree) // 2 : len(self._tree) // 2 + start]
        for offset, (key, size) in enumerate(entries):
            self._keys.append(key)
            self._position[key] = start + offset
            leaves.append(size)
        self._tree = [_GONE] * (2 * self._capacity)
        self._tree[self._capacity : self._capacity + len(leaves)] = leaves
        for node in range(self._capacity - 1, 0, -1):
            self._tree[node] = min(self._tree[2 * node], self._tree[2 * node + 1])

    def resize(self, key: str, size: int) -> None:
        self._set(self._position[key], size)

    def remove(self, key: str) -> None:
        position = self._position.pop(key)
        self._keys[position] = None
        self._set(position, _GONE)

    def newest_first(self, *, at_most: float = _GONE) -> Iterator[str]:
        """Keys newest first, skipping those whose size exceeds `at_most` (a fixed bound; for
        one that shrinks as a context fills, step with `older`)."""
        before = len(self._keys)
        while (position := self._last_fitting(before, at_most)) >= 0:
            key = self._keys[position]
            assert key is not None
            yield key
            before = position

    def older(self, key: str | None, at_most: float) -> str | None:
        """The newest key made before `key` (before every key when None) of size <= at_most."""
        before = len(self._keys) if key is None else self._position[key]
        position = self._last_fitting(before, at_most)
        if position < 0:
            return None
        return self._keys[position]

    # -- the tree ----------------------------------------------------------------------------

    def _set(self, position: int, size: float) -> None:
        node = self._capacity + position
        self._tree[node] = size
        node //= 2
        while node:
            self._tree[node] = min(self._tree[2 * node], self._tree[2 * node + 1])
            node //= 2

    def _grow(self) -> None:
        leaves = self._tree[self._capacity : self._capacity + len(self._keys)]
        self._capacity *= 2
        self._tree = [_GONE] * (2 * self._capacity)
        self._tree[self._capacity : self._capacity + len(leaves)] = leaves
        for node in range(self._capacity - 1, 0, -1):
            self._tree[node] = min(self._tree[2 * node], self._tree[2 * node + 1])

    def _last_fitting(self, before: int, at_most: float) -> int:
        """The largest position < `before` whose size is <= `at_most`, or -1."""
        if before <= 0:
            return -1
        # Removed slots hold infinity: a bound of infinity must still leave them out.
        return self._search(1, 0, self._capacity, before, min(at_most, _LARGEST))

    def _search(self, node: int, low: int, high: int, before: int, at_most: float) -> int:
        # Rightmost leaf in [low, high) ∩ [0, before) with a value <= at_most. A subtree of
        # removed slots holds infinity, which fits no bound, not even an infinite one.
        if low >= before or self._tree[node] > at_most or self._tree[node] == _GONE:
            return -1
        if high - low == 1:
            return low
        middle = (low + high) // 2
        found = self._search(2 * node + 1, middle, high, before, at_most)
        if found >= 0:
            return found
        return self._search(2 * node, low, middle, before, at_most)
