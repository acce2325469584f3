"""What both LLM runtimes (hf, vllm) take and give: sampling settings in, completions out."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sampling:
    temperature: float
    top_p: float
    max_new_tokens: int


@dataclass(frozen=True)
class Completions:
    texts: list[str]
    tokens: int  # generated tokens, end-of-sequence tokens not counted
