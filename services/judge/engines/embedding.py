"""MiniLM cosine similarity, Platt-calibrated into P(relevant)."""

from __future__ import annotations

import numpy as np

from services.core.encoder import Encoder
from services.judge.engine import JudgeEngine, PairKind


class EmbeddingJudge(JudgeEngine):
    name = "embedding"
    encoder: Encoder | None = None

    def load(self) -> None:
        s = self.settings
        self.encoder = Encoder(
            device=s.device, batch_size=s.encode_batch_size, backend=s.encoder_backend, cache_dir=s.models_dir
        )

    @property
    def version(self) -> str:
        fingerprint = self.encoder.fingerprint if self.encoder else "unloaded"
        s = self.settings
        return f"embedding:{fingerprint}:platt({s.calibration_slope},{s.calibration_intercept})"

    def score(self, pairs: list[tuple[str, str, PairKind]]) -> list[float]:
        assert self.encoder is not None, "load() first"
        texts = sorted({t for query, text, _ in pairs for t in (query, text)})
        position = {t: i for i, t in enumerate(texts)}
        vectors = self.encoder.encode(texts)
        left = vectors[[position[q] for q, _, _ in pairs]]
        right = vectors[[position[t] for _, t, _ in pairs]]
        cosine = np.einsum("ij,ij->i", left, right)
        logits = self.settings.calibration_slope * cosine + self.settings.calibration_intercept
        return [float(p) for p in 1.0 / (1.0 + np.exp(-logits))]
