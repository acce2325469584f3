"""The business judge: a MiniLM cross-encoder fine-tuned on the shop's own labelled pairs.

`synth judge train` writes versioned models under <state dir>/models/judge/<version>/ and points
CURRENT at the newest; this engine loads CURRENT (or TAILSYNTH_JUDGE_CROSS_ENCODER_MODEL). Its score
is sigmoid(slope * logit + intercept) with the Platt calibration fitted on held-out queries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from services.core.errors import ConfigError
from services.judge.engine import JudgeEngine, Pair, PairKind

MANIFEST = "manifest.json"
CURRENT = "CURRENT"
TRAIN_HINT = "train one with: synth judge train --labels FILE --catalog FILE"


def judge_models_root(models_dir: Path) -> Path:
    return models_dir / "judge"


def resolve_model_dir(models_dir: Path, configured: Path | None) -> Path:
    """The configured model directory, else the one CURRENT names; ConfigError says how to get one."""
    if configured is not None:
        if not (configured / MANIFEST).is_file():
            raise ConfigError(f"no cross-encoder model at {configured} (no {MANIFEST}); {TRAIN_HINT}")
        return configured
    root = judge_models_root(models_dir)
    pointer = root / CURRENT
    if not pointer.is_file():
        raise ConfigError(f"no trained cross-encoder under {root}; {TRAIN_HINT}")
    path = root / pointer.read_text().strip()
    if not (path / MANIFEST).is_file():
        raise ConfigError(f"{pointer} names {path.name}, which has no {MANIFEST}; {TRAIN_HINT}")
    return path


@dataclass
class LoadedModel:
    path: Path
    manifest: dict[str, Any]
    model: Any  # transformers AutoModelForSequenceClassification
    tokenizer: Any

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> LoadedModel:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        manifest = json.loads((path / MANIFEST).read_text())
        model = AutoModelForSequenceClassification.from_pretrained(str(path)).to(device).eval()
        return cls(path, manifest, model, AutoTokenizer.from_pretrained(str(path)))

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        slope, intercept = self.manifest.get("calibration", {}).get("platt", [1.0, 0.0])
        return np.asarray(1 / (1 + np.exp(-(slope * logits + intercept))))


def predict_logits(
    model: Any, tokenizer: Any, pairs: list[tuple[str, str]], max_length: int, batch_size: int
) -> np.ndarray:
    """Raw relevance logits for (query, text) pairs, in order. Batches are formed in order of length, so
    a batch is padded to about its own pairs' length rather than to the longest pair among random ones."""
    import torch

    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    logits = np.zeros(len(pairs), dtype=np.float32)
    device = next(model.parameters()).device
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            encoded = tokenizer(
                [pairs[i][0] for i in chunk],
                [pairs[i][1] for i in chunk],
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            ).to(device)
            logits[chunk] = model(**encoded).logits.reshape(-1).float().cpu().numpy()
    return logits


class CrossEncoderJudge(JudgeEngine):
    name = "cross_encoder"
    kinds = frozenset({PairKind.QUERY_PRODUCT})  # trained on query-product labels only
    loaded: LoadedModel | None = None

    def load(self) -> None:
        from services.core.encoder import resolve_device

        path = resolve_model_dir(self.settings.models_dir, self.settings.cross_encoder_model)
        self.loaded = LoadedModel.load(path, resolve_device(self.settings.device))

    @property
    def version(self) -> str:
        return f"cross_encoder:{self.loaded.version if self.loaded else 'unloaded'}"

    def provenance(self) -> dict[str, Any]:
        return dict(self.loaded.manifest.get("data", {})) if self.loaded else {}

    def score(self, pairs: list[Pair]) -> list[float]:
        assert self.loaded is not None, "load() first"
        logits = predict_logits(
            self.loaded.model,
            self.loaded.tokenizer,
            [(query, text) for query, text, _ in pairs],
            int(self.loaded.manifest["max_length"]),
            self.settings.encode_batch_size,
        )
        return [float(p) for p in self.loaded.probabilities(logits)]
