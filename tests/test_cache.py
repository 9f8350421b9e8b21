"""BoundedCache: bound, LRU order, disabled mode, compute-once across threads, failure retry."""
from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from vsrestore.bridge.cache import BoundedCache


class Computer:
    """A compute function factory that counts calls per key (thread-safe)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: Counter = Counter()
        self.lock = threading.Lock()
        self.delay = delay

    def __call__(self, key):
        def compute():
            with self.lock:
                self.calls[key] += 1
            if self.delay:
                time.sleep(self.delay)
            return ("value", key)

        return compute


def test_values_and_hits() -> None:
    cache: BoundedCache = BoundedCache(4)
    make = Computer()
    assert cache.get_or_compute("a", make("a")) == ("value", "a")
    assert cache.get_or_compute("a", make("a")) == ("value", "a")
    assert cache.get_or_compute(("b", 1), make(("b", 1))) == ("value", ("b", 1))
    assert make.calls == Counter({"a": 1, ("b", 1): 1})
    assert (cache.hits, cache.misses) == (1, 2)
    assert len(cache) == 2


def test_bound_is_respected() -> None:
    cache: BoundedCache = BoundedCache(5)
    make = Computer()
    for key in range(200):
        cache.get_or_compute(key, make(key))
        assert len(cache) == min(key + 1, 5)
    # the last five keys are the ones kept: asking again computes nothing
    for key in range(195, 200):
        cache.get_or_compute(key, make(key))
    assert sum(make.calls.values()) == 200
    # an old key was evicted: it is computed a second time
    cache.get_or_compute(0, make(0))
    assert make.calls[0] == 2


def test_least_recently_used_is_evicted() -> None:
    cache: BoundedCache = BoundedCache(3)
    make = Computer()
    for key in "abc":
        cache.get_or_compute(key, make(key))
    cache.get_or_compute("a", make("a"))  # a becomes the most recent: order b, c, a
    cache.get_or_compute("d", make("d"))  # evicts b
    assert len(cache) == 3
    for key in "acd":
        cache.get_or_compute(key, make(key))
    assert make.calls == Counter({"a": 1, "b": 1, "c": 1, "d": 1})
    cache.get_or_compute("b", make("b"))  # recomputed; evicts the least recent, a
    assert make.calls["b"] == 2
    cache.get_or_compute("c", make("c"))
    cache.get_or_compute("d", make("d"))
    assert make.calls["c"] == 1 and make.calls["d"] == 1
    cache.get_or_compute("a", make("a"))
    assert make.calls["a"] == 2


def test_zero_disables_caching() -> None:
    cache: BoundedCache = BoundedCache(0)
    make = Computer()
    for _ in range(3):
        assert cache.get_or_compute("k", make("k")) == ("value", "k")
    assert make.calls["k"] == 3
    assert len(cache) == 0


def test_negative_size_is_refused() -> None:
    with pytest.raises(ValueError, match="max_items"):
        BoundedCache(-1)


def test_clear() -> None:
    cache: BoundedCache = BoundedCache(3)
    make = Computer()
    cache.get_or_compute("a", make("a"))
    cache.clear()
    assert len(cache) == 0
    cache.get_or_compute("a", make("a"))
    assert make.calls["a"] == 2


def run_threads(count: int, target) -> list:
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list = []

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = target(i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive(), "a thread hung"
    assert not errors, errors
    return results


def test_same_key_is_computed_once_across_threads() -> None:
    cache: BoundedCache = BoundedCache(4)
    make = Computer(delay=0.2)  # long enough for every thread to arrive while it runs
    results = run_threads(8, lambda i: cache.get_or_compute("shared", make("shared")))
    assert make.calls["shared"] == 1
    assert all(r == ("value", "shared") for r in results)
    assert all(r is results[0] for r in results)  # the very same object
    assert (cache.misses, cache.hits) == (1, 7)


def test_threads_on_mixed_keys_compute_each_once() -> None:
    cache: BoundedCache = BoundedCache(16)
    make = Computer(delay=0.05)
    keys = [i % 3 for i in range(8)]
    results = run_threads(8, lambda i: cache.get_or_compute(keys[i], make(keys[i])))
    assert results == [("value", k) for k in keys]
    assert make.calls == Counter({0: 1, 1: 1, 2: 1})


def test_failed_compute_lets_a_later_call_retry() -> None:
    cache: BoundedCache = BoundedCache(2)
    attempts = []

    def failing():
        attempts.append(1)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cache.get_or_compute("k", failing)
    assert len(cache) == 0
    assert cache.get_or_compute("k", lambda: 42) == 42
    assert cache.get_or_compute("k", failing) == 42  # cached now: not called again
    assert len(attempts) == 1


def test_failure_seen_by_one_thread_lets_waiters_retry() -> None:
    """The first computer fails while others wait; one waiter then computes, the rest reuse it."""
    cache: BoundedCache = BoundedCache(2)
    lock = threading.Lock()
    calls = []

    def compute():
        with lock:
            calls.append(threading.get_ident())
            first = len(calls) == 1
        time.sleep(0.2)
        if first:
            raise RuntimeError("first attempt fails")
        return "ok"

    def ask(i: int):
        try:
            return cache.get_or_compute("k", compute)
        except RuntimeError as exc:
            return exc

    results = run_threads(8, ask)
    failures = [r for r in results if isinstance(r, RuntimeError)]
    assert len(failures) == 1
    assert results.count("ok") == 7
    assert len(calls) == 2  # the failed attempt and exactly one retry
