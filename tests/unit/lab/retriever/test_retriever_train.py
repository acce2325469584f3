"""synth train retriever: examples from tiny stores written with the sink's schemas, and a real
fine-tune of a few steps (interrupted, resumed, loaded by the Encoder on both backends)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.cli.main import main as synth_main
from services.core.errors import InvalidInput
from services.lab.labels import load_labels
from services.lab.retriever.data import Example, load_training_data
from services.lab.retriever.train import MANIFEST, TrainConfig, schedule, train
from services.store.sink import REWRITES_SCHEMA, SCHEMA, write_parquet_durably

COLOURS = ["red", "blue", "green", "black", "white", "yellow", "orange", "purple"]
THINGS = ["drill", "hose", "lamp", "rug"]


def pair_row(query: str, product_id: str, title: str, n: int) -> dict[str, object]:
    return {
        "pair_id": f"p{n}", "query": query, "product_id": product_id, "title": title, "score": 0.9,
        "label": "exact", "rewrite": "", "retrieved_by": json.dumps([query]), "pipeline_version": "v1",
        "created_at": float(n), "stream_id": f"{n}-0",
    }  # fmt: skip


def rewrites_row(query: str, rejected: object, n: int) -> dict[str, object]:
    return {
        "record_id": f"rewrites:{n}", "query": query, "rewrites": "[]", "dropped": "[]",
        "rejected": rejected if isinstance(rejected, str) else json.dumps(rejected), "pipeline_version": "v1",
        "created_at": float(n), "stream_id": f"{n}-1",
    }  # fmt: skip


def write_store(store: Path, pairs: list[tuple[str, str, str]], rejected: dict[str, list[str]]) -> Path:
    write_parquet_durably(store, [pair_row(q, p, t, n) for n, (q, p, t) in enumerate(pairs)])
    if rejected:
        rows = [
            rewrites_row(q, [{"product_id": p, "title": f"title {p}", "score": 0.5} for p in ids], n)
            for n, (q, ids) in enumerate(rejected.items())
        ]
        write_parquet_durably(store, rows, "rewrites", REWRITES_SCHEMA)
    return store


def colour_store(store: Path) -> Path:
    """32 queries `colour thing`, each with its product accepted and another thing of its colour rejected."""
    pairs = [(f"{c} {t}", f"{c}-{t}", f"{c.title()} {t.title()} Deluxe") for c in COLOURS for t in THINGS]
    write_parquet_durably(store, [pair_row(q, p, t, n) for n, (q, p, t) in enumerate(pairs)])
    rows = [
        rewrites_row(
            f"{c} {t}",
            [{"product_id": f"{c}-{o}", "title": f"{c.title()} {o.title()} Deluxe", "score": 0.6}],
            n,
        )
        for n, (c, t, o) in enumerate(
            (c, t, THINGS[(i + 1) % 4]) for c in COLOURS for i, t in enumerate(THINGS)
        )
    ]
    write_parquet_durably(store, rows, "rewrites", REWRITES_SCHEMA)
    return store


def test_pairs_are_deduplicated_skips_counted_and_rejected_products_become_negatives(tmp_path: Path) -> None:
    store = write_store(
        tmp_path / "store",
        [
            ("deck over", "P1", "Deck Resurfacer"),
            ("Deck  Over", "P1", "Deck Resurfacer"),  # same query (normalised) and product
            ("deck over", "P2", "Deck Paint"),
            ("", "P3", "Lamp"),
            ("lamp", "P4", "  "),
            ("rug", "", "Wool Rug"),
        ],
        {"deck over": ["N1", "N2", "P2"], "nothing accepted": ["N3"]},
    )
    # A rewrites file from before the rejected column, and an unreadable list.
    old_schema = pa.schema([f for f in REWRITES_SCHEMA if f.name != "rejected"])
    old = {k: v for k, v in rewrites_row("rug", [], 9).items() if k != "rejected"}
    pq.write_table(pa.Table.from_pylist([old], schema=old_schema), store / "rewrites-0-old.parquet")
    write_parquet_durably(store, [rewrites_row("lamp", "{oops", 10)], "rewrites", REWRITES_SCHEMA)

    data = load_training_data(store)
    assert data.pairs_read == 6
    assert dict(data.skipped) == {
        "duplicate pair": 1,
        "empty query": 1,
        "empty title": 1,
        "empty product id": 1,
    }
    assert [(e.query, e.positive) for e in data.examples] == [
        ("deck over", "Deck Resurfacer"),
        ("deck over", "Deck Paint"),
    ]
    # P2 is accepted for the query, so it is never its negative; N1 and N2 take turns.
    assert sorted(e.negative for e in data.examples) == ["title N1", "title N2"]
    assert data.negatives["also accepted for the query (not used)"] == 1
    assert data.negatives["records written before the rejected column"] == 1
    assert data.negatives["unreadable rejected lists"] == 1
    counts = data.counts()
    assert (counts["queries"], counts["hard_negatives"], counts["examples"]) == (1, 2, 2)
    assert "skipped 1: duplicate pair" in data.report()

    plain = load_training_data(store, hard_negatives=False)
    assert [e.negative for e in plain.examples] == ["", ""] and plain.sha256 != data.sha256


def test_catalog_text_and_human_labels_above_the_judge_threshold(tmp_path: Path) -> None:
    store = write_store(tmp_path / "store", [("deck over", "P1", "Deck Resurfacer")], {})
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("id,title,brand\nP1,Deck Resurfacer,Rustoleum\nP2,Deck Paint,Behr\nP3,Lamp,Acme\n")
    labels_file = tmp_path / "labels.csv"
    labels_file.write_text(
        "query,product_uid,relevance\n"
        "deck paint,P2,2.67\n"  # relevant: >= 2.33 on Home Depot's 1-3 scale, as judge training counts
        "deck paint,P3,1.33\n"  # not relevant
        "deck over,P1,3\n"  # already in the store
        "lamp,P9,3\n"  # unknown product id
    )
    labels = load_labels(labels_file, catalog, on_error="skip")
    assert labels.problems == {"unknown product id": [5]}
    data = load_training_data(store, catalog, labels)
    assert [(e.query, e.positive, e.source) for e in data.examples] == [
        ("deck over", "Deck Resurfacer. brand: Rustoleum", "store"),
        ("deck paint", "Deck Paint. brand: Behr", "labels"),
    ]
    assert dict(data.skipped) == {"duplicate pair": 1, "labelled not relevant": 1}
    assert "unknown product id" in data.report()


def test_bad_stores_are_refused_with_their_reason(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no training store"):
        load_training_data(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="no pairs"):
        load_training_data(tmp_path / "empty")
    none = tmp_path / "none"
    none.mkdir()
    pq.write_table(pa.Table.from_pylist([], schema=SCHEMA), none / "pairs-1.parquet")
    with pytest.raises(InvalidInput, match="no accepted pairs"):
        load_training_data(none)
    corrupt = write_store(tmp_path / "corrupt", [("deck over", "P1", "Deck Paint")], {})
    (corrupt / "pairs-2-broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(InvalidInput, match="pairs-2-broken.parquet: not a readable Parquet file"):
        load_training_data(corrupt)


def test_the_cli_prints_input_errors_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    assert synth_main(["train", "retriever", "--store", str(tmp_path / "empty"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("synth: ") and "no pairs-*.parquet" in err and "Traceback" not in err
    corrupt = write_store(tmp_path / "corrupt", [("deck over", "P1", "Deck Paint")], {})
    (corrupt / "pairs-2-broken.parquet").write_bytes(b"garbage")
    assert synth_main(["train", "retriever", "--store", str(corrupt)]) == 2
    assert "not a readable Parquet file" in capsys.readouterr().err
    store = colour_store(tmp_path / "store")
    args = ["train", "retriever", "--store", str(store), "--batch-size", "1"]
    assert synth_main(args) == 2
    assert "--batch-size must be at least 2" in capsys.readouterr().err


def test_batches_never_repeat_a_query_or_a_product_and_keep_one_shape() -> None:
    examples = [Example(f"q{i % 5}", f"t{i % 7}", f"n{i}" if i % 3 else "") for i in range(40)]
    batches = schedule(examples, batch_size=4, epochs=2, seed=1)
    assert batches == schedule(examples, batch_size=4, epochs=2, seed=1)  # seeded
    assert sorted(i for b in batches for i in b) == sorted(list(range(40)) * 2)
    for batch in batches:
        rows = [examples[i] for i in batch]
        assert len({e.query for e in rows}) == len(rows) and len({e.positive for e in rows}) == len(rows)
        assert len({bool(e.negative) for e in rows}) == 1


@pytest.mark.slow
def test_a_short_fine_tune_resumes_and_the_encoder_serves_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.core.encoder import Encoder

    store = colour_store(tmp_path / "store")
    data = load_training_data(store)
    assert len(data.examples) == 32 and all(e.negative for e in data.examples)
    # 2 epochs of 2 steps; a checkpoint only where --max-steps stops (each is ~270 MB to write).
    config = TrainConfig(
        loss="mnrl", seed=3, batch_size=16, epochs=2, max_length=16, learning_rate=1e-4, checkpoint_every=50
    )
    out = tmp_path / "model"

    def ctrl_c(step: int) -> None:
        raise KeyboardInterrupt

    # Ctrl-C after the first step saves that step (the periodic checkpoint is not due yet).
    with pytest.raises(KeyboardInterrupt):
        train(data, config, tmp_path / "models", out=out, threads=1, progress=False, on_step=ctrl_c)
    assert (tmp_path / ".model.work" / "checkpoint.pt").is_file() and not out.exists()
    stopped = train(data, config, tmp_path / "models", out=out, threads=1, progress=False, max_steps=2)
    assert (stopped.resumed_from, stopped.done, stopped.finished, out.exists()) == (1, 2, False, False)

    # The same command again, through the CLI: continues at step 2 and prints the path last.
    args = [
        "train",
        "retriever",
        "--loss",
        "mnrl",
        "--store",
        str(store),
        "--out",
        str(out),
        "--seed",
        "3",
        "--batch-size",
        "16",
    ]
    args += ["--epochs", "2", "--max-length", "16", "--lr", "1e-4", "--threads", "1"]
    assert synth_main([*args, "--quiet"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(out)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["resumed_from_step"] == 2 and manifest["steps"] == stopped.steps >= 4
    assert manifest["seed"] == 3 and manifest["parameters"]["batch_size"] == 16
    assert manifest["data"]["examples"] == 32 and manifest["data"]["hard_negatives"] == 32
    assert manifest["data"]["trained_on"] == {"examples": 32, "hard_negatives": 32}
    assert manifest["data"]["sha256"] == data.sha256
    assert manifest["base_model"]["id"].startswith("model:")
    assert np.isfinite(manifest["loss"]["final"]) and len(manifest["loss"]["per_epoch"]) == 2
    assert manifest["version"].startswith("retriever-") and len(manifest["version"]) == len("retriever-") + 12
    assert not (tmp_path / ".model.work").exists()

    texts = ["red drill", "Red Drill Deluxe", "blue lamp"]
    base = Encoder(backend="torch", device="cpu").encode(texts)
    tuned = Encoder(path=out, backend="torch", device="cpu")
    vectors = tuned.encode(texts)
    assert vectors.shape == base.shape and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert not np.allclose(vectors, base, atol=1e-3)  # training changed the weights
    onnx = Encoder(path=out, backend="onnx", device="cpu", cache_dir=tmp_path / "cache").encode(texts)
    assert np.einsum("ij,ij->i", onnx, vectors).min() > 0.999

    # Re-running a finished run trains nothing and names the same model.
    again = train(data, config, tmp_path / "models", out=out, threads=1, progress=False)
    assert again.finished and again.path == out and again.manifest["run_key"] == manifest["run_key"]
