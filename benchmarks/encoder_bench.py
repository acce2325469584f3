"""make bench-encoder: MiniLM on PyTorch vs ONNX Runtime, and the retriever's micro-batching, on CPU.

Both backends run in this one process on the demo catalog's product titles, interleaved (the order
flips every repeat) so that load from other processes hits both alike; each figure is the median over
the repeats and each ratio the median of the per-repeat ratios. Writes reports/bench-encoder.md/.json.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from services.core.batcher import Batcher
from services.core.encoder import Encoder
from services.retriever.config import RetrieverSettings

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "data" / "demo" / "catalog.csv"
BACKENDS = ("torch", "onnx")


def torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def titles() -> list[str]:
    with CATALOG.open(newline="", encoding="utf-8") as handle:
        return [row["title"] for row in csv.DictReader(handle)]


def time_encode(encoder: Encoder, batches: list[list[str]]) -> float:
    """Seconds per batch over all the batches."""
    started = time.perf_counter()
    for batch in batches:
        encoder.encode(batch)
    return (time.perf_counter() - started) / len(batches)


def backend_runs(encoders: dict[str, Encoder], pool: list[str], repeats: int) -> dict[str, Any]:
    levels: dict[str, Any] = {}
    for size, count in ((1, 48), (64, 4)):
        runs: dict[str, list[float]] = {name: [] for name in BACKENDS}
        for repeat in range(repeats):
            offset = repeat * size * count
            batches = [pool[(offset + i * size) % len(pool) :][:size] for i in range(count)]
            batches = [b if len(b) == size else pool[:size] for b in batches]
            for name in BACKENDS if repeat % 2 == 0 else BACKENDS[::-1]:
                runs[name].append(time_encode(encoders[name], batches))
        ratios = [t / o for t, o in zip(runs["torch"], runs["onnx"], strict=True)]
        levels[str(size)] = {
            "batches_per_run": count,
            "seconds_per_batch": runs,
            "median_ms": {name: 1000 * statistics.median(v) for name, v in runs.items()},
            "texts_per_s": {name: size / statistics.median(v) for name, v in runs.items()},
            "onnx_speedup": statistics.median(ratios),
        }
    return levels


async def concurrent_requests(encoder: Encoder, texts: list[str], max_texts: int, wait_ms: float) -> float:
    """Requests/s for len(texts) concurrent one-text requests through a Batcher on one worker thread."""
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=1) as executor:

        async def run(fn: Any, *args: Any) -> Any:
            return await loop.run_in_executor(executor, fn, *args)

        def encode_each(items: list[str]) -> list[np.ndarray]:
            return list(encoder.encode(items))

        batcher: Batcher[str, np.ndarray] = Batcher(
            encode_each, run, max_weight=max_texts, max_wait_s=wait_ms / 1000
        )
        started = time.perf_counter()
        await asyncio.gather(*(batcher.submit(t) for t in texts))
        elapsed = time.perf_counter() - started
        await batcher.close()
    return len(texts) / elapsed


def batching_runs(encoder: Encoder, pool: list[str], repeats: int, concurrency: int) -> dict[str, Any]:
    settings = RetrieverSettings()
    modes = {"off": (0, 0.0), "on": (settings.batch_max_texts, settings.batch_wait_ms)}
    runs: dict[str, list[float]] = {mode: [] for mode in modes}
    for repeat in range(repeats):
        texts = [pool[(repeat * concurrency + i) % len(pool)] for i in range(concurrency)]
        for mode in modes if repeat % 2 == 0 else list(modes)[::-1]:
            runs[mode].append(asyncio.run(concurrent_requests(encoder, texts, *modes[mode])))
    ratios = [on / off for on, off in zip(runs["on"], runs["off"], strict=True)]
    return {
        "concurrency": concurrency,
        "backend": encoder.backend.name,
        "max_texts": settings.batch_max_texts,
        "wait_ms": settings.batch_wait_ms,
        "requests_per_s": runs,
        "median_requests_per_s": {mode: statistics.median(v) for mode, v in runs.items()},
        "speedup": statistics.median(ratios),
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Sentence encoder: PyTorch vs ONNX Runtime, and Search micro-batching",
        "",
        f"all-MiniLM-L6-v2 (`{report['fingerprint']}`), demo catalog product titles, both backends in one "
        f"process, interleaved, {report['repeats']} repeats, medians. Machine: {report['machine']}; "
        f"load average {report['load_avg_start']:.1f} at the start, {report['load_avg_end']:.1f} at the end "
        "(other processes share the cores: compare the ratios, not the absolute numbers).",
        "",
        "| batch | torch ms/batch | onnx ms/batch | torch texts/s | onnx texts/s | onnx speed-up |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for size, level in report["backends"].items():
        ms, tps = level["median_ms"], level["texts_per_s"]
        lines.append(
            f"| {size} | {ms['torch']:.1f} | {ms['onnx']:.1f} | {tps['torch']:.0f} | {tps['onnx']:.0f} | "
            f"{level['onnx_speedup']:.2f}x |"
        )
    batching = report["batching"]
    med = batching["median_requests_per_s"]
    lines += [
        "",
        f"Agreement: lowest cosine between the backends over {report['agreement_texts']} titles "
        f"{report['min_cosine']:.6f}. ONNX Runtime / PyTorch speed: "
        f"**{report['backends']['1']['onnx_speedup']:.2f}x at batch 1, "
        f"{report['backends']['64']['onnx_speedup']:.2f}x at batch 64**; `auto` uses ONNX Runtime on CPU "
        "(Search calls carry a few texts each, so small batches dominate the retriever's work).",
        "",
        "## Micro-batching of concurrent one-text requests",
        "",
        f"{batching['concurrency']} concurrent requests of one title each through the Batcher on one worker "
        f"thread ({batching['backend']} backend): batching off {med['off']:.0f} requests/s, on "
        f"(max {batching['max_texts']} texts, wait {batching['wait_ms']} ms) {med['on']:.0f} requests/s: "
        f"**{batching['speedup']:.2f}x**.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--out", default=str(ROOT / "reports" / "bench-encoder"))
    args = parser.parse_args()

    pool = titles()
    cache = RetrieverSettings().models_dir
    encoders = {name: Encoder(device="cpu", backend=name, cache_dir=cache) for name in BACKENDS}
    sample = pool[:512]
    cosine = np.einsum("ij,ij->i", encoders["torch"].encode(sample), encoders["onnx"].encode(sample))
    for encoder in encoders.values():  # warm-up: first calls allocate and pick kernels
        encoder.encode(pool[:64])
        encoder.encode(pool[:1])
    load_start = os.getloadavg()[0]
    backends = backend_runs(encoders, pool, args.repeats)
    batching = batching_runs(encoders["onnx"], pool, args.repeats, args.concurrency)
    report = {
        "fingerprint": encoders["torch"].fingerprint,
        "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, Python {platform.python_version()}, "
        f"torch {torch_threads()} threads, onnxruntime default threads",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "repeats": args.repeats,
        "load_avg_start": load_start,
        "load_avg_end": os.getloadavg()[0],
        "agreement_texts": len(sample),
        "min_cosine": float(cosine.min()),
        "backends": backends,
        "batching": batching,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report), file=sys.stderr)


if __name__ == "__main__":
    main()
