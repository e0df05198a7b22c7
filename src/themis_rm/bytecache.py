"""``ByteBudgetCache``: a least-recently-used cache bounded by the bytes it holds, not by its number of entries.

An entry-count bound says nothing about memory when entries are as large as their inputs: the renderer's probe
cache kept 88 KB per unique 30 KB prompt with room for 65,536 of them (about 5.5 GB) in a long-running server.
Bounded by bytes, a cache costs at most what it is allowed, whatever its clients send.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def footprint(obj: object) -> int:
    """Bytes of a tree of strings, tuples and scalars (shared objects counted each time: an upper bound)."""
    if isinstance(obj, tuple):
        return sys.getsizeof(obj) + sum(footprint(item) for item in obj)
    return sys.getsizeof(obj)


class ByteBudgetCache(Generic[K, V]):
    """``get(key, compute)``: the cached value, or ``compute()`` stored while the budget allows.

    The least recently used entries are evicted until a new one fits; an entry larger than the whole budget is
    returned without being stored. Safe to share between threads (a lock around the bookkeeping; ``compute``
    runs outside it, so two threads may compute the same entry once each).

    Args:
        max_bytes: the most the keys and values together may take (:func:`footprint`); 0 disables the cache.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = self.misses = 0
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K, compute: Callable[[], V]) -> V:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry[0]
            self.misses += 1
        value = compute()
        size = footprint(key) + footprint(value)
        if size > self.max_bytes:
            return value
        with self._lock:
            if key not in self._entries:
                self._entries[key] = (value, size)
                self.bytes += size
                while self.bytes > self.max_bytes:
                    _, (_, evicted) = self._entries.popitem(last=False)
                    self.bytes -= evicted
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0
