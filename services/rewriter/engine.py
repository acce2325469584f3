"""Rewrite engines turn chat messages into n sampled completions; the servicer depends only on this."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

from services.core.engine import Engine
from services.core.registry import Registry
from services.rewriter.config import RewriterSettings


@dataclass(frozen=True)
class Generation:
    texts: list[str]
    tokens: int


class RewriteEngine(Engine[RewriterSettings]):
    @abstractmethod
    def generate(
        self, messages: list[dict[str, str]], n: int, seed: int | None, max_time_s: float | None
    ) -> Generation:
        """n independent samples for one chat conversation (blocking)."""


ENGINES: Registry[RewriteEngine] = Registry("rewriter", {"hf": "services.rewriter.engines.hf:HFEngine"})
