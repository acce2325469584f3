"""LLM judge: the next-token log-probabilities of graded labels, read (never generated) and calibrated.

For each pair the kind's prompt (judge/prompts/*.toml) is rendered and the model's distribution over the
prompt's single-token labels is read; softmax over the labels, expected grade in [0, 1], then Platt
scaling per kind. No free text is parsed. Runtimes come from services.core.llm (shared with the rewriter):
hf batches left-padded prompts into one forward pass; vllm restricts one generated token to the labels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from services.core.assets import smollm2_hf_dir
from services.core.llm.labels import label_token_ids
from services.judge.engine import JudgeEngine, Pair, PairKind
from services.judge.prompts import JudgePrompt, load_judge_prompt

log = logging.getLogger(__name__)

# Longest prompt + label the vllm backend accepts; the servicer cuts judged texts to 2,000 characters.
VLLM_MAX_MODEL_LEN = 2048

LabelScorer = Callable[[list[str], list[int]], np.ndarray]


def label_distribution(logprobs: np.ndarray) -> np.ndarray:
    """Softmax over the label axis: P(label | the answer is one of the labels)."""
    shifted = logprobs - logprobs.max(axis=-1, keepdims=True)
    weights = np.exp(shifted)
    distribution: np.ndarray = weights / weights.sum(axis=-1, keepdims=True)
    return distribution


def expected_grade(distribution: np.ndarray, grades: tuple[float, ...]) -> np.ndarray:
    grade: np.ndarray = distribution @ np.asarray(grades, dtype=np.float64)
    return grade


def platt(raw: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    calibrated: np.ndarray = 1.0 / (1.0 + np.exp(-(slope * raw + intercept)))
    return calibrated


class LLMJudge(JudgeEngine):
    name = "llm"
    kinds: ClassVar[frozenset[PairKind]] = frozenset({PairKind.QUERY_PRODUCT, PairKind.QUERY_REWRITE})
    runtime: Any = None
    _runtime_version = "unloaded"

    def load(self) -> None:
        s = self.settings
        self.prompts: dict[PairKind, JudgePrompt] = {
            PairKind.QUERY_PRODUCT: load_judge_prompt(s.llm_product_prompt),
            PairKind.QUERY_REWRITE: load_judge_prompt(s.llm_rewrite_prompt),
        }
        self.calibration = {
            PairKind.QUERY_PRODUCT: (s.llm_product_slope, s.llm_product_intercept),
            PairKind.QUERY_REWRITE: (s.llm_rewrite_slope, s.llm_rewrite_intercept),
        }
        path = s.llm_model_dir or smollm2_hf_dir(s.models_dir)
        tokenizer, self._scorer = self._start_runtime(path)
        self.label_ids = {
            kind: label_token_ids(tokenizer, list(prompt.labels), f"judge prompt {prompt.version}")
            for kind, prompt in self.prompts.items()
        }
        self._runtime_version = self.runtime.version
        log.info("llm judge %s", self.version)

    def _start_runtime(self, path: Any) -> tuple[Any, LabelScorer]:
        s = self.settings
        if s.llm_backend == "vllm":
            from services.core.llm.vllm import SyncVLLM, VLLMOptions

            options = VLLMOptions(
                device=s.device,
                dtype=s.llm_vllm_dtype,
                max_model_len=VLLM_MAX_MODEL_LEN,
                max_num_seqs=s.llm_batch_size,
                logprobs_mode="processed_logprobs",
            )
            vllm_runtime = SyncVLLM(path, options, "the llm judge's vllm backend")
            self.runtime = vllm_runtime
            return vllm_runtime.tokenizer, vllm_runtime.label_logprobs
        from services.core.llm.hf import HFRuntime

        hf_runtime = HFRuntime(path, s.device)
        self.runtime = hf_runtime
        batch = s.llm_batch_size
        return hf_runtime.tokenizer, lambda prompts, ids: hf_runtime.label_logprobs(prompts, ids, batch)

    @property
    def version(self) -> str:
        if self.runtime is None:
            return "llm:unloaded"
        parts = [f"llm:{self.settings.llm_backend}:{self._runtime_version}"]
        for kind, prompt in self.prompts.items():
            slope, intercept = self.calibration[kind]
            parts.append(f"{prompt.version}:platt({slope},{intercept})")
        return "|".join(parts)

    def distributions(self, pairs: list[Pair]) -> list[np.ndarray]:
        """Each pair's distribution over its prompt's labels (one batch per kind)."""
        assert self.runtime is not None, "load() first"
        out: list[np.ndarray] = [np.empty(0)] * len(pairs)
        for kind, prompt in self.prompts.items():
            positions = [i for i, (_, _, k) in enumerate(pairs) if k is kind]
            if not positions:
                continue
            texts = [prompt.render(pairs[i][0], pairs[i][1]) for i in positions]
            distribution = label_distribution(self._scorer(texts, self.label_ids[kind]))
            for i, row in zip(positions, distribution, strict=True):
                out[i] = row
        return out

    def score(self, pairs: list[Pair]) -> list[float]:
        return self.calibrated(pairs, self.distributions(pairs))

    def calibrated(self, pairs: list[Pair], distributions: list[np.ndarray]) -> list[float]:
        """Expected grade under each pair's label distribution, Platt-scaled for its kind."""
        scores = []
        for (_, _, kind), distribution in zip(pairs, distributions, strict=True):
            raw = expected_grade(distribution, self.prompts[kind].grades)
            slope, intercept = self.calibration[kind]
            scores.append(float(platt(raw, slope, intercept)))
        return scores

    def close(self) -> None:
        runtime, self.runtime = self.runtime, None
        if runtime is not None and hasattr(runtime, "close"):
            runtime.close()
