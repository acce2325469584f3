"""Measure one rewrite engine through its propose(), in whatever environment runs this file.

    python benchmarks/rewriter_measure.py --engine hf --model-dir DIR --out hf.json

Queries are sent `concurrency` at a time (a semaphore keeps that many in flight); each run starts with an
untimed warm-up at the same concurrency. Prints nothing but logs; writes one JSON document.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from services.rewriter.config import RewriterSettings
from services.rewriter.engine import ENGINES, RewriteEngine, RewriteInput


def cpu_times() -> list[int]:
    """Aggregate CPU jiffies from /proc/stat: user nice system idle iowait irq softirq steal."""
    return [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def steal_share(before: list[int], after: list[int]) -> float:
    """Share of CPU time the hypervisor gave to other machines meanwhile (noisy neighbours)."""
    delta = [b - a for a, b in zip(before, after, strict=True)]
    return delta[7] / max(sum(delta), 1)


def worker_thread_runner() -> Any:
    """One worker thread, as the gRPC service gives its engines (GrpcService.run_blocking)."""
    executor = ThreadPoolExecutor(max_workers=1)

    async def run_blocking(fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    return run_blocking


async def one_run(
    engine: RewriteEngine, queries: list[str], concurrency: int, n: int, seed0: int
) -> dict[str, Any]:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(i: int, query: str) -> tuple[int, int]:
        async with gate:
            started = time.perf_counter()
            proposal = await engine.propose(RewriteInput(query=query, n=n, seed=seed0 + i))
            latencies.append(time.perf_counter() - started)
            return proposal.tokens, len(proposal.candidates)

    cpu_before = cpu_times()
    started = time.perf_counter()
    results = await asyncio.gather(*(one(i, q) for i, q in enumerate(queries)))
    wall = time.perf_counter() - started
    steal = steal_share(cpu_before, cpu_times())
    tokens = sum(t for t, _ in results)
    rewrites = sum(r for _, r in results)
    return {
        "requests": len(queries),
        "wall_s": wall,
        "tokens": tokens,
        "rewrites": rewrites,
        "tokens_per_s": tokens / wall,
        "rewrites_per_s": rewrites / wall,
        "requests_per_s": len(queries) / wall,
        "p50_latency_s": statistics.median(latencies),
        "max_latency_s": max(latencies),
        "cpu_steal": steal,
    }


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    queries = json.loads(Path(args.queries).read_text())
    settings = RewriterSettings(engines=args.engine, model_dir=Path(args.model_dir))
    engine = ENGINES.get(args.engine)(settings, worker_thread_runner())
    started = time.perf_counter()
    await engine.start()
    init_s = time.perf_counter() - started
    out: dict[str, Any] = {
        "engine": args.engine,
        "version": engine.version,
        "init_s": init_s,
        "environment": Path(sys.prefix).name,  # .venv or .venv-vllm; no machine paths in reports
        "n": args.n,
        "sampling": {
            "samples_per_query": round(args.n * settings.oversample),
            "max_new_tokens": settings.max_new_tokens,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
        },
        "levels": {},
    }
    try:
        for concurrency in args.concurrency:
            count = max(args.requests, concurrency * args.waves)
            batch = [queries[i % len(queries)] for i in range(count)]
            # Warm-up: every query once (new prompt lengths cost the first time), not timed.
            await one_run(engine, batch, concurrency, args.n, seed0=10_000)
            runs = [
                await one_run(engine, batch, concurrency, args.n, seed0=rep * count)
                for rep in range(args.repeats)
            ]
            out["levels"][str(concurrency)] = {"runs": runs, "load_avg_1m": os.getloadavg()[0]}
            print(f"{args.engine} c={concurrency}: {[round(r['tokens_per_s'], 1) for r in runs]} tok/s")
    finally:
        await engine.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", required=True)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--queries", required=True, help="JSON list of query strings")
    parser.add_argument("--out", required=True)
    parser.add_argument("--n", type=int, default=4, help="rewrites asked per query")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--requests", type=int, default=12, help="queries per timed run, at least")
    parser.add_argument("--waves", type=int, default=1, help="timed runs send concurrency x waves queries")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    result = asyncio.run(measure(args))
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
