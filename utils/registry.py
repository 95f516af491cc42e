"""A name -> item registry whose names are given once: the shape of every plug-in point that data/
fills by name from the records (stand-in syntheses, online degradations, download finders)."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    """Items by name. ``register`` refuses a name given before; ``find`` names the registered ones.

    what: what an item is, for messages ("stand-in synthesis"); how: the call that registers one.
    """

    def __init__(self, what: str, how: str):
        super().__init__()
        self.what, self.how = what, how

    def register(self, name: str, item: T) -> T:
        """Add ``item`` under a new ``name``; returns it."""
        if name in self:
            raise ValueError(f"{self.what} {name!r} is already registered")
        self[name] = item
        return item

    def find(self, name: str) -> T:
        """The item registered as ``name``; ValueError listing the registered names."""
        if name not in self:
            raise ValueError(f"no {self.what} {name!r} is registered ({self.how}); registered: {sorted(self)}")
        return self[name]
