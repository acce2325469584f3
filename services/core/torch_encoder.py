"""PyTorch backend for the sentence encoder, through sentence-transformers (CPU or GPU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sentence_transformers import SentenceTransformer

from services.core.encoder_backend import EncoderBackend
from services.core.errors import ConfigError


class TorchBackend(EncoderBackend):
    name = "torch"

    def __init__(self, model: SentenceTransformer, batch_size: int) -> None:
        self.model = model
        self.batch_size = batch_size
        dim = model.get_embedding_dimension()
        if not dim:
            raise ConfigError("the encoder model does not report an embedding dimension")
        self.dim = int(dim)

    @classmethod
    def load(cls, path: Path, device: str, batch_size: int, cache_dir: Path | None) -> TorchBackend:
        return cls(SentenceTransformer(str(path), device=device), batch_size)

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors: np.ndarray = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.astype(np.float32, copy=False)
