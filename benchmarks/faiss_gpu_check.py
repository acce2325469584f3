"""FAISS on a GPU against the same index on the CPU, through the service's own code (needs faiss-gpu).

For clustered synthetic vectors, each GPU-capable index type is built on the CPU, copied, moved to the GPU
with services.retriever.gpu.move_to_gpu (what the retriever does at load), and searched both ways: the
GPU's top-10 must match the CPU's (exact: the same products; IVF: within ANN tolerance) with scores within
1e-3, and q/s at batch 1 and 64 is timed on each. HNSW must stay on the CPU; k above faiss's GPU limit is
clamped, not an error. Prints a table and writes JSON (--out). Exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from benchmarks.retriever_bench import clustered
from services.core.catalog import Product
from services.retriever.gpu import move_to_gpu, visible_gpus
from services.retriever.index import GPU_MAX_K, IndexSpec, ProductIndex, build_index

K = 10
# Same-list agreement between a GPU and a CPU search of the same index (float sums differ in order).
MIN_OVERLAP = {"flat": 0.999, "ivf_flat": 0.99, "ivf_pq": 0.95}


def copy_of(index: ProductIndex) -> ProductIndex:
    clone = faiss.deserialize_index(faiss.serialize_index(index.index))
    return ProductIndex(clone, index.products, dict(index.manifest), index.labels)


def run(index: ProductIndex, queries: np.ndarray, batch: int, nprobe: int) -> tuple[float, list[list[Any]]]:
    hits: list[list[Any]] = []
    started = time.perf_counter()
    for start in range(0, len(queries), batch):
        hits += index.search(queries[start : start + batch], K, nprobe=nprobe)
    return len(queries) / (time.perf_counter() - started), hits


def compare(cpu_hits: list[list[Any]], gpu_hits: list[list[Any]]) -> tuple[float, float]:
    """(mean top-K id overlap, largest score difference over the shared products)."""
    overlaps, worst = [], 0.0
    for cpu, gpu in zip(cpu_hits, gpu_hits, strict=True):
        cpu_scores = {p.id: s for p, s in cpu}
        gpu_scores = {p.id: s for p, s in gpu}
        shared = cpu_scores.keys() & gpu_scores.keys()
        overlaps.append(len(shared) / max(1, len(cpu_scores)))
        worst = max([worst, *(abs(cpu_scores[i] - gpu_scores[i]) for i in shared)])
    return float(np.mean(overlaps)), worst


def check_size(
    n: int, dim: int, queries: np.ndarray, nprobe: int, failures: list[str]
) -> list[dict[str, Any]]:
    vectors = clustered(n, dim, 2000, seed=1)
    products = [Product(id=f"P{i}", title=f"product {i}") for i in range(n)]
    rows = []
    for kind in ("flat", "ivf_flat", "ivf_pq"):
        started = time.perf_counter()
        cpu = build_index(products, vectors, IndexSpec(kind), "synthetic", f"{n}")
        build_s = time.perf_counter() - started
        gpu = copy_of(cpu)
        if not move_to_gpu(gpu, "on"):
            failures.append(f"{kind} at {n}: move_to_gpu did not move it")
            continue
        for index in (cpu, gpu):  # warm-up: GPU kernels, OpenMP pools
            index.search(queries[:64], K, nprobe=nprobe)
        row: dict[str, Any] = {"n": n, "kind": kind, "build_s": round(build_s, 1)}
        for batch in (1, 64):
            sample = queries if batch == 64 else queries[:200]
            row[f"cpu_qps_b{batch}"], cpu_hits = run(cpu, sample, batch, nprobe)
            row[f"gpu_qps_b{batch}"], gpu_hits = run(gpu, sample, batch, nprobe)
        row["overlap"], row["max_score_diff"] = compare(cpu_hits, gpu_hits)
        if row["overlap"] < MIN_OVERLAP[kind] or row["max_score_diff"] > 1e-3:
            failures.append(
                f"{kind} at {n}: GPU and CPU disagree ({row['overlap']:.4f}, {row['max_score_diff']:.2e})"
            )
        big = gpu.search(queries[:2], GPU_MAX_K + 500, nprobe=nprobe)
        if any(len(h) > GPU_MAX_K for h in big):
            failures.append(f"{kind} at {n}: k above {GPU_MAX_K} was not clamped on the GPU")
        rows.append(row)
        print(
            f"{n:>9,} {kind:9} build {build_s:6.1f}s  overlap {row['overlap']:.4f}  dscore {row['max_score_diff']:.1e}  "
            f"b1 cpu {row['cpu_qps_b1']:8.0f} gpu {row['gpu_qps_b1']:8.0f}  "
            f"b64 cpu {row['cpu_qps_b64']:8.0f} gpu {row['gpu_qps_b64']:8.0f} q/s",
            flush=True,
        )
    hnsw = build_index(products[:20_000], vectors[:20_000], IndexSpec("hnsw", 16, 40), "synthetic", "h")
    if move_to_gpu(hnsw, "auto"):
        failures.append("an HNSW index was moved to the GPU")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--nprobe", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("reports") / "faiss-gpu-check.json")
    args = parser.parse_args(argv)
    gpus = visible_gpus()
    print(
        f"faiss {faiss.__version__}, {gpus} GPU(s) visible, {faiss.omp_get_max_threads()} CPU threads",
        flush=True,
    )
    if gpus < 1:
        print("no GPU visible to faiss (faiss-cpu, or no device): nothing to check", file=sys.stderr)
        return 1
    failures: list[str] = []
    queries = clustered(args.queries, args.dim, 2000, seed=2)
    rows = [
        row
        for n in args.sizes.split(",")
        for row in check_size(int(n), args.dim, queries, args.nprobe, failures)
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"faiss": faiss.__version__, "rows": rows, "failures": failures}, indent=2)
    )
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    print("all GPU checks passed" if not failures else f"{len(failures)} GPU check(s) failed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
