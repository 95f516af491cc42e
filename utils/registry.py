"""A name -> item registry whose names are given once: the one shape of every registry of the project,
filled by its ``register_*`` function: the records of ``utils/records.py`` (datasets, tasks, settings),
the networks of ``net/registry.py`` (architectures, models) and the plug-in points ``data/`` fills by
name from the records (stand-in syntheses, online degradations, download finders)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(dict[Hashable, T], Generic[T]):
    """Items by name (or another key, e.g. a degradation id). ``register`` refuses a name given before;
    ``find`` names the registered ones. Read it as a dict.

    what: what an item is, for messages ("stand-in synthesis"); how: the call that registers one.
    """

    def __init__(self, what: str, how: str):
        super().__init__()
        self.what, self.how = what, how

    def register(self, name: Hashable, item: T) -> T:
        """Add ``item`` under a new ``name``; returns it."""
        if name in self:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self[name] = item
        return item

    def find(self, name: Hashable) -> T:
        """The item registered as ``name``; ValueError listing the registered names."""
        if name not in self:
            raise ValueError(f"no {self.what} {name!r} is registered ({self.how}); registered: {sorted(self)}")
        return self[name]
