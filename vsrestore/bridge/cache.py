"""A bounded, thread-safe cache that computes each key once.

Filters whose network serves several output frames per inference (MSITF: 7 outputs per window,
MSTFN: one Stage-I result reused by three output frames) keep results here. VapourSynth may ask for
frames out of order and from several threads; a key being computed by one thread is waited for by the
others instead of being computed twice. The least recently used entries are dropped past
``max_items``, so memory stays bounded on clips of any length.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class BoundedCache(Generic[V]):
    """LRU cache of at most ``max_items`` values; ``max_items=0`` disables caching."""

    def __init__(self, max_items: int) -> None:
        if max_items < 0:
            raise ValueError(f"max_items must be >= 0, not {max_items}")
        self.max_items = max_items
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._pending: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The cached value for ``key``, computing it (once, across threads) when absent."""
        if self.max_items == 0:
            return compute()
        while True:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    self.hits += 1
                    return self._items[key]
                event = self._pending.get(key)
                if event is None:
                    event = self._pending[key] = threading.Event()
                    self.misses += 1
                    break
            # Another thread computes it; if that fails, the loop lets this one try.
            event.wait()
        try:
            value = compute()
            with self._lock:
                self._items[key] = value
                while len(self._items) > self.max_items:
                    self._items.popitem(last=False)
            return value
        finally:
            with self._lock:
                del self._pending[key]
            event.set()

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
