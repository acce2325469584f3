import asyncio
from pathlib import Path

import numpy as np

from services.core.catalog import Product
from services.core.durable import write_bytes
from services.core.index_layout import CURRENT
from services.retriever.index import IndexSpec, ProductIndex, build_index, load_index, save_index
from services.retriever.reload import IndexWatcher
from services.retriever.updates import apply_update


def vectors(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 16))
    points = centres[rng.integers(0, 5, n)] + 0.3 * rng.normal(size=(n, 16))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


class Served:
    """The service's side of the watcher: what is served, and how often a load was attempted."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.index = load_index(root, "enc")
        self.loads = 0

    def open_index(self) -> ProductIndex:
        self.loads += 1
        return load_index(self.root, "enc")

    def swap(self, index: ProductIndex) -> None:
        self.index = index

    def watcher(self) -> IndexWatcher:
        return IndexWatcher(self.root, 1.0, lambda: self.index, self.open_index, self.swap)


def test_a_new_version_is_served_and_a_broken_one_is_skipped_until_current_moves_on(tmp_path: Path) -> None:
    products = [Product(f"P{i}", f"product {i}") for i in range(30)]
    first = build_index(products, vectors(30), IndexSpec("flat"), "enc", "sha")
    save_index(first, tmp_path)
    served = Served(tmp_path)
    watcher = served.watcher()

    assert asyncio.run(watcher.check()) is False and served.loads == 0  # nothing new

    second = apply_update(first, [], np.zeros((0, 16), np.float32), ["P0"], {"op": "remove"})
    save_index(second, tmp_path)
    assert asyncio.run(watcher.check()) is True
    assert served.index.version == second.version and "P0" not in {p.id for p in served.index.products}

    broken = tmp_path / "20990101T000000Z-broken"
    broken.mkdir()
    (broken / "manifest.json").write_text(
        '{"format": 2, "encoder": "enc", "version": "x", "index_type": "flat"}'
    )
    (broken / "products.jsonl").write_text("")
    (broken / "index.faiss").write_bytes(b"not a faiss index")
    write_bytes(tmp_path / CURRENT, broken.name.encode())
    assert asyncio.run(watcher.check()) is False
    assert served.index.version == second.version
    assert watcher.last_error is not None and broken.name in watcher.last_error
    assert asyncio.run(watcher.check()) is False and served.loads == 2  # not retried while CURRENT stays

    third = apply_update(second, [], np.zeros((0, 16), np.float32), ["P1"], {"op": "remove"})
    save_index(third, tmp_path)
    assert asyncio.run(watcher.check()) is True
    assert served.index.version == third.version and watcher.last_error is None


def test_a_version_built_with_another_encoder_is_refused_and_the_old_one_keeps_serving(
    tmp_path: Path,
) -> None:
    products = [Product(f"P{i}", f"product {i}") for i in range(10)]
    save_index(build_index(products, vectors(10), IndexSpec("flat"), "enc", "sha"), tmp_path)
    served = Served(tmp_path)
    before = served.index.version
    save_index(build_index(products, vectors(10), IndexSpec("flat"), "other-encoder", "sha2"), tmp_path)
    watcher = served.watcher()

    assert asyncio.run(watcher.check()) is False
    assert served.index.version == before
    assert watcher.last_error is not None and "built with encoder 'other-encoder'" in watcher.last_error
