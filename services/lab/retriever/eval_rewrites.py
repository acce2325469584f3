"""Rewrites for `synth eval retrieval --rewrites`: from the running rewriter (optionally kept only when
the running judge accepts them as same-intent rewrites, as the pipeline does) or from a JSONL file
({"query": ..., "rewrites": [...]}) so that models are compared on the same rewrites."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from services.core.errors import InvalidInput
from services.core.text import clean, normalize_query
from services.pipeline.clients import BackendError, JudgeClient, RewriterClient
from services.pipeline.config import PipelineSettings
from services.pipeline.domain import PairKind

CONCURRENCY = 4


def read_rewrites(path: Path) -> dict[str, list[str]]:
    """Normalized query -> rewrites, from JSONL lines {"query": str, "rewrites": [str, ...]}."""
    if not path.is_file():
        raise InvalidInput(f"rewrites file {path} does not exist")
    out: dict[str, list[str]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise InvalidInput(f"{path}: line {number}: invalid JSON ({error.msg})") from None
        rewrites = row.get("rewrites") if isinstance(row, dict) else None
        query = row.get("query") if isinstance(row, dict) else None
        if (
            not isinstance(query, str)
            or not isinstance(rewrites, list)
            or not all(isinstance(r, str) for r in rewrites)
        ):
            raise InvalidInput(
                f'{path}: line {number}: expected {{"query": "...", "rewrites": ["...", ...]}}'
            )
        out[normalize_query(query)] = [c for r in rewrites if (c := clean(r))]
    return out


def write_rewrites(path: Path, queries: Sequence[str], rewrites: Sequence[Sequence[str]]) -> None:
    lines = [
        json.dumps({"query": q, "rewrites": list(r)}, ensure_ascii=False)
        for q, r in zip(queries, rewrites, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def rewrites_from_file(path: Path, queries: Sequence[str]) -> tuple[list[list[str]], int]:
    """(rewrites per query, queries the file has none for: they are evaluated with no rewrites)."""
    known = read_rewrites(path)
    missing = sum(normalize_query(q) not in known for q in queries)
    return [known.get(normalize_query(q), []) for q in queries], missing


async def _probe(
    settings: PipelineSettings, rewriter: RewriterClient, judge_client: JudgeClient | None
) -> None:
    if not await rewriter.healthy(timeout_s=5.0):
        raise InvalidInput(
            f"the rewriter at {settings.rewriter_target} (TAILSYNTH_PIPELINE_REWRITER_TARGET) is not "
            "reachable or not serving: start it (`synth up`) or pass --rewrites-file"
        )
    if judge_client is not None and not await judge_client.healthy(timeout_s=5.0):
        raise InvalidInput(
            f"the judge at {settings.judge_target} (TAILSYNTH_PIPELINE_JUDGE_TARGET) is not reachable "
            "or not serving: start it or leave out --judge-rewrites"
        )


async def _check(settings: PipelineSettings, judge: bool) -> None:
    rewriter = RewriterClient(settings.rewriter_target, settings.rewrite_timeout_s)
    judge_client = JudgeClient(settings.judge_target, settings.judge_timeout_s) if judge else None
    try:
        await _probe(settings, rewriter, judge_client)
    finally:
        await rewriter.close()
        if judge_client is not None:
            await judge_client.close()


def check_services(settings: PipelineSettings, n: int, judge: bool) -> None:
    """Fail at once (before the catalog is encoded) when the rewriter, or the judge, cannot answer."""
    if not 1 <= n <= 16:
        raise InvalidInput("--num-rewrites must be in 1..16")
    asyncio.run(_check(settings, judge))


async def _generate(
    settings: PipelineSettings,
    queries: Sequence[str],
    feedback: Sequence[list[str]],
    n: int,
    judge: bool,
) -> list[list[str]]:
    from tqdm import tqdm

    rewriter = RewriterClient(settings.rewriter_target, settings.rewrite_timeout_s)
    judge_client = JudgeClient(settings.judge_target, settings.judge_timeout_s) if judge else None
    try:
        await _probe(settings, rewriter, judge_client)
        gate = asyncio.Semaphore(CONCURRENCY)
        progress = tqdm(total=len(queries), desc="rewriting", unit="query", file=sys.stderr)

        async def one(query: str, titles: list[str]) -> list[str]:
            async with gate:
                reply = await rewriter.rewrite(query, n, titles)
                texts = [c.text for c in reply.candidates]
                if judge_client is not None and texts:
                    verdicts = await judge_client.judge(query, texts, PairKind.QUERY_REWRITE)
                    texts = [t for t, v in zip(texts, verdicts, strict=True) if v.accepted]
                progress.update()
                return texts

        try:
            return list(await asyncio.gather(*(one(q, f) for q, f in zip(queries, feedback, strict=True))))
        except BackendError as error:
            raise InvalidInput(f"getting rewrites failed: {error}") from None
        finally:
            progress.close()
    finally:
        await rewriter.close()
        if judge_client is not None:
            await judge_client.close()


def rewrites_from_service(
    settings: PipelineSettings,
    queries: Sequence[str],
    feedback: Sequence[list[str]],
    n: int,
    judge: bool = False,
) -> list[list[str]]:
    """Rewrites per query from the running rewriter; `feedback` are the titles of each query's top hits."""
    return asyncio.run(_generate(settings, queries, feedback, n, judge))
