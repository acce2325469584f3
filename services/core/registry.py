"""Engines (and encoder backends) by name, imported lazily so heavy optional dependencies load only when
chosen; a missing one names the extra that installs it."""

from __future__ import annotations

import importlib
from typing import Generic, TypeVar

from services.core.errors import ConfigError
from services.core.optional import install_hint

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, entries: dict[str, str], extras: dict[str, str] | None = None) -> None:
        self.kind = kind  # what an entry is, for messages: "rewriter engine", "encoder backend"
        self.entries = entries  # name -> "module:Class"
        self.extras = extras or {}  # name -> extra of pyproject.toml that installs its dependencies

    def names(self) -> list[str]:
        return sorted(self.entries)

    def get(self, name: str) -> type[T]:
        if name not in self.entries:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}")
        module_name, _, class_name = self.entries[name].partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            extra = self.extras.get(name)
            hint = f"; install it with: {install_hint(extra)}" if extra else ""
            raise ConfigError(f"{self.kind} {name!r} needs {error.name}{hint}") from error
        cls: type[T] = getattr(module, class_name)
        return cls
