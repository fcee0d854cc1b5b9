"""IdentityCache: one build per object, equal-but-distinct objects kept apart, bounded size."""

from __future__ import annotations

import gc
import weakref

from arun.identity_cache import IdentityCache


def test_builds_once_per_object_and_tells_equal_objects_apart() -> None:
    built: list[list[int]] = []

    def build(xs: list[int]) -> int:
        built.append(xs)
        return sum(xs)

    cache: IdentityCache[list[int], int] = IdentityCache(build)
    a, b = [1, 2], [1, 2]
    assert cache.get(a) == 3 and cache.get(a) == 3
    assert cache.get(b) == 3
    assert len(built) == 2 and built[0] is a and built[1] is b


def test_the_cache_keeps_its_keys_alive_so_their_ids_stay_theirs() -> None:
    class Rules(list):  # a list that can be weakly referenced
        pass

    cache: IdentityCache[Rules, int] = IdentityCache(len)
    rules = Rules([1, 2, 3])
    ref = weakref.ref(rules)
    assert cache.get(rules) == 3
    del rules
    gc.collect()
    assert ref() is not None  # no new object can be given this id while the entry lives


def test_bounded_size_and_still_correct_after_clearing() -> None:
    cache: IdentityCache[tuple[int, ...], int] = IdentityCache(len, limit=4)
    keep = [tuple(range(n)) for n in range(10)]
    for t in keep:
        assert cache.get(t) == len(t)
    assert len(cache._items) <= 4
    assert [cache.get(t) for t in keep] == [len(t) for t in keep]
