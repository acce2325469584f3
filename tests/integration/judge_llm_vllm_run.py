"""Runs the llm judge on its vllm backend (from .venv-vllm) for the pairs on stdin; prints one JSON line.

stdin: {"model_dir": ..., "pairs": [[query, text, kind value], ...]}
stdout (last line): {"version", "distributions", "scores", "score_s"}
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from services.judge.config import JudgeSettings
from services.judge.engine import PairKind
from services.judge.engines.llm import LLMJudge


def main() -> None:
    request = json.load(sys.stdin)
    settings = JudgeSettings(
        engines="llm", llm_backend="vllm", llm_model_dir=Path(request["model_dir"]), llm_batch_size=64
    )
    judge = LLMJudge(settings)
    judge.load()
    try:
        pairs = [(q, t, PairKind(kind)) for q, t, kind in request["pairs"]]
        judge.distributions(pairs[:8])  # warm-up: the first batch pays one-off engine costs
        started = time.perf_counter()
        distributions = judge.distributions(pairs)
        elapsed = time.perf_counter() - started
        scores = judge.calibrated(pairs, distributions)
        print(
            json.dumps(
                {
                    "version": judge.version,
                    "distributions": [d.tolist() for d in distributions],
                    "scores": scores,
                    "score_s": elapsed,
                }
            ),
            flush=True,
        )
    finally:
        judge.close()


if __name__ == "__main__":  # vLLM spawns its engine core: the guard keeps the child from re-running this
    main()
