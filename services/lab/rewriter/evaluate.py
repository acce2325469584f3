"""`synth eval rewriter`: one served rewriter on labelled queries, scored as the pipeline scores rewrites.

For each query the rewriter is asked for rewrites with a seed derived from the query (so two models are
compared on the same sampling draws), and its answer goes through SynthesisPipeline.stages() against
the live retriever and judge: the intent judgments, rewards and ranking are the pipeline's own. Then,
against the labels, the running retriever's top k gives the recall@k of the query alone and of the
union of the query's and its intent-accepted rewrites' top k (what synthesis searches).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from services.core.errors import InvalidInput
from services.core.text import normalize_query
from services.lab.ranking import finite_json
from services.pipeline.clients import BackendError, RewriterClient
from services.pipeline.config import PipelineSettings
from services.pipeline.models import RewritesStage, SynthesisResult
from services.pipeline.rewards import REWARD_NAMES
from services.pipeline.synthesize import SynthesisPipeline, SynthesisRequest

CONCURRENCY = 4
# Dropped for these reasons a sample is lost output; a duplicate of another sample is not garbage.
LOST = ("copy_of_query", "too_long", "not_text", "empty")


@dataclass(frozen=True)
class EvalConfig:
    num_rewrites: int = 4
    top_k: int = 20
    ks: tuple[int, ...] = (10, 100)
    seed: int = 13
    llm_only: bool = True  # score only the LLM engines' candidates (llm:*)


@dataclass
class QueryOutcome:
    query: str
    candidates: list[dict[str, Any]] = field(default_factory=list)  # LLM candidates with verdict, rewards
    dropped: list[dict[str, str]] = field(default_factory=list)
    searched: list[str] = field(default_factory=list)  # intent-accepted LLM rewrites
    rankings: list[list[str]] = field(default_factory=list)  # product ids: the query's, then each searched


def query_seed(query: str, seed: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}\0{normalize_query(query)}".encode()).digest()[:4], "big")


def _is_llm(source: str) -> bool:
    return source.startswith("llm:")


async def _one(
    rewriter: RewriterClient, pipeline: SynthesisPipeline, query: str, config: EvalConfig
) -> QueryOutcome:
    rewritten = await rewriter.rewrite(query, config.num_rewrites, None, query_seed(query, config.seed))
    if config.llm_only:
        rewritten.candidates[:] = [c for c in rewritten.candidates if _is_llm(c.source)]
    outcome = QueryOutcome(query, dropped=[{"text": d.text, "reason": d.reason} for d in rewritten.dropped])
    request = SynthesisRequest(query=query, num_rewrites=config.num_rewrites, top_k=config.top_k)
    intent: dict[str, bool] = {}
    async for stage in pipeline.stages(request, rewritten):
        if isinstance(stage, RewritesStage):
            intent = {c.text: c.accepted for c in stage.candidates}
        elif isinstance(stage, SynthesisResult):
            for r in stage.rewrites:
                outcome.candidates.append(
                    {
                        "text": r.text,
                        "source": r.source,
                        "intent_pass": intent.get(r.text, False),
                        "accepted": r.accepted,
                        "reward": r.reward,
                        **{name: getattr(r.rewards, name) for name in REWARD_NAMES},
                        "intent": r.rewards.intent,
                    }
                )
            outcome.searched = [t for t, ok in intent.items() if ok]
    hits = await pipeline.retriever.search([query, *outcome.searched], max(config.ks))
    outcome.rankings = [[h.product_id for h in found] for found in hits]
    return outcome


async def score_queries(
    settings: PipelineSettings, rewriter_target: str, queries: Sequence[str], config: EvalConfig
) -> tuple[list[QueryOutcome], dict[str, str]]:
    """Every query through the rewriter at `rewriter_target` and the pipeline; and Describe's answer."""
    from tqdm import tqdm

    pipeline = SynthesisPipeline(settings.model_copy(update={"rewriter_target": rewriter_target}))
    rewriter = pipeline.rewriter
    try:
        if not await rewriter.healthy(timeout_s=10.0):
            raise InvalidInput(f"the rewriter at {rewriter_target} is not reachable or not serving")
        info = await rewriter.describe()
        version = await pipeline.version()
        gate = asyncio.Semaphore(CONCURRENCY)
        progress = tqdm(total=len(queries), desc="rewriting and scoring", unit="query", file=sys.stderr)

        async def one(query: str) -> QueryOutcome:
            async with gate:
                outcome = await _one(rewriter, pipeline, query, config)
                progress.update()
                return outcome

        try:
            outcomes = list(await asyncio.gather(*(one(q) for q in queries)))
        except BackendError as error:
            raise InvalidInput(f"scoring rewrites failed: {error}") from None
        finally:
            progress.close()
    finally:
        await pipeline.close()
    described = {"engine": info.engine, "version": info.version, "pipeline_version": version}
    return outcomes, described


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def summarize(outcomes: Sequence[QueryOutcome]) -> dict[str, Any]:
    """The issue's measures over all queries (definitions in DEFINITIONS)."""
    candidates = [c for o in outcomes for c in o.candidates]
    lost = [d for o in outcomes for d in o.dropped if d["reason"].split(" ", 1)[0] in LOST]
    samples = len(candidates) + len(lost)
    reasons = Counter(d["reason"].split(" ", 1)[0] for o in outcomes for d in o.dropped)
    passing = sum(c["intent_pass"] for c in candidates)
    return {
        "queries": len(outcomes),
        "candidates": len(candidates),
        "dropped": dict(sorted(reasons.items())),
        "dropped_share": len(lost) / samples if samples else 0.0,
        "intent_pass_share": passing / samples if samples else 0.0,
        "intent_pass_of_candidates": passing / len(candidates) if candidates else 0.0,
        "accepted_share": sum(c["accepted"] for c in candidates) / samples if samples else 0.0,
        "mean_reward": _mean([c["reward"] for c in candidates]),
        "mean_reward_per_sample": sum(c["reward"] for c in candidates) / samples if samples else 0.0,
        "components": {name: _mean([c[name] for c in candidates]) for name in ("intent", *REWARD_NAMES)},
        "distinct_per_query": _mean(
            [len({normalize_query(c["text"]) for c in o.candidates}) for o in outcomes]
        ),
        "searched_per_query": _mean([len(o.searched) for o in outcomes]),
    }


DEFINITIONS = {
    "samples": "LLM candidates the rewriter returned plus the samples it dropped as lost output "
    "(copy of the query, too long, not text, empty); duplicates are not counted",
    "dropped_share": "lost samples / samples",
    "intent_pass_share": "candidates the intent judge accepted / samples",
    "mean_reward": "mean pipeline reward (weighted rewards) of the returned candidates",
    "mean_reward_per_sample": "sum of the candidates' rewards / samples (a lost sample counts 0)",
    "distinct_per_query": "distinct candidates a query",
    "union": "recall@k of the union of the query's top k and each intent-accepted rewrite's top k "
    "(the running retriever's index, as synthesis searches)",
    "increment": "union recall@k minus the query's own recall@k",
}


def union_recall(
    outcomes: Sequence[QueryOutcome], labelled: Sequence[Any], ks: Sequence[int]
) -> dict[str, Any]:
    """recall@k of the query alone and of query + intent-accepted rewrites, from the running retriever's
    top k of each text, on the labelled queries."""
    from services.lab.retriever.evaluate import ranking_metrics, union_metrics

    by_query = {normalize_query(o.query): o.rankings for o in outcomes}
    rankings = [by_query[normalize_query(q.text)] for q in labelled]
    out: dict[str, Any] = {
        "query": ranking_metrics([r[0] for r in rankings], labelled, ks),
        "union": union_metrics(rankings, labelled, ks),
    }
    out["union"]["mean_rewrites"] = float(np.mean([len(r) - 1 for r in rankings]))
    out["increment"] = {f"recall@{k}": out["union"][f"recall@{k}"] - out["query"][f"recall@{k}"] for k in ks}
    return out


def write_report(data: dict[str, Any], out_dir: Path, compare: dict[str, Any] | None) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "rewriter-eval.json"
    json_path.write_text(json.dumps(finite_json(data), indent=2, ensure_ascii=False) + "\n")
    plot_path = out_dir / "rewriter-eval.png"
    plot_summary([("other", compare), ("this", data)] if compare else [("this", data)], plot_path)
    return json_path, plot_path


def plot_summary(reports: Sequence[tuple[str, dict[str, Any] | None]], path: Path) -> None:
    """One group of bars per measure, one bar per report."""
    from services.lab.plots import new_figure, save_figure

    names = ["intent_pass_share", "dropped_share", "mean_reward", "union recall@100"]
    figure, axes = new_figure(8, 4.5)
    width = 0.8 / max(len(reports), 1)
    for index, (fallback, report) in enumerate(reports):
        if report is None:
            continue
        summary = report["summary"]
        union = report.get("retrieval", {}).get("union", {})
        values = [
            summary[names[0]],
            summary[names[1]],
            summary[names[2]] or 0.0,
            union.get("recall@100", 0.0),
        ]
        xs = np.arange(len(names)) + index * width
        axes.bar(xs, values, width, label=report.get("label", fallback))
    axes.set_xticks(np.arange(len(names)) + width * (len(reports) - 1) / 2, names)
    axes.set_ylim(0, 1)
    axes.legend()
    axes.set_title("rewriter evaluation")
    save_figure(figure, path)


def timed(began: float) -> float:
    return round(time.monotonic() - began, 1)
