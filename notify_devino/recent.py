"""A dict that keeps only its most recently written entries: the dispatcher's per-message
memory (which channel sent an ID, the last status read for it) must not grow with the number
of messages a long-running service sends."""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class RecentDict(OrderedDict[K, V]):
    """An ordered dict of at most ``maxsize`` entries that keeps the most recently *written*:
    writing a key moves it to the end, and writing a new key past ``maxsize`` forgets the entry
    written longest ago. ``maxsize=0`` keeps nothing.

    Reads do not refresh an entry, so this is no LRU cache: what matters here is when a
    message was last seen to be sent or to change, and a read on the hot path stays a plain
    dict lookup.
    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 0:
            raise ValueError("maxsize must not be negative")
        super().__init__()
        self.maxsize = maxsize

    def __setitem__(self, key: K, value: V) -> None:
        if self.maxsize == 0:
            return
        if key in self:
            self.move_to_end(key)
        super().__setitem__(key, value)
        while len(self) > self.maxsize:
            self.popitem(last=False)


__all__ = ["RecentDict"]
