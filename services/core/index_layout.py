"""Where index versions live under an index root: the CURRENT pointer and each version's products.

The retriever writes and serves these versions (services/retriever/index.py documents the whole
layout); the rewriter's catalog engine reads the current version's products without loading FAISS.
"""

from __future__ import annotations

from pathlib import Path

from services.core.errors import ConfigError

CURRENT = "CURRENT"
PRODUCTS_FILE = "products.jsonl"


def current_version_dir(root: Path) -> Path:
    pointer = root / CURRENT
    if not pointer.is_file():
        raise ConfigError(f"no index under {root}; build one with: synth index build --catalog FILE")
    return root / pointer.read_text().strip()
