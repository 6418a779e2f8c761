"""Keeping Python's garbage collector off the long-lived heap while many matches run.

The cyclic collector's full collections walk every object the process holds: imported modules,
pydantic schemas, litellm's price map — hundreds of thousands of objects, 0.1 to 0.2 s a walk.
Dozens of concurrent matches allocate fast enough to set one off every second or so, which
measured 15-20% of a hosted tournament's client CPU. What was alive when the run started
outlives it anyway, so it is frozen (`gc.freeze`) for the run, and unfrozen at the end: a
cycle among those objects that turns to garbage meanwhile is collected then, not leaked.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["long_lived_heap_frozen"]

_lock = threading.Lock()
_depth = 0  # runs inside one another (or side by side) share one freeze
_ours = False  # whether that freeze is ours to undo: a pre-fork server may have frozen first


@contextmanager
def long_lived_heap_frozen() -> Iterator[None]:
    """Leave the objects alive now out of the collector's walks until the block ends."""
    global _depth, _ours
    with _lock:
        if _depth == 0:
            _ours = gc.get_freeze_count() == 0
            if _ours:
                gc.freeze()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _ours:
                gc.unfreeze()
