"""make bench-judge: pairs/s of each judge engine through the real judge gRPC service, on CPU.

For every engine: a judge server with only that engine (an engine that judges one pair kind runs with
the lexical judge beside it, whose cost is microseconds), loaded with Judge calls of query-product
pairs from the demo catalog at concurrency 1 and 16 with the score cache off, at concurrency 16 with
cross-request batching off, and once more at concurrency 16 answered from a warm score cache (an
embedded Redis). Every call carries distinct pairs, so nothing is deduplicated away. Writes
reports/bench-judge.md and .json.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "data" / "demo" / "catalog.csv"


def catalog_pairs(count: int, seed: int = 7) -> list[tuple[str, str]]:
    """(query, product text): the query is a product's category leaf, the text another product's."""
    from services.core.text import product_text

    with CATALOG.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rng = random.Random(seed)
    pairs = []
    while len(pairs) < count:
        a, b = rng.choice(rows), rng.choice(rows)
        query = a["category"].split(">")[-1].strip().lower()
        pairs.append((f"{query} {len(pairs)}", product_text(b["title"], b["brand"], b["category"])))
    return pairs


async def load(port: int, pairs: list[tuple[str, str]], per_call: int, concurrency: int) -> dict[str, float]:
    import grpc

    from services.gen.synth.v1 import judge_pb2, judge_pb2_grpc

    calls = [pairs[i : i + per_call] for i in range(0, len(pairs) - per_call + 1, per_call)]
    latencies: list[float] = []
    cached = 0
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = judge_pb2_grpc.JudgeStub(channel)
        queue = iter(calls)

        async def user() -> None:
            nonlocal cached
            for call in queue:
                request = judge_pb2.JudgeRequest(
                    pairs=[
                        judge_pb2.JudgePair(query=q, text=t, kind=judge_pb2.PAIR_KIND_QUERY_PRODUCT)
                        for q, t in call
                    ]
                )
                started = time.perf_counter()
                reply = await stub.Judge(request, timeout=300)
                latencies.append(time.perf_counter() - started)
                cached += sum(all(e.cached for e in j.engine_scores) for j in reply.judgments)

        started = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    judged = len(calls) * per_call
    latencies.sort()
    return {
        "concurrency": concurrency,
        "calls": len(calls),
        "pairs": judged,
        "pairs_per_s": judged / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "cached_share": cached / judged,
    }


class Server:
    def __init__(self, engines: str, state_dir: Path, threads: int, **settings: str) -> None:
        from services.core.redis_server import free_port

        self.port = free_port()
        env = {
            **os.environ,
            "OMP_NUM_THREADS": str(threads),
            "TAILSYNTH_STATE_DIR": str(state_dir),
            "TAILSYNTH_JUDGE_BIND": f"127.0.0.1:{self.port}",
            "TAILSYNTH_JUDGE_ENGINES": engines,
            "TAILSYNTH_JUDGE_CACHE_URL": "",
            "TAILSYNTH_JUDGE_HEALTH_INTERVAL_S": "600",
            **{f"TAILSYNTH_JUDGE_{k.upper()}": v for k, v in settings.items()},
        }
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.judge"],
            env=env,
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def __enter__(self) -> Server:
        self.wait_serving()
        return self

    def __exit__(self, *_: object) -> None:
        self.process.terminate()
        self.process.wait(30)
        self.log.close()

    def last_error(self) -> str:
        self.log.seek(0)
        lines = [line for line in self.log.read().decode(errors="replace").splitlines() if " ERROR " in line]
        return lines[-1].split(": ", 1)[-1] if lines else "see the judge's log"

    def wait_serving(self, timeout_s: float = 300) -> None:
        from services.core.health import wait_serving

        def alive() -> None:
            if self.process.poll() is not None:
                raise RuntimeError(f"the judge exited: {self.last_error()}")

        wait_serving(f"127.0.0.1:{self.port}", timeout_s, check=alive, interval_s=0.5, what="the judge")


def served_engines(engine: str) -> str:
    """The engine alone if it judges every pair kind, else with the lexical judge beside it."""
    from services.judge.engine import ENGINES, PairKind

    kinds = ENGINES.get(engine).kinds
    return engine if kinds >= frozenset(PairKind) else f"{engine},lexical"


def bench_engine(engine: str, args: argparse.Namespace, redis_url: str, state: Path) -> dict[str, Any]:
    served = served_engines(engine)
    per_call = args.pairs_per_call
    size = per_call * args.calls
    fresh = iter(range(1_000_000))

    def pairs() -> list[tuple[str, str]]:  # never the same pairs twice (no cache, no dedup)
        return catalog_pairs(size, seed=next(fresh))

    rows: list[dict[str, Any]] = []

    def record(setup: str, row: dict[str, float]) -> None:
        rows.append({"setup": setup, **row})
        print(
            f"  {engine} {setup} c{row['concurrency']}: {row['pairs_per_s']:.0f} pairs/s, "
            f"p50 {row['p50_ms']:.0f} ms",
            flush=True,
        )

    with Server(served, state, args.threads) as server:
        asyncio.run(load(server.port, catalog_pairs(per_call * 4, seed=999), per_call, 2))  # warm-up
        for level in (1, 16):
            record("cache off, batching on", asyncio.run(load(server.port, pairs(), per_call, level)))
    with Server(served, state, args.threads, batch_max_pairs="0") as server:
        asyncio.run(load(server.port, catalog_pairs(per_call * 4, seed=998), per_call, 2))
        record("cache off, batching off", asyncio.run(load(server.port, pairs(), per_call, 16)))
    with Server(served, state, args.threads, cache_url=redis_url) as server:
        warm = pairs()
        asyncio.run(load(server.port, warm, per_call, 16))  # fills the cache
        record("cached (second run)", asyncio.run(load(server.port, warm, per_call, 16)))
    return {"engine": engine, "served": served, "rows": rows}


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Judge engines: pairs/s through the judge gRPC service",
        "",
        f"Query-product pairs from the demo catalog, {report['pairs_per_call']} pairs per Judge call, "
        f"{report['calls']} calls per row, judge on {report['threads']} OpenMP thread(s), every row on pairs the server has not seen (except the cached "
        f"row, which repeats the run before it). Machine: {report['machine']}; load average "
        f"{report['load_avg_start']:.1f} at the start, {report['load_avg_end']:.1f} at the end (other "
        "processes share the cores).",
        "",
        "| engine | served with | setup | concurrency | pairs/s | p50 ms/call | p99 ms/call | cached |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for result in report["engines"]:
        for r in result["rows"]:
            lines.append(
                f"| {result['engine']} | {result['served']} | {r['setup']} | {r['concurrency']} | "
                f"{r['pairs_per_s']:.0f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['cached_share']:.0%} |"
            )
    for engine, error in report["skipped"].items():
        lines.append(f"| {engine} | - | not run: {error} | | | | | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="embedding,lexical", help="comma-separated judge engines")
    parser.add_argument("--pairs-per-call", type=int, default=8, help="8: a query's rewrites, say")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the judge (k8s sets 1)")
    parser.add_argument("--calls", type=int, default=48)
    parser.add_argument("--out", default=str(ROOT / "reports" / "bench-judge"))
    args = parser.parse_args()

    from services.core.redis_server import EmbeddedRedis
    from services.core.settings import BaseServiceSettings

    state = BaseServiceSettings().state_dir.resolve()  # models (ONNX graph, trained judges) live here
    load_start = os.getloadavg()[0]
    results, skipped = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        redis = EmbeddedRedis(Path(tmp) / "redis")
        redis_url = redis.start()
        try:
            for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
                try:
                    results.append(bench_engine(engine, args, redis_url, state))
                except Exception as error:  # an engine without its model is reported, not fatal
                    skipped[engine] = str(error)
                    print(f"  {engine}: not run: {error}", flush=True)
        finally:
            redis.stop()
    report = {
        "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, Python {platform.python_version()}",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "pairs_per_call": args.pairs_per_call,
        "threads": args.threads,
        "calls": args.calls,
        "load_avg_start": load_start,
        "load_avg_end": os.getloadavg()[0],
        "engines": results,
        "skipped": skipped,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report), file=sys.stderr)


if __name__ == "__main__":
    main()
