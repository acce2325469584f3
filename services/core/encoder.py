"""Sentence encoder (all-MiniLM-L6-v2 by default) shared by the retriever and the embedding judge."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from services.core.assets import fingerprint, minilm_path
from services.core.errors import InvalidInput

log = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Encoder:
    """Normalised float32 embeddings; cosine similarity is an inner product."""

    def __init__(self, path: Path | None = None, device: str = "auto", batch_size: int = 64) -> None:
        from sentence_transformers import SentenceTransformer

        self.path = path or minilm_path()
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.model = SentenceTransformer(str(self.path), device=self.device)
        dim = self.model.get_embedding_dimension()
        if not dim:
            raise InvalidInput(f"model at {self.path} does not report an embedding dimension")
        self.dim = int(dim)
        self.fingerprint = f"{self.path.name}:{fingerprint(self.path)}"
        log.info("encoder %s (dim %d) on %s", self.fingerprint, self.dim, self.device)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32, copy=False)
        bad = ~np.isfinite(vectors).all(axis=1)
        if bad.any():
            raise InvalidInput(
                f"text #{int(np.flatnonzero(bad)[0])} could not be encoded (non-finite embedding)"
            )
        return vectors
