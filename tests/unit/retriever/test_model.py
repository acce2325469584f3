"""The model an index records: the manifest field, model directory checks, updates and the served pair
open the recorded model (a stand-in encoder records which directory each open asked for)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from services.core.assets import fingerprint
from services.core.catalog import Product
from services.core.errors import ConfigError
from services.core.index_layout import CURRENT
from services.retriever import model
from services.retriever.config import RetrieverSettings
from services.retriever.index import IndexSpec, build_index, load_index, read_manifest, save_index
from services.retriever.served import open_served
from services.retriever.updates import add_products, apply_update, remove_products
from tests.unit.retriever.vectors import clustered, products

ROOT = Path(__file__).resolve().parents[3]


def model_dir(path: Path, weights: bytes = b"weights") -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")
    (path / "model.safetensors").write_bytes(weights)
    return path


class OpenedEncoder:
    """Stand-in for Encoder (wiring only): remembers each directory opened; fingerprint per directory."""

    opened: list[Path | None] = []
    fingerprints: dict[Path | None, str] = {}
    dim = 32

    def __init__(self, path: Path | None = None, **_: object) -> None:
        OpenedEncoder.opened.append(path)
        self.path = path
        self.fingerprint = OpenedEncoder.fingerprints[path]
        self.device = "cpu"

    def encode(self, texts: list[str]) -> np.ndarray:
        seeds = [int.from_bytes(hashlib.sha256((self.fingerprint + t).encode()).digest()[:8]) for t in texts]
        rows = np.array([np.random.default_rng(s).normal(size=self.dim) for s in seeds], np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> type[OpenedEncoder]:
    monkeypatch.setattr(model, "Encoder", OpenedEncoder)
    monkeypatch.setattr(OpenedEncoder, "opened", [])
    monkeypatch.setattr(OpenedEncoder, "fingerprints", {None: "packaged:1"})
    return OpenedEncoder


def test_the_manifest_records_the_absolute_model_dir_and_updates_keep_it(tmp_path: Path) -> None:
    trained = tmp_path / "trained"
    built = build_index(products(20), clustered(20), IndexSpec("flat"), "trained:1", "sha", trained)
    default = build_index(products(20), clustered(20), IndexSpec("flat"), "packaged:1", "sha")
    assert built.manifest["model_dir"] == str(trained) and default.manifest["model_dir"] is None

    save_index(built, tmp_path / "index")
    loaded = load_index(tmp_path / "index", "trained:1")
    assert model.recorded_model_dir(loaded.manifest) == trained
    updated = apply_update(loaded, [], np.zeros((0, 32), np.float32), ["P1"], {"op": "remove"})
    assert updated.manifest["model_dir"] == str(trained) and updated.version != built.version
    assert model.recorded_model_dir({"encoder": "old:1"}) is None  # indexes from before the field


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "does not exist"),
        ("file", "is not a directory"),
        ("empty", "not a sentence-transformers model directory"),
        ("no-weights", "holds no model weights"),
    ],
)
def test_a_bad_model_dir_is_a_config_error_naming_the_problem(
    tmp_path: Path, kind: str, message: str
) -> None:
    path = tmp_path / "model"
    if kind == "file":
        path.write_text("x")
    elif kind != "missing":
        path.mkdir()
    if kind == "no-weights":
        (path / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match=message):
        model.check_model_dir(path)
    model_dir(tmp_path / "good")
    assert model.check_model_dir(tmp_path / "x" / ".." / "good") == tmp_path / "good"


def test_a_model_dir_that_does_not_load_is_a_config_error(tmp_path: Path) -> None:
    broken = model_dir(tmp_path / "broken", b"these are not safetensors")
    settings = RetrieverSettings(state_dir=tmp_path, device="cpu", encoder_backend="torch")
    with pytest.raises(ConfigError, match=f"model at {broken} does not load"):
        model.open_encoder(settings, broken)


def test_cli_build_with_a_bad_model_prints_one_line_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.cli.main import main

    monkeypatch.setenv("TAILSYNTH_STATE_DIR", str(tmp_path))
    catalog = str(ROOT / "data" / "demo" / "catalog.csv")
    assert main(["index", "build", "--catalog", catalog, "--model", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err == f"synth: model directory {tmp_path / 'nope'} does not exist\n"
    assert not (tmp_path / "index").exists()


@pytest.fixture
def trained_index(tmp_path: Path, opened: type[OpenedEncoder]) -> RetrieverSettings:
    """An index built with the model at <tmp>/trained while the settings name another model."""
    trained = model_dir(tmp_path / "trained")
    other = model_dir(tmp_path / "other", b"other weights")
    opened.fingerprints |= {trained: "trained:1", other: "other:1"}
    built = build_index(products(30), clustered(30), IndexSpec("flat"), "trained:1", "sha", trained)
    settings = RetrieverSettings(state_dir=tmp_path, model_dir=other)
    save_index(built, settings.index_root)
    return settings


def test_add_encodes_with_the_model_the_index_records_not_the_settings_one(
    trained_index: RetrieverSettings, tmp_path: Path, opened: type[OpenedEncoder]
) -> None:
    (tmp_path / "more.csv").write_text("id,title\nN1,a brand new thing\n")
    report = add_products(trained_index, tmp_path / "more.csv")

    trained = tmp_path / "trained"
    assert opened.opened == [trained]
    manifest = read_manifest(trained_index.index_root / str(report.version))
    assert manifest["model_dir"] == str(trained) and manifest["encoder"] == "trained:1"
    served = load_index(trained_index.index_root, "trained:1")
    query = OpenedEncoder(trained).encode([Product("N1", "a brand new thing").text()])
    assert served.search(query, 1)[0][0][0].id == "N1"  # the new vector is the recorded model's


def test_updates_refuse_a_recorded_model_whose_weights_changed(
    trained_index: RetrieverSettings, tmp_path: Path, opened: type[OpenedEncoder]
) -> None:
    trained = tmp_path / "trained"
    opened.fingerprints[trained] = "trained:2"  # the directory was overwritten after the build
    (tmp_path / "more.csv").write_text("id,title\nN1,a brand new thing\n")
    before = (trained_index.index_root / CURRENT).read_text()
    with pytest.raises(ConfigError, match=f"rebuild the index with: .* --model {trained}"):
        add_products(trained_index, tmp_path / "more.csv")
    assert (trained_index.index_root / CURRENT).read_text() == before


def test_remove_needs_no_model_and_keeps_the_recorded_one(
    trained_index: RetrieverSettings, tmp_path: Path, opened: type[OpenedEncoder]
) -> None:
    (tmp_path / "ids.txt").write_text("P1\n")
    report = remove_products(trained_index, tmp_path / "ids.txt")
    assert report.removed == 1 and opened.opened == []
    manifest = read_manifest(trained_index.index_root / str(report.version))
    assert manifest["model_dir"] == str(tmp_path / "trained")


def test_the_served_pair_keeps_its_encoder_for_the_same_model_and_swaps_it_for_another(
    trained_index: RetrieverSettings, tmp_path: Path, opened: type[OpenedEncoder]
) -> None:
    first = open_served(trained_index)
    assert first.encoder.fingerprint == "trained:1" and first.model_dir == tmp_path / "trained"

    (tmp_path / "ids.txt").write_text("P1\n")
    remove_products(trained_index, tmp_path / "ids.txt")  # same model, new version
    second = open_served(trained_index, first)
    assert second.encoder is first.encoder and second.version != first.version
    assert len(opened.opened) == 1

    packaged = build_index(products(10), clustered(10), IndexSpec("flat"), "packaged:1", "sha2")
    save_index(packaged, trained_index.index_root)
    third = open_served(trained_index, second)
    assert third.encoder.fingerprint == "packaged:1" and third.model_dir is None
    assert opened.opened == [tmp_path / "trained", None] and third.index.manifest["encoder"] == "packaged:1"


def test_a_missing_recorded_model_is_refused_with_the_version_and_directory(
    trained_index: RetrieverSettings, tmp_path: Path
) -> None:
    version = (trained_index.index_root / CURRENT).read_text()
    (tmp_path / "trained" / "model.safetensors").unlink()
    (tmp_path / "trained" / "config.json").unlink()
    (tmp_path / "trained").rmdir()
    with pytest.raises(ConfigError, match=f"index {version} was built with model .*trained.*does not exist"):
        open_served(trained_index)


def test_a_model_saved_again_into_its_directory_gets_a_new_fingerprint(tmp_path: Path) -> None:
    path = model_dir(tmp_path / "trained")
    before = fingerprint(path)
    (path / "model.safetensors").write_bytes(b"retrained weights")
    assert fingerprint(path) != before
    (path / "config.json").write_text(json.dumps({"retrained": True}))
    assert len({before, fingerprint(path)}) == 2


def test_the_onnx_export_of_a_trained_model_has_its_own_cache_name(tmp_path: Path) -> None:
    from services.core.onnx_encoder import graph_stem

    a = model_dir(tmp_path / "a" / "all-MiniLM-L6-v2", b"minilm")
    b = model_dir(tmp_path / "b" / "all-MiniLM-L6-v2", b"fine-tuned")
    assert graph_stem(a) != graph_stem(b)
    assert fingerprint(b) in graph_stem(b)
