"""MiniLM cosine similarity, Platt-calibrated into P(relevant).

The same products come back for many queries, so the embeddings of recently seen texts are kept
(least recently used dropped first); only new texts are encoded.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from services.core.encoder import Encoder
from services.judge.engine import JudgeEngine, PairKind


class EmbeddingJudge(JudgeEngine):
    name = "embedding"
    encoder: Encoder | None = None
    embeddings: OrderedDict[str, np.ndarray]

    def load(self) -> None:
        self.embeddings = OrderedDict()
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
        vectors = self.embed({t for query, text, _ in pairs for t in (query, text)})
        left = np.stack([vectors[q] for q, _, _ in pairs])
        right = np.stack([vectors[t] for _, t, _ in pairs])
        cosine = np.einsum("ij,ij->i", left, right)
        logits = self.settings.calibration_slope * cosine + self.settings.calibration_intercept
        return [float(p) for p in 1.0 / (1.0 + np.exp(-logits))]

    def embed(self, texts: set[str]) -> dict[str, np.ndarray]:
        """Each text's embedding: kept ones from memory, the others encoded in one batch."""
        assert self.encoder is not None, "load() first"
        kept, size = self.embeddings, self.settings.embedding_cache_size
        found = {t: kept[t] for t in texts if t in kept}
        for text in found:
            kept.move_to_end(text)
        missing = sorted(texts - found.keys())
        if missing:
            for text, vector in zip(missing, self.encoder.encode(missing), strict=True):
                found[text] = vector
                if size:
                    kept[text] = vector
            while len(kept) > size:
                kept.popitem(last=False)
        return found
