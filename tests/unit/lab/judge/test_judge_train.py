"""A real (tiny) fine-tuning run of the business judge: seeded, resumable, published, then served."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from services.core.errors import ConfigError
from services.judge.config import JudgeSettings
from services.judge.engine import ENGINES, PairKind
from services.judge.engines.cross_encoder import CURRENT, LoadedModel, predict_logits
from services.lab.judge.train import TrainConfig, train
from services.lab.labels import LabelSet, load_labels

pytestmark = pytest.mark.slow

COLOURS = ["red", "blue", "green", "black", "white", "yellow"]
THINGS = ["drill", "hose", "lamp", "rug"]
CONFIG = TrainConfig(seed=5, batch_size=8, max_length=32, max_pairs=0, eval_fraction=0.25, checkpoint_every=2)


def synthetic_labels(folder: Path) -> LabelSet:
    """60 pairs: each query is a colour and a thing; the matching product is rated 3, others 1."""
    rows = ["query,product_title,relevance"]
    for colour in COLOURS:
        for thing in THINGS[:2]:
            for other in THINGS:
                rating = 3 if other == thing else 1
                rows.append(f"{colour} {thing},{colour.title()} {other.title()} Deluxe,{rating}")
    rows += [f"{c} {t},{c.title()} {t.title()} Deluxe,3" for c in COLOURS for t in THINGS[2:]]
    path = folder / "labels.csv"
    path.write_text("\n".join(rows) + "\n")
    return load_labels(path)


class Interrupt(Exception):
    pass


def stop_at(step: int):  # type: ignore[no-untyped-def]
    def hook(done: int) -> None:
        if done == step:
            raise Interrupt

    return hook


def eval_logits(path: Path, labels: LabelSet) -> np.ndarray:
    loaded = LoadedModel.load(path)
    return predict_logits(loaded.model, loaded.tokenizer, [(p.query, p.text) for p in labels.pairs], 32, 16)


def test_training_is_seeded_resumable_versioned_and_served(tmp_path: Path) -> None:
    labels = synthetic_labels(tmp_path)
    assert len(labels.pairs) == 60

    straight = train(labels, tmp_path / "a", CONFIG, progress=False, threads=1)
    assert straight.resumed_from == 0 and straight.steps >= 5

    interrupted_dir = tmp_path / "b"
    with pytest.raises(Interrupt):
        train(labels, interrupted_dir, CONFIG, progress=False, threads=1, on_step=stop_at(3))
    assert not (interrupted_dir / "judge" / CURRENT).exists()  # nothing published by a broken run
    resumed = train(labels, interrupted_dir, CONFIG, resume=True, progress=False, threads=1)
    assert resumed.resumed_from == 2  # the last checkpoint before the interruption
    assert resumed.steps == straight.steps

    # Same seed and data: the resumed run ends with the same weights as the straight one.
    np.testing.assert_allclose(
        eval_logits(resumed.path, labels), eval_logits(straight.path, labels), rtol=1e-4, atol=1e-4
    )

    manifest = json.loads((resumed.path / "manifest.json").read_text())
    assert manifest["version"] == resumed.version
    assert manifest["seed"] == 5 and manifest["steps"] == resumed.steps
    assert manifest["data"]["sha256"] == labels.sha256
    data = manifest["data"]
    assert data["train_pairs"] + data["calibration_pairs"] + data["eval_pairs"] == 60
    assert data["calibration_pairs"] > 0 and manifest["calibration"]["fitted_on"].startswith("calibration")
    assert set(manifest["eval"]) >= {"auc", "precision_at_recall_0.5"}
    assert (interrupted_dir / "judge" / CURRENT).read_text() == resumed.version
    assert not (interrupted_dir / "judge" / ".work").exists() or not any(
        (interrupted_dir / "judge" / ".work").iterdir()
    )

    # The engine serves CURRENT under the state dir's models folder.
    settings = JudgeSettings(state_dir=tmp_path / "state")
    models = settings.models_dir
    models.parent.mkdir(parents=True)
    (interrupted_dir).rename(models)
    engine = ENGINES.get("cross_encoder")(settings)
    assert engine.kinds == frozenset({PairKind.QUERY_PRODUCT})
    engine.load()
    assert resumed.version in engine.version
    scores = engine.score([("red drill", "Red Drill Deluxe", PairKind.QUERY_PRODUCT)] * 2)
    assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)
    assert scores[0] == pytest.approx(scores[1])

    # A configured model directory wins over CURRENT.
    pinned = JudgeSettings(state_dir=tmp_path / "nowhere", cross_encoder_model=straight.path)
    other = ENGINES.get("cross_encoder")(pinned)
    other.load()
    assert straight.version in other.version


def test_without_a_model_the_engine_says_how_to_train_one(tmp_path: Path) -> None:
    engine = ENGINES.get("cross_encoder")(JudgeSettings(state_dir=tmp_path))
    with pytest.raises(ConfigError, match="synth judge train"):
        engine.load()
    missing = ENGINES.get("cross_encoder")(
        JudgeSettings(state_dir=tmp_path, cross_encoder_model=tmp_path / "nope")
    )
    with pytest.raises(ConfigError, match="no cross-encoder model at"):
        missing.load()
