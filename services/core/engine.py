"""What every model engine has: its settings, a blocking load and a version that names its weights."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Generic, TypeVar

S = TypeVar("S")


class Engine(ABC, Generic[S]):
    name: str

    def __init__(self, settings: S) -> None:
        self.settings = settings

    @abstractmethod
    def load(self) -> None:
        """Load weights (blocking; runs on the service's worker thread)."""

    @property
    @abstractmethod
    def version(self) -> str:
        """Changes whenever outputs could change (weights, calibration)."""
