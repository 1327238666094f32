"""Named registries: one place per kind of extension point (protocols, rules, guides, searches, ...).

An entry is registered where its code lives, under one name, with a one-line summary that
`swapkl list` prints. Two entries under one name raise at registration, naming both sources,
so which one runs never depends on import order. A registry can name modules to import on the
first look-up (``lazy=``), so that reading a registry at pytest start-up imports no torch.
No torch, numpy or transformers here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Generic, Iterator, Sequence, TypeVar

from .errors import InputError

T = TypeVar("T")


class DuplicateNameError(InputError):
    """Two entries claim one name in one registry."""


class UnknownNameError(InputError):
    """A name that no entry of the registry carries; the message lists the closest names."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    value: T
    summary: str
    source: str  # where it was registered (a module or package), for the duplicate error


class Registry(Generic[T]):
    """Entries of one kind by name, in registration order."""

    def __init__(self, what: str, lazy: Sequence[str] = ()):
        self.what = what  # "protocol", "search", ...: the word error messages use
        self._entries: dict[str, Entry[T]] = {}
        self._lazy = list(lazy)  # modules whose import registers the built-in entries

    def register(self, name: str, value: T, summary: str, source: str = "register()") -> T:
        if not name or name != name.strip() or "," in name:
            raise ValueError(f"{self.what} name {name!r}: use a non-empty name without commas or outer spaces")
        existing = self._entries.get(name)
        if existing is not None:
            if existing.value is not value:
                raise DuplicateNameError(
                    f"{self.what} {name!r} is registered twice, by {existing.source} and by {source}: "
                    "rename one of them")
            return value  # the same entry again (a module imported twice): the first registration stands
        self._entries[name] = Entry(name, value, summary, source)
        return value

    def unregister(self, name: str) -> None:
        """Remove an entry (a test's own entry when the test ends)."""
        self._entries.pop(name, None)

    def _load(self) -> None:
        while self._lazy:
            importlib.import_module(self._lazy.pop(0))

    def entry(self, name: str) -> Entry[T]:
        self._load()
        if name not in self._entries:
            close = get_close_matches(name, list(self._entries), n=3)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise UnknownNameError(
                f"unknown {self.what} {name!r}: {hint}choose from {', '.join(self._entries)} "
                f"(`swapkl list` prints them)")
        return self._entries[name]

    def get(self, name: str) -> T:
        return self.entry(name).value

    def names(self) -> list[str]:
        self._load()
        return list(self._entries)

    def entries(self) -> list[Entry[T]]:
        self._load()
        return list(self._entries.values())

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
