"""Sentence encoder (all-MiniLM-L6-v2 by default) shared by the retriever and the embedding judge.

Two backends run the same weights: PyTorch through sentence-transformers, and ONNX Runtime on a graph
exported from those weights on first use (services/core/onnx_encoder.py). `auto` picks ONNX Runtime
on CPU, where benchmarks/encoder_bench.py measured it faster, and PyTorch on a GPU or when the caller
gives no cache dir for the exported graph.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np

from services.core.assets import fingerprint, minilm_path
from services.core.encoder_backend import BACKENDS, EncoderBackend
from services.core.errors import ConfigError, InvalidInput

log = logging.getLogger(__name__)

CHOICES = ("auto", *BACKENDS.names())


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_backend(backend: str, device: str, cache_dir: Path | None) -> str:
    """auto: ONNX Runtime on CPU when there is a cache dir to keep the exported graph in (exporting
    costs more than a process start saves without one), PyTorch otherwise."""
    if backend not in CHOICES:
        raise ConfigError(f"unknown encoder backend {backend!r}; expected one of {', '.join(CHOICES)}")
    if backend != "auto":
        return backend
    if device == "cpu" and cache_dir is not None and importlib.util.find_spec("onnxruntime") is not None:
        return "onnx"
    return "torch"


def load_backend(
    name: str, path: Path, device: str, batch_size: int, cache_dir: Path | None
) -> EncoderBackend:
    return BACKENDS.get(name).load(path, device, batch_size, cache_dir)


class Encoder:
    """Normalised float32 embeddings; cosine similarity is an inner product."""

    def __init__(
        self,
        path: Path | None = None,
        device: str = "auto",
        batch_size: int = 64,
        backend: str = "auto",
        cache_dir: Path | None = None,
    ) -> None:
        self.path = path or minilm_path()
        self.device = resolve_device(device)
        self.batch_size = batch_size
        # One fingerprint for both backends: they run the same weights, and an ONNX graph is only ever
        # used after it reproduced PyTorch's embeddings (cosine >= 0.999 per text, checked at export),
        # so an index built with either backend is valid for the other.
        self.fingerprint = f"{self.path.name}:{fingerprint(self.path)}"
        chosen = resolve_backend(backend, self.device, cache_dir)
        try:
            self.backend = load_backend(chosen, self.path, self.device, batch_size, cache_dir)
        except (ConfigError, ImportError, OSError) as error:  # OSError: cache dir not writable
            if backend != "auto" or chosen == "torch":
                raise
            log.warning("onnx encoder backend unavailable (%s); using torch", error)
            self.backend = load_backend("torch", self.path, self.device, batch_size, cache_dir)
        self.dim = self.backend.dim
        log.info(
            "encoder %s (dim %d) on %s via %s", self.fingerprint, self.dim, self.device, self.backend.name
        )

    @classmethod
    def from_backend(cls, backend: EncoderBackend, fingerprint: str, device: str = "cpu") -> Encoder:
        """An encoder around an already loaded backend (no weights are located or hashed)."""
        encoder = cls.__new__(cls)
        encoder.path = Path(fingerprint)
        encoder.device = device
        encoder.batch_size = 0
        encoder.fingerprint = fingerprint
        encoder.backend = backend
        encoder.dim = backend.dim
        return encoder

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self.backend.embed(texts)
        bad = ~np.isfinite(vectors).all(axis=1)
        if bad.any():
            raise InvalidInput(
                f"text #{int(np.flatnonzero(bad)[0])} could not be encoded (non-finite embedding)"
            )
        return vectors
