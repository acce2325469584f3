"""make bench-retriever: FAISS index types against exact search, and the retriever service end to end.

For clustered synthetic vectors (100k and 1M x 384 by default) and, where the data is present, the Home
Depot catalog encoded with MiniLM: build time, index size, q/s at batch 1 and 64 and recall@10 against
Flat, for every index type through the same code the service runs (services/retriever/index_types.py).
Each approximate index is swept over its search knob (efSearch, nprobe); the report's operating point is
the fastest setting with recall@10 >= 0.99. Then a real retriever gRPC server answers one-text Search
calls at concurrency 1, 16 and 64. Writes reports/bench-retriever.md and .json.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from services.retriever.index_types import (
    IndexSpec,
    SearchParams,
    add_vectors,
    new_index,
    resolve_spec,
    search_index,
)

ROOT = Path(__file__).resolve().parents[1]
K = 10
TARGET_RECALL = 0.99
TARGET_SPEEDUP = 20.0
SWEEPS: dict[str, tuple[str, list[int]]] = {
    "hnsw": ("ef_search", [16, 32, 64, 128, 256, 512]),
    "ivf_flat": ("nprobe", [1, 4, 8, 16, 32, 64, 128, 256]),
    "ivf_pq": ("nprobe", [4, 16, 64, 256]),
}


@dataclass
class Point:
    knob: str
    value: int
    recall: float
    qps_b64: float
    qps_b1: float = 0.0


@dataclass
class IndexResult:
    kind: str
    params: dict[str, Any]
    build_s: float
    size_mib: float
    sweep: list[Point] = field(default_factory=list)
    chosen: Point | None = None
    exact_qps_b1: float = 0.0  # Flat timed right beside the chosen point, on the same queries
    exact_qps_b64: float = 0.0


def clustered(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    """Normalised vectors around shared random centres (ANN recall is meaningless on i.i.d. noise)."""
    centres = np.random.default_rng(0).normal(size=(clusters, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):  # chunks keep the float64 temporaries small at 1M
        m = min(100_000, n - start)
        block = centres[rng.integers(0, clusters, m)] + 0.3 * rng.standard_normal((m, dim), dtype=np.float32)
        out[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def timed_search(
    index: faiss.Index, kind: str, queries: np.ndarray, batch: int, params: SearchParams, nlist: int
) -> tuple[float, np.ndarray]:
    """(queries per second, labels) searching `batch` queries per call."""
    labels = np.empty((len(queries), K), dtype=np.int64)
    started = time.perf_counter()
    for start in range(0, len(queries), batch):
        _, found = search_index(index, kind, queries[start : start + batch], K, params, nlist)
        labels[start : start + batch] = found
    return len(queries) / (time.perf_counter() - started), labels


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found, exact, strict=True)]))


def size_mib(index: faiss.Index) -> float:
    return float(faiss.serialize_index(index).nbytes) / 2**20


def build(spec: IndexSpec, vectors: np.ndarray) -> tuple[faiss.Index, IndexSpec, float]:
    spec = resolve_spec(spec, len(vectors), vectors.shape[1])
    started = time.perf_counter()
    index = new_index(spec, vectors.shape[1], vectors if spec.is_ivf else None)
    add_vectors(index, spec.kind, vectors, np.arange(len(vectors), dtype=np.int64))
    return index, spec, time.perf_counter() - started


def bench_flat(
    vectors: np.ndarray, queries: np.ndarray, batch1: int
) -> tuple[IndexResult, faiss.Index, np.ndarray]:
    """The exact reference: its labels are the ground truth for recall."""
    index, spec, build_s = build(IndexSpec("flat"), vectors)
    result = IndexResult("flat", asdict(spec), build_s, size_mib(index))
    qps, labels = timed_search(index, "flat", queries, 64, SearchParams(), 0)
    point = Point("exact", 0, 1.0, qps)
    point.qps_b1, _ = timed_search(index, "flat", queries[:batch1], 1, SearchParams(), 0)
    result.sweep, result.chosen = [point], point
    result.exact_qps_b1, result.exact_qps_b64 = point.qps_b1, point.qps_b64
    print(f"  flat: {point.qps_b1:.1f} q/s at batch 1, {qps:.1f} at batch 64", flush=True)
    return result, index, labels


def bench_index(
    spec: IndexSpec,
    vectors: np.ndarray,
    queries: np.ndarray,
    exact: np.ndarray,
    flat: faiss.Index,
    batch1: int,
    flat_batch1: int,
) -> IndexResult:
    """Build one index, sweep its knob, then time the chosen point and Flat side by side (same queries,
    same minute), so the speed-up is not skewed by whatever else the machine did in between."""
    index, spec, build_s = build(spec, vectors)
    result = IndexResult(spec.kind, asdict(spec), build_s, size_mib(index))
    print(f"  {spec.kind}: built in {result.build_s:.1f}s, {result.size_mib:.0f} MiB", flush=True)
    knob, values = SWEEPS[spec.kind]
    for value in values:
        if knob == "nprobe" and value > spec.nlist:
            break
        params = SearchParams(**{knob: value})
        qps, labels = timed_search(index, spec.kind, queries, 64, params, spec.nlist)
        result.sweep.append(Point(knob, value, recall_at_k(labels, exact), qps))
        print(f"    {knob}={value}: recall@10 {result.sweep[-1].recall:.4f}, {qps:.0f} q/s", flush=True)
        if result.sweep[-1].recall >= 0.999:
            break
    good = [p for p in result.sweep if p.recall >= TARGET_RECALL]
    result.chosen = max(good, key=lambda p: p.qps_b64) if good else max(result.sweep, key=lambda p: p.recall)
    chosen_params = SearchParams(**{knob: result.chosen.value})
    paired = queries[: max(64, min(len(queries), 256))]
    result.chosen.qps_b64, _ = timed_search(index, spec.kind, paired, 64, chosen_params, spec.nlist)
    result.exact_qps_b64, _ = timed_search(flat, "flat", paired, 64, SearchParams(), 0)
    result.chosen.qps_b1, _ = timed_search(index, spec.kind, queries[:batch1], 1, chosen_params, spec.nlist)
    result.exact_qps_b1, _ = timed_search(flat, "flat", queries[:flat_batch1], 1, SearchParams(), 0)
    return result


def bench_vectors(
    name: str, vectors: np.ndarray, queries: np.ndarray, kinds: list[str], batch1: int, hnsw_ef: int
) -> dict[str, Any]:
    print(f"{name}: {len(vectors)} x {vectors.shape[1]}, {len(queries)} queries", flush=True)
    flat_batch1 = max(10, batch1 // 10)
    flat_result, flat, exact = bench_flat(vectors, queries, flat_batch1)
    results = [flat_result]
    for kind in kinds:
        spec = IndexSpec(kind, ef_construction=hnsw_ef)
        results.append(bench_index(spec, vectors, queries, exact, flat, batch1, flat_batch1))
    return {"name": name, "count": len(vectors), "dim": int(vectors.shape[1]), "indexes": results}


def home_depot(data_dir: Path, queries: int) -> tuple[Path, list[str]] | None:
    catalog, labels = data_dir / "home_depot" / "products.csv", data_dir / "home_depot" / "dev_labels.csv"
    if not (catalog.is_file() and labels.is_file()):
        return None
    with labels.open(newline="", encoding="utf-8", errors="replace") as handle:
        terms = list(dict.fromkeys(row["search_term"].strip() for row in csv.DictReader(handle)))
    return catalog, [t for t in terms if t][:queries]


def encode_catalog(catalog: Path, texts: list[str], index_dir: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """Encode the catalog and the queries with the service's encoder; save the service's index."""
    from services.core.catalog import load_catalog
    from services.core.encoder import Encoder
    from services.retriever.build import spec_for
    from services.retriever.config import RetrieverSettings
    from services.retriever.index import build_index, file_sha256, save_index

    settings = RetrieverSettings(index_dir=index_dir)
    encoder = Encoder(backend=settings.encoder_backend, cache_dir=settings.models_dir)
    products = load_catalog(catalog)
    started = time.perf_counter()
    vectors = encoder.encode([p.text() for p in products])
    print(f"  encoded {len(products)} products in {time.perf_counter() - started:.0f}s", flush=True)
    built = build_index(
        products, vectors, spec_for(settings, len(products)), encoder.fingerprint, file_sha256(catalog)
    )
    save_index(built, index_dir)
    return vectors, encoder.encode(texts), built.kind


async def grpc_load(port: int, texts: list[str], concurrency: int, requests: int) -> dict[str, float]:
    import grpc

    from services.gen.synth.v1 import retriever_pb2, retriever_pb2_grpc

    latencies: list[float] = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = retriever_pb2_grpc.RetrieverStub(channel)
        counter = iter(range(requests))

        async def user() -> None:
            for i in counter:
                started = time.perf_counter()
                await stub.Search(
                    retriever_pb2.SearchRequest(texts=[texts[i % len(texts)]], top_k=K), timeout=60
                )
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "qps": len(latencies) / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
    }


def end_to_end(index_dir: Path, texts: list[str], levels: list[int], requests: int) -> list[dict[str, float]]:
    """A real retriever server (its default settings) on this index, loaded at each concurrency."""
    from services.core.redis_server import free_port

    port = free_port()
    env = {
        **os.environ,
        "TAILSYNTH_RETRIEVER_INDEX_DIR": str(index_dir),
        "TAILSYNTH_RETRIEVER_BIND": f"127.0.0.1:{port}",
        "TAILSYNTH_RETRIEVER_RELOAD_INTERVAL_S": "0",
    }
    server = subprocess.Popen([sys.executable, "-m", "services.retriever"], env=env, cwd=ROOT)
    try:
        wait_serving(port, server)
        asyncio.run(grpc_load(port, texts, 4, 64))  # warm-up
        rows = []
        for level in levels:
            rows.append(asyncio.run(grpc_load(port, texts, level, max(requests, 4 * level))))
            print(f"  gRPC c{level}: {rows[-1]['qps']:.0f} q/s, p50 {rows[-1]['p50_ms']:.1f} ms", flush=True)
        return rows
    finally:
        server.terminate()
        server.wait(30)


def wait_serving(port: int, server: subprocess.Popen[bytes], timeout_s: float = 300) -> None:
    from services.core.health import NotServing
    from services.core.health import wait_serving as wait

    try:
        wait(f"127.0.0.1:{port}", timeout_s, process=server, interval_s=1, what="the retriever")
    except NotServing as error:
        raise SystemExit(str(error)) from None


def dataset_table(data: dict[str, Any]) -> list[str]:
    lines = [
        f"### {data['name']}: {data['count']:,} x {data['dim']}",
        "",
        "| index | search setting | build s | size MiB | recall@10 | q/s batch 1 | q/s batch 64 "
        "| exact q/s beside it (b1 / b64) | x exact (b1) | x exact (b64) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in data["indexes"]:
        p = result.chosen
        setting = "exact" if p.knob == "exact" else f"{p.knob}={p.value}"
        lines.append(
            f"| {result.kind} | {setting} | {result.build_s:.1f} | {result.size_mib:.0f} | {p.recall:.4f} "
            f"| {p.qps_b1:.0f} | {p.qps_b64:.0f} | {result.exact_qps_b1:.1f} / {result.exact_qps_b64:.1f} "
            f"| {p.qps_b1 / result.exact_qps_b1:.1f} | {p.qps_b64 / result.exact_qps_b64:.1f} |"
        )
    sweeps = [
        f"{r.kind}: " + ", ".join(f"{p.knob}={p.value} {p.recall:.3f}/{p.qps_b64:.0f}" for p in r.sweep)
        for r in data["indexes"][1:]
    ]
    lines += ["", "Sweeps (recall@10 / q/s at batch 64): " + "; ".join(sweeps), ""]
    return lines


def verdict(datasets: list[dict[str, Any]]) -> str:
    largest = max(datasets, key=lambda d: d["count"] if d["name"].startswith("synthetic") else -1)
    best = max(
        (r for r in largest["indexes"][1:] if r.chosen.recall >= TARGET_RECALL),
        key=lambda r: r.chosen.qps_b64 / r.exact_qps_b64,
        default=None,
    )
    if best is None:
        return f"Target (>= {TARGET_SPEEDUP:.0f}x exact q/s at recall@10 >= {TARGET_RECALL}): no index reached the recall."
    ratio = best.chosen.qps_b64 / best.exact_qps_b64
    met = "met" if ratio >= TARGET_SPEEDUP else "missed"
    return (
        f"Target on {largest['name']} ({largest['count']:,}): >= {TARGET_SPEEDUP:.0f}x exact q/s at recall@10 >= "
        f"{TARGET_RECALL}: {best.kind} at {best.chosen.knob}={best.chosen.value} gives {ratio:.1f}x at batch 64 "
        f"({best.chosen.qps_b1 / best.exact_qps_b1:.1f}x at batch 1), recall {best.chosen.recall:.4f}: **{met}**."
    )


def write_report(
    out: Path, datasets: list[dict[str, Any]], grpc_rows: list[dict[str, float]], meta: dict[str, Any]
) -> None:
    lines = [
        "# Retriever benchmark",
        "",
        f"{meta['cpus']} CPUs, faiss {faiss.__version__} ({faiss.omp_get_max_threads()} threads), "
        f"Python {platform.python_version()}; {meta['queries']} queries, recall@10 against Flat; "
        f"batch-1 q/s over {meta['batch1']} queries (Flat: a tenth); each speed-up is against Flat timed right "
        f"beside it on the same queries. {verdict(datasets)}",
        "",
    ]
    for data in datasets:
        lines += dataset_table(data)
    if grpc_rows:
        lines += [
            f"### End to end: retriever gRPC Search, one text per call, top_k {K} ({meta['grpc_index']})",
            "",
            "| concurrency | requests | q/s | p50 ms | p99 ms |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['concurrency']} | {r['requests']} | {r['qps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |"
            for r in grpc_rows
        ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    raw = {"meta": meta, "datasets": [{**d, "indexes": [asdict(r) for r in d["indexes"]]} for d in datasets]}
    out.with_suffix(".json").write_text(json.dumps({**raw, "grpc": grpc_rows}, indent=2))
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="synthetic catalog sizes, comma-separated")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--clusters", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--batch1", type=int, default=200, help="queries timed one at a time (Flat: a tenth)")
    parser.add_argument("--kinds", default="hnsw,ivf_flat,ivf_pq")
    parser.add_argument("--hnsw-ef-construction", type=int, default=200)
    parser.add_argument("--hnsw-max", type=int, default=1_000_000, help="skip HNSW above this many vectors")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--grpc-levels", default="1,16,64")
    parser.add_argument("--grpc-requests", type=int, default=512)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench-retriever.md")
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    datasets = []
    for n in (int(s) for s in args.sizes.split(",") if s):
        vectors = clustered(n, args.dim, args.clusters, seed=1)
        queries = clustered(args.queries, args.dim, args.clusters, seed=2)
        chosen = [k for k in kinds if k != "hnsw" or n <= args.hnsw_max]
        datasets.append(
            bench_vectors(
                f"synthetic {n:,}", vectors, queries, chosen, args.batch1, args.hnsw_ef_construction
            )
        )
        del vectors
    grpc_rows: list[dict[str, float]] = []
    grpc_index = ""
    found = home_depot(args.data_dir, args.queries)
    with tempfile.TemporaryDirectory(prefix="bench-retriever-") as tmp:
        if found is None:
            print(f"no Home Depot data under {args.data_dir}: skipping the real catalog", flush=True)
        else:
            catalog, texts = found
            print("Home Depot catalog", flush=True)
            vectors, queries, grpc_index = encode_catalog(catalog, texts, Path(tmp))
            datasets.append(
                bench_vectors(
                    "Home Depot (MiniLM)", vectors, queries, kinds, args.batch1, args.hnsw_ef_construction
                )
            )
            levels = [int(c) for c in args.grpc_levels.split(",") if c]
            grpc_rows = end_to_end(Path(tmp), texts, levels, args.grpc_requests)
    meta = {"cpus": os.cpu_count(), "queries": args.queries, "batch1": args.batch1, "grpc_index": grpc_index}
    write_report(args.out, datasets, grpc_rows, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
