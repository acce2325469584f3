"""Test data for index tests: clustered vectors (ANN recall is meaningless on i.i.d. noise) and products."""

from __future__ import annotations

import numpy as np

from services.core.catalog import Product


def clustered(n: int, dim: int = 32, clusters: int = 20, seed: int = 0) -> np.ndarray:
    """Normalised vectors around random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    vectors = centres[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def products(n: int) -> list[Product]:
    return [Product(id=f"P{i}", title=f"product {i}") for i in range(n)]
