"""What an encoder backend is, and the registry that names them (loaded lazily: each backend imports its
own runtime, PyTorch or ONNX Runtime, only when chosen)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from services.core.registry import Registry

if TYPE_CHECKING:
    import numpy as np


class EncoderBackend(ABC):
    """Runs the model: texts -> L2-normalised float32 rows (non-finite rows are the caller's to catch)."""

    name: ClassVar[str]
    dim: int

    @classmethod
    @abstractmethod
    def load(cls, path: Path, device: str, batch_size: int, cache_dir: Path | None) -> EncoderBackend:
        """The backend for the sentence-transformers model at path (blocking)."""

    @abstractmethod
    def embed(self, texts: list[str]) -> np.ndarray: ...


BACKENDS: Registry[EncoderBackend] = Registry(
    "encoder backend",
    {
        "torch": "services.core.torch_encoder:TorchBackend",
        "onnx": "services.core.onnx_encoder:OnnxBackend",
    },
    extras={"torch": "encoder", "onnx": "encoder"},
)
