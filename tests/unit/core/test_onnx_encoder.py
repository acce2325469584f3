"""The ONNX Runtime encoder reproduces PyTorch's MiniLM embeddings, is exported once into the cache dir,
and shares the PyTorch encoder's fingerprint (indexes are valid for both)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import onnx
import pytest

from services.core import onnx_encoder
from services.core.encoder import Encoder, resolve_backend
from services.core.errors import ConfigError

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
EDGE_TEXTS = [
    "a",
    "drill",
    "60W",
    "Küchenspüle aus Edelstahl",
    "不锈钢水槽",
    "🔨🔧",
    "   padded   ",
    " ".join(["waterproof patio furniture cover"] * 100),  # past the 256-token limit
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def encoders(cache_dir: Path) -> dict[str, Encoder]:
    return {
        "torch": Encoder(device="cpu", backend="torch"),
        "onnx": Encoder(device="cpu", backend="onnx", cache_dir=cache_dir),
    }


def catalog_titles(count: int) -> list[str]:
    with (ROOT / "data" / "demo" / "catalog.csv").open(newline="", encoding="utf-8") as handle:
        return [row["title"] for row, _ in zip(csv.DictReader(handle), range(count), strict=False)]


def test_onnx_embeddings_match_torch_per_text(encoders: dict[str, Encoder]) -> None:
    texts = catalog_titles(200) + EDGE_TEXTS
    torch_vectors = encoders["torch"].encode(texts)
    onnx_vectors = encoders["onnx"].encode(texts)
    assert onnx_vectors.shape == torch_vectors.shape == (len(texts), 384)
    assert onnx_vectors.dtype == np.float32
    cosine = np.einsum("ij,ij->i", torch_vectors, onnx_vectors)
    assert cosine.min() >= 0.999, texts[int(cosine.argmin())]
    assert np.allclose(np.linalg.norm(onnx_vectors, axis=1), 1.0, atol=1e-5)


def test_batch_composition_does_not_change_an_embedding(encoders: dict[str, Encoder]) -> None:
    texts = catalog_titles(70)  # more than one internal batch, mixed lengths
    together = encoders["onnx"].encode(texts)
    alone = np.stack([encoders["onnx"].encode([t])[0] for t in texts[:10]])
    assert np.einsum("ij,ij->i", together[:10], alone).min() >= 0.9999


def test_both_backends_share_a_fingerprint(encoders: dict[str, Encoder]) -> None:
    assert encoders["onnx"].backend.name == "onnx" and encoders["torch"].backend.name == "torch"
    assert encoders["onnx"].fingerprint == encoders["torch"].fingerprint


def test_the_graph_is_exported_once_and_then_loaded_from_the_cache(
    encoders: dict[str, Encoder], cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    graphs = list((cache_dir / "onnx").glob("*.onnx"))
    assert len(graphs) == 1
    operators = {node.op_type for node in onnx.load(str(graphs[0])).graph.node}
    assert {"Attention", "SkipLayerNormalization"} <= operators  # onnxruntime's fusions applied
    meta = graphs[0].with_suffix(".json").read_text()
    assert '"min_probe_cosine": 0.99' in meta or '"min_probe_cosine": 1.0' in meta

    def no_export(path: Path) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_encoder, "export", no_export)
    again = Encoder(device="cpu", backend="onnx", cache_dir=cache_dir)
    assert again.backend.name == "onnx"
    assert np.allclose(again.encode(["drill"]), encoders["onnx"].encode(["drill"]))


def test_an_export_logs_its_fusions_in_one_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        Encoder(device="cpu", backend="onnx", cache_dir=tmp_path)
    assert not [r.name for r in caplog.records if "onnxruntime" in r.pathname]  # its optimizer's own lines
    assert [r for r in caplog.records if r.getMessage().startswith("fused ONNX operators: {")]


def test_an_export_that_does_not_reproduce_torch_is_refused(
    cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_embed = onnx_encoder.OnnxBackend.embed

    def drifted(self: onnx_encoder.OnnxBackend, texts: list[str]) -> np.ndarray:
        vectors = real_embed(self, texts)
        vectors[:, :8] = -vectors[:, :8]
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    monkeypatch.setattr(onnx_encoder.OnnxBackend, "embed", drifted)
    with pytest.raises(ConfigError, match="does not reproduce PyTorch"):
        Encoder(device="cpu", backend="onnx", cache_dir=tmp_path)
    assert not list((tmp_path / "onnx").glob("*.onnx"))
    # auto falls back to PyTorch rather than serve a graph that drifted
    assert Encoder(device="cpu", backend="auto", cache_dir=tmp_path).backend.name == "torch"


def test_backend_choice() -> None:
    assert resolve_backend("auto", "cpu", Path("models")) == "onnx"
    assert resolve_backend("auto", "cpu", None) == "torch"
    assert resolve_backend("auto", "cuda", Path("models")) == "torch"
    assert resolve_backend("torch", "cpu", Path("models")) == "torch"
    with pytest.raises(ConfigError, match="unknown encoder backend"):
        resolve_backend("tensorrt", "cpu", None)
    with pytest.raises(ConfigError, match="CPU only"):
        Encoder(device="cuda", backend="onnx")


def test_auto_serves_on_torch_when_the_cache_dir_is_unusable(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "models"
    not_a_dir.write_text("a file where the cache dir should be")
    encoder = Encoder(device="cpu", backend="auto", cache_dir=not_a_dir)
    assert encoder.backend.name == "torch"
    assert encoder.encode(["drill"]).shape == (1, 384)
    with pytest.raises(OSError):
        Encoder(device="cpu", backend="onnx", cache_dir=not_a_dir)
