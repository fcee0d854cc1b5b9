"""Values derived once from objects the runtime treats as immutable (a model's rule list, its
price list), keyed by the object's identity.

The object is kept beside its value, alive, so that no other object can take its id while the
entry lives; a changed list is a new object and simply misses.  The cache is bounded: it
is emptied when it grows past ``limit`` entries (schemas are few; custom models can add more).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["IdentityCache"]

K = TypeVar("K")
V = TypeVar("V")


class IdentityCache(Generic[K, V]):
    __slots__ = ("_items", "_build", "_limit")

    def __init__(self, build: Callable[[K], V], limit: int = 4096) -> None:
        self._items: dict[int, tuple[Any, V]] = {}
        self._build = build
        self._limit = limit

    def get(self, obj: K) -> V:
        hit = self._items.get(id(obj))
        if hit is not None:
            return hit[1]
        value = self._build(obj)
        if len(self._items) >= self._limit:
            self._items.clear()
        self._items[id(obj)] = (obj, value)
        return value
