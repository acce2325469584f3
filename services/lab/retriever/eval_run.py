"""Runs `synth eval retrieval`: catalog + labels in, `retrieval.json` and recall@k curves (PNG) out."""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.core.catalog import load_catalog
from services.lab.labels import LabelSet
from services.lab.ranking import finite_json
from services.lab.retriever.eval_plot import plot_comparison, plot_curves, read_report, report_label
from services.lab.retriever.eval_rewrites import (
    check_services,
    rewrites_from_file,
    rewrites_from_service,
    write_rewrites,
)
from services.lab.retriever.evaluate import (
    NDCG_K,
    catalog_embeddings,
    evaluate_modes,
    labelled_queries,
    search_texts,
)
from services.pipeline.config import PipelineSettings
from services.pipeline.models import DEFAULT_NUM_REWRITES
from services.retriever.config import RetrieverSettings
from services.retriever.index import file_sha256
from services.retriever.model import open_encoder

METRIC_NOTES = {
    "recall@k": "relevant products in the top k / relevant products labelled for the query, mean over queries",
    "ndcg@10": "DCG of the top 10 with label grades in [0, 1] as gains (gain / log2(rank + 1)) over the DCG "
    "of the query's labelled products in grade order",
    "mrr": "1 / rank of the first relevant product within the searched depth (0 if none), mean over queries",
    "query": "the query's own exact top k over the whole catalog",
    "union": "the union of the query's top k and each rewrite's top k (more than k candidates; "
    "union_size@k is its mean size): recall@k of that union",
    "fused": "one list of k from the query's and the rewrites' hits, each product at its best score "
    "(the pipeline's merge rule): same budget as `query`",
}
MODES = ("query", "union", "fused")


@dataclass(frozen=True)
class RetrievalEvalConfig:
    catalog: Path
    ks: list[int]
    out_dir: Path
    model: Path | None = None
    rewrites: bool = False
    rewrites_file: Path | None = None
    num_rewrites: int = DEFAULT_NUM_REWRITES
    judge_rewrites: bool = False
    compare: Path | None = None


@dataclass
class RetrievalReport:
    data: dict[str, Any]
    json_path: Path
    plot_path: Path
    compare_path: Path | None = None

    def table(self) -> str:
        ks = self.data["k"]
        head = ["mode", *[f"recall@{k}" for k in ks], f"nDCG@{NDCG_K}", "MRR", "queries"]
        rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for mode, metrics in self.data["metrics"].items():
            cells = [mode, *[_f(metrics.get(f"recall@{k}")) for k in ks]]
            cells += [_f(metrics.get(f"ndcg@{NDCG_K}")), _f(metrics.get("mrr")), str(metrics["queries"])]
            rows.append("| " + " | ".join(cells) + " |")
        return "\n".join(rows)


def _f(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3f}"


def run_retrieval_eval(
    labels: LabelSet, config: RetrievalEvalConfig, settings: RetrieverSettings, pipeline: PipelineSettings
) -> RetrievalReport:
    began = time.monotonic()
    timings: dict[str, float] = {}
    if config.compare is not None:
        other = read_report(config.compare)  # fail before the long work, not after it
    if config.rewrites and config.rewrites_file is None:
        check_services(pipeline, config.num_rewrites, config.judge_rewrites)
    products = load_catalog(config.catalog)
    catalog_sha = file_sha256(config.catalog)
    found = labelled_queries(labels, products)
    queries = found.queries
    print(f"{len(queries)} queries with a relevant product in {len(products)} products", file=sys.stderr)

    step = time.monotonic()
    # The retriever's device, backend and ONNX cache; the packaged MiniLM unless --model names a dir
    # (TAILSYNTH_RETRIEVER_MODEL_DIR is ignored here, so "base" always means the packaged model).
    encoder = open_encoder(settings.model_copy(update={"model_dir": None}), config.model)
    timings["load_encoder_s"] = time.monotonic() - step
    step = time.monotonic()
    vectors, cached = catalog_embeddings(
        encoder, products, catalog_sha, settings.state_dir / "eval-embeddings"
    )
    timings["encode_catalog_s"] = time.monotonic() - step
    ids = [p.id for p in products]
    depth = max(max(config.ks), NDCG_K)
    texts = [q.text for q in queries]
    query_hits, timings["search_queries_s"] = search_texts(encoder, texts, vectors, ids, depth, "queries")

    rewrites: list[list[str]] | None = None
    rewrite_source: dict[str, Any] = {}
    if config.rewrites_file is not None:
        rewrites, missing = rewrites_from_file(config.rewrites_file, texts)
        rewrite_source = {"file": str(config.rewrites_file), "queries_without_rewrites": missing}
    elif config.rewrites:
        titles = {p.id: p.title for p in products}
        feedback = [[titles[pid] for pid, _ in hits[: pipeline.feedback_titles]] for hits in query_hits]
        step = time.monotonic()
        rewrites = rewrites_from_service(
            pipeline, texts, feedback, config.num_rewrites, config.judge_rewrites
        )
        timings["rewrite_s"] = time.monotonic() - step
        rewrite_source = {
            "rewriter": pipeline.rewriter_target,
            "num_rewrites": config.num_rewrites,
            "judged": config.judge_rewrites,
            "feedback_titles": pipeline.feedback_titles,
        }
    rewrite_hits = None
    if rewrites is not None:
        flat = [text for group in rewrites for text in group]
        hits, timings["search_rewrites_s"] = search_texts(encoder, flat, vectors, ids, depth, "rewrites")
        rewrite_hits, start = [], 0
        for group in rewrites:
            rewrite_hits.append(hits[start : start + len(group)])
            start += len(group)

    metrics, curves = evaluate_modes(queries, query_hits, rewrite_hits, config.ks)
    timings["total_s"] = time.monotonic() - began
    label = config.model.name if config.model is not None else "all-MiniLM-L6-v2"
    data: dict[str, Any] = {
        "dataset": {
            "catalog": config.catalog.name,
            "catalog_sha256": catalog_sha,
            "products": len(products),
            "labels": labels.path.name,
            "labels_sha256": labels.sha256,
            "scale": labels.scale.name,
        },
        "model": {
            "label": label,
            "path": str(encoder.path.resolve()) if config.model is not None else "packaged all-MiniLM-L6-v2",
            "fingerprint": encoder.fingerprint,
            "backend": encoder.backend.name,
        },
        "min_grade": labels.scale.relevant_at,
        "k": config.ks,
        "counts": found.counts,
        "metrics": metrics,
        "definitions": {k: v for k, v in METRIC_NOTES.items() if k not in MODES or k in metrics},
        "curves": curves,
        "embeddings_cached": cached,
        "timings": {k: round(v, 2) for k, v in timings.items()},
    }
    if rewrites is not None:
        data["rewrites"] = {
            "source": rewrite_source,
            "per_query": [{"query": q, "rewrites": r} for q, r in zip(texts, rewrites, strict=True)],
        }
    config.out_dir.mkdir(parents=True, exist_ok=True)
    json_path = config.out_dir / "retrieval.json"
    json_path.write_text(json.dumps(finite_json(data), indent=2, ensure_ascii=False) + "\n")
    if rewrites is not None:
        write_rewrites(config.out_dir / "rewrites.jsonl", texts, rewrites)
    plot_path = config.out_dir / "retrieval-recall.png"
    plot_curves(curves, plot_path, f"{labels.path.name}: {label}, {len(queries)} queries")
    report = RetrievalReport(data, json_path, plot_path)
    if config.compare is not None:
        report.compare_path = config.out_dir / "retrieval-compare.png"
        plot_comparison([(report_label(other, "other"), other), (label, data)], report.compare_path)
    return report
