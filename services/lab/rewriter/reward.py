"""The online-RL reward: a policy's sampled rewrites scored by the live retriever and judge, by the pipeline.

The completions sampled for one prompt are that query's rewrite list, as the n samples of one Rewrite
call are when the rewriter serves: each is parsed like served output (lines, decoration, garbage), a
rewrite already proposed by an earlier sample is a duplicate, and the list goes through
SynthesisPipeline.stages() with the rewriter's answer replaced by it. Intent judgments, retrieval,
product judgments and rank_rewrites() are the pipeline's own code, so the reward a rewrite gets in
training is the one it would get in synthesis. A completion's reward is the mean reward of its lines,
a dropped or duplicate line counting 0.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.core.errors import ConfigError
from services.core.text import normalize_query
from services.pipeline.clients import BackendError
from services.pipeline.config import PipelineSettings
from services.pipeline.domain import RewriteCandidate, Rewritten
from services.pipeline.models import DroppedCandidate, Rewrite, SynthesisResult
from services.pipeline.rewards import REWARD_NAMES
from services.pipeline.synthesize import SynthesisPipeline, SynthesisRequest
from services.rewriter.parsing import parse_candidates

log = logging.getLogger(__name__)

SOURCE = "llm:policy"


@dataclass
class Sampled:
    """One query's completions as one rewrite list: which candidate came from which completion."""

    rewritten: Rewritten
    lines: list[list[str]]  # per completion, the normalised text of each of its lines ("" = dropped)


def sampled_list(query: str, texts: Sequence[str], max_words: int, max_chars: int) -> Sampled:
    """Parse each completion as served output; a line another completion proposed first is a duplicate."""
    seen: set[str] = set()
    candidates: list[RewriteCandidate] = []
    dropped: list[DroppedCandidate] = []
    lines: list[list[str]] = []
    for text in texts:
        kept, bad = parse_candidates([text], query, max_words, max_chars)
        mine: list[str] = [""] * len(bad)
        dropped += [DroppedCandidate(text=d.text, reason=d.reason) for d in bad]
        for parsed in kept:
            key = normalize_query(parsed.text)
            if key in seen:
                dropped.append(DroppedCandidate(text=parsed.text, reason="duplicate"))
                mine.append("")
                continue
            seen.add(key)
            candidates.append(RewriteCandidate(text=parsed.text, source=SOURCE))
            mine.append(key)
        lines.append(mine)
    return Sampled(Rewritten(candidates=candidates, dropped=dropped), lines)


def completion_rewards(sampled: Sampled, rewrites: Sequence[Rewrite]) -> list[float]:
    by_text = {normalize_query(r.text): r.reward for r in rewrites}
    return [sum(by_text.get(key, 0.0) for key in keys) / len(keys) if keys else 0.0 for keys in sampled.lines]


@dataclass
class RewardStats:
    """What the last batch's rewrites scored, for the progress bar and the training log."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, result: SynthesisResult, sampled: Sampled) -> None:
        lines = sum(len(keys) for keys in sampled.lines)
        rewrites = result.rewrites
        self.values.setdefault("intent_pass", []).append(
            sum(r.accepted for r in rewrites) / lines if lines else 0.0
        )
        self.values.setdefault("dropped", []).append(
            sum(not key for keys in sampled.lines for key in keys) / lines if lines else 1.0
        )
        for name in REWARD_NAMES:
            self.values.setdefault(name, []).extend(getattr(r.rewards, name) for r in rewrites)

    def means(self) -> dict[str, float]:
        return {name: sum(v) / len(v) for name, v in self.values.items() if v}


class PipelineReward:
    """An async TRL reward function (GRPOTrainer runs it on its own event loop, where the gRPC channels
    are opened on first use)."""

    def __init__(
        self,
        settings: PipelineSettings,
        num_rewrites: int,
        top_k: int,
        max_words: int,
        max_chars: int,
        on_stats: Callable[[dict[str, float]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.num_rewrites = num_rewrites
        self.top_k = top_k
        self.max_words = max_words
        self.max_chars = max_chars
        self.on_stats = on_stats
        self.pipeline: SynthesisPipeline | None = None

    async def score(self, query: str, texts: Sequence[str], stats: RewardStats | None = None) -> list[float]:
        """Rewards of one query's completions, from one synthesis of them."""
        if self.pipeline is None:
            self.pipeline = SynthesisPipeline(self.settings)
        sampled = sampled_list(query, texts, self.max_words, self.max_chars)
        request = SynthesisRequest(query=query, num_rewrites=self.num_rewrites, top_k=self.top_k)
        result: SynthesisResult | None = None
        async for stage in self.pipeline.stages(request, sampled.rewritten):
            if isinstance(stage, SynthesisResult):
                result = stage
        assert result is not None
        if stats is not None:
            stats.add(result, sampled)
        return completion_rewards(sampled, result.rewrites)

    async def __call__(
        self, prompts: list[Any], completions: list[Any], query: list[str], **kwargs: Any
    ) -> list[float]:
        groups: dict[str, list[int]] = {}
        for index, q in enumerate(query):
            groups.setdefault(q, []).append(index)
        stats = RewardStats()

        async def one(q: str, indices: list[int]) -> tuple[list[int], list[float]]:
            return indices, await self.score(q, [_text(completions[i]) for i in indices], stats)

        rewards = [0.0] * len(completions)
        for indices, values in await asyncio.gather(*(one(q, ix) for q, ix in groups.items())):
            for i, value in zip(indices, values, strict=True):
                rewards[i] = value
        log_metric = kwargs.get("log_metric")
        for name, value in stats.means().items():
            if log_metric is not None:
                log_metric(name, value)
        if self.on_stats is not None:
            self.on_stats(stats.means())
        return rewards

    async def close(self) -> None:
        if self.pipeline is not None:
            await self.pipeline.close()
            self.pipeline = None


def _text(completion: Any) -> str:
    """A completion as TRL passes it: a list of messages (conversational) or plain text."""
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    return str(completion)


def reward_services(pipeline: PipelineSettings | None) -> str:
    """The pipeline version of the services GRPO scores against; a one-line error when they are down."""
    if pipeline is None:
        raise ConfigError("grpo scores samples with the live retriever and judge: pipeline settings needed")

    async def version() -> str:
        client = SynthesisPipeline(pipeline)
        try:
            return await client.version()
        finally:
            await client.close()

    try:
        return asyncio.run(version())
    except BackendError as error:
        raise ConfigError(
            f"grpo needs the running rewriter, retriever and judge (TAILSYNTH_PIPELINE_*_TARGET): {error}"
        ) from None
