"""Distilling a teacher's scores: candidate lists from the store's judged pairs, the teacher's cache, the
listwise and margin objectives, refreshed negatives and the errors a user can meet."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from services.cli.main import main as synth_main
from services.core.errors import InvalidInput
from services.judge.config import JudgeSettings
from services.lab.retriever.confident import ConfidentStage
from services.lab.retriever.data import add_lists, load_training_data
from services.lab.retriever.lists import read_lists
from services.lab.retriever.objectives import Distillation
from services.lab.retriever.teacher import Teacher, logit
from services.lab.retriever.train import MANIFEST, Inputs, LossOptions, TrainConfig, train
from services.store.sink import REWRITES_SCHEMA, SCHEMA, write_parquet_durably

COLOURS = ["red", "blue", "green", "black", "white", "yellow", "orange", "purple"]
THINGS = ["drill", "hose", "lamp", "rug"]


def title(colour: str, thing: str) -> str:
    return f"{colour.title()} {thing.title()} Deluxe"


def judged(query: str, colour: str, judge_version: str) -> list[dict[str, object]]:
    """Every product of the query's colour judged: the query's own thing accepted, the others not."""
    return [
        {
            "product_id": f"{colour}-{thing}",
            "title": title(colour, thing),
            "score": 0.9 if thing in query else 0.3,
            "accepted": thing in query,
            "judges": {"lexical": 1.0 if thing in query else 0.5, "embedding": 0.7},
            "retrieval_score": 0.5,
            "found_by_query": True,
        }
        for thing in THINGS
    ]


def store(path: Path, judge_version: str = "lexical:1|embedding:x|all", with_judged: bool = True) -> Path:
    queries = [(c, t) for c in COLOURS for t in THINGS]
    pairs = [
        {
            "pair_id": f"p{n}",
            "query": f"{c} {t}",
            "product_id": f"{c}-{t}",
            "title": title(c, t),
            "score": 0.9,
            "label": "exact",
            "rewrite": "",
            "retrieved_by": "[]",
            "judges": "{}",
            "pipeline_version": "v1",
            "created_at": float(n),
            "stream_id": f"{n}-0",
        }  # fmt: skip
        for n, (c, t) in enumerate(queries)
    ]
    write_parquet_durably(path, pairs, "pairs", SCHEMA)
    records = [
        {
            "record_id": f"rewrites:{n}",
            "query": f"{c} {t}",
            "rewrites": "[]",
            "dropped": "[]",
            "rejected": "[]",
            "judged": json.dumps(judged(f"{c} {t}", c, judge_version)) if with_judged else "",
            "judge_version": judge_version,
            "pipeline_version": "v1",
            "created_at": float(n),
            "stream_id": f"{n}-1",
        }  # fmt: skip
        for n, (c, t) in enumerate(queries)
    ]
    write_parquet_durably(path, records, "rewrites", REWRITES_SCHEMA)
    return path


@pytest.fixture
def teacher(tmp_path: Path) -> Teacher:
    return Teacher("lexical", JudgeSettings(), tmp_path / "scores.sqlite")


def test_lists_use_the_stored_score_of_the_same_teacher_version_and_score_the_rest(
    tmp_path: Path, teacher: Teacher
) -> None:
    counts: Counter[str] = Counter()
    same = read_lists(store(tmp_path / "a"), {}, "lexical", teacher.version, counts)
    assert len(same) == 32 and counts["records with the teacher's scores"] == 32
    red_drill = same["red drill"].candidates
    assert set(red_drill) == {f"red-{t}" for t in THINGS}
    assert red_drill["red-drill"].score == 1.0 and red_drill["red-drill"].accepted
    assert red_drill["red-hose"].score == 0.5 and not red_drill["red-hose"].accepted

    counts.clear()
    other = read_lists(store(tmp_path / "b", "lexical:0|all"), {}, "lexical", teacher.version, counts)
    assert counts["records of another judge"] == 32  # another version of the engine judged these
    assert all(c.score is None for lst in other.values() for c in lst.candidates.values())
    data = load_training_data(tmp_path / "b", teacher=teacher)
    assert teacher.scored == 32 * 4 and data.list_sources["candidates scored by the teacher now"] == 128
    scores = {c.product_id: c.score for c in next(x for x in data.lists if x.query == "red drill").ranked()}
    assert scores["red-drill"] == 1.0 and scores["red-hose"] == 0.5  # lexical: 2 of 2 terms, 1 of 2

    again = Teacher("lexical", JudgeSettings(), tmp_path / "scores.sqlite")
    load_training_data(tmp_path / "b", teacher=again)
    assert again.scored == 0  # every score came from the cache


def test_records_before_the_judged_column_give_their_accepted_pairs(tmp_path: Path, teacher: Teacher) -> None:
    data = load_training_data(store(tmp_path / "s", with_judged=False), teacher=teacher)
    assert data.list_sources["records before the judged column (rejected pairs only)"] == 32
    assert all(len(lst.candidates) == 1 for lst in data.lists)  # only the accepted pair
    with pytest.raises(InvalidInput, match="no query has 4 judged candidates"):
        train(Inputs(data, teacher), TrainConfig(list_size=4), tmp_path / "models", progress=False)


def test_a_step_is_the_teachers_best_then_sampled_others_with_their_log_odds(
    tmp_path: Path, teacher: Teacher
) -> None:
    data = load_training_data(store(tmp_path / "s"), teacher=teacher)
    plan = Distillation("listwise", data.lists, 3, 8, 2, seed=5)
    assert plan.steps == 8  # 32 queries, 8 a step, 2 epochs
    step = plan.step(3)
    assert len(step.columns) == 4 and all(len(column) == 8 for column in step.columns)
    for query, best in zip(step.columns[0], step.columns[1], strict=True):
        assert best == title(*query.split())  # the teacher's best candidate comes first
    assert step.labels is not None and step.labels.shape == (8, 3)
    assert np.allclose(step.labels[:, 0], logit(np.array([1.0]))[0])
    assert plan.step(3).columns == step.columns  # fixed by seed and step: a resumed run sees the same
    assert Distillation("listwise", data.lists, 3, 8, 2, seed=6).step(3).columns != step.columns


def test_the_contrastive_term_adds_in_batch_mnrl_over_the_teachers_best_to_the_divergence(
    tmp_path: Path, teacher: Teacher
) -> None:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import (
        DistillKLDivLoss,
        MultipleNegativesRankingLoss,
    )

    from services.core.assets import minilm_path

    data = load_training_data(store(tmp_path / "s"), teacher=teacher)
    plan = Distillation("listwise", data.lists, 3, 8, 1, seed=5)
    step = plan.step(0)
    model = SentenceTransformer(str(minilm_path()), device="cpu", local_files_only=True)
    model.eval()
    features = [model.tokenize(column) for column in step.columns]
    labels = torch.tensor(step.labels)
    embeddings = [model(model.tokenize(column))["sentence_embedding"] for column in step.columns]

    def combined(weight: float) -> float:
        loss = plan.loss(model, LossOptions(TrainConfig(contrastive_weight=weight), distributed=False))
        with torch.no_grad():
            return float(loss(features, labels))

    with torch.no_grad():
        kl = DistillKLDivLoss(model, student_temperature=0.05, teacher_temperature=1.0)
        divergence = float(kl.compute_loss_from_embeddings(embeddings, labels)) / 0.05**2
        mnrl = MultipleNegativesRankingLoss(model, scale=20.0)
        in_batch = float(mnrl.compute_loss_from_embeddings(embeddings[:2], None))
    assert combined(0.0) == pytest.approx(divergence, rel=1e-4)  # the plain divergence, no term added
    assert combined(0.5) == pytest.approx(divergence + 0.5 * in_batch, rel=1e-4)
    assert in_batch > 0.01  # the term is there to be added: eight queries, each with its own best


@pytest.mark.slow
def test_listwise_training_refreshes_negatives_and_records_the_teacher(
    tmp_path: Path, teacher: Teacher
) -> None:
    from services.core.catalog import load_catalog
    from services.core.encoder import Encoder

    catalog = tmp_path / "catalog.csv"
    rows = [f"{c}-{t},{title(c, t)}" for c in COLOURS for t in THINGS] + [
        f"x{n},Garden Gnome {n}" for n in range(8)
    ]
    catalog.write_text("id,title\n" + "\n".join(rows) + "\n")
    data = load_training_data(store(tmp_path / "s"), catalog, teacher=teacher)
    config = TrainConfig(
        loss="listwise", batch_size=8, list_size=3, epochs=2, max_length=16, learning_rate=1e-4,
        refresh_every=4, refresh_depth=6, teacher="lexical",
    )  # fmt: skip
    out = tmp_path / "model"
    result = train(Inputs(data, teacher, load_catalog(catalog)), config, tmp_path / "models", out=out,
                   threads=1, progress=False)  # fmt: skip
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["objective"]["loss"] == "listwise"
    assert manifest["objective"]["teacher"]["version"] == "lexical:1"
    (refreshed,) = manifest["objective"]["refreshes"]
    assert refreshed["step"] == 4 and refreshed["added"] > 0  # depth 6 > the 4 judged per query
    assert max(len(lst.candidates) for lst in data.lists) > 4
    assert result.steps == 8 and np.isfinite(manifest["loss"]["final"])
    texts = ["red drill", title("red", "drill")]
    assert not np.allclose(Encoder(path=out, backend="torch", device="cpu").encode(texts),
                           Encoder(backend="torch", device="cpu").encode(texts), atol=1e-3)  # fmt: skip


def catalog_with_a_drill_bit_set(tmp_path: Path) -> Path:
    """The store's products, a drill no judged list holds and products sharing no word with any query."""
    catalog = tmp_path / "catalog.csv"
    rows = [f"{c}-{t},{title(c, t)}" for c in COLOURS for t in THINGS]
    rows += ["bits,Cordless Drill Bit Set", *(f"x{n},Garden Gnome {n}" for n in range(8))]
    catalog.write_text("id,title\n" + "\n".join(rows) + "\n")
    return catalog


def test_bm25_adds_products_sharing_a_word_with_the_query_scored_by_the_teacher(
    tmp_path: Path, teacher: Teacher, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = catalog_with_a_drill_bit_set(tmp_path)
    data = load_training_data(store(tmp_path / "s"), catalog, teacher=teacher)
    judged_only = {lst.query: set(lst.candidates) for lst in data.lists}
    with caplog.at_level(logging.DEBUG):
        add_lists(data, teacher, lexical_depth=12)
    assert not [r for r in caplog.records if r.name.startswith("bm25s")]  # its internals stay out of the log
    red = next(lst for lst in data.lists if lst.query == "red drill")
    added = set(red.candidates) - judged_only["red drill"]
    assert added and "bits" in added  # a drill the dense lists never held
    assert not any(pid.startswith("x") for pid in red.candidates)  # no shared word, never a candidate
    assert all(red.candidates[pid].score is not None for pid in added)  # scored by the teacher
    total = sum(len(lst.candidates) - len(judged_only[lst.query]) for lst in data.lists)
    assert data.list_sources["candidates from BM25's top 12"] == total > 0
    no_catalog = load_training_data(store(tmp_path / "t"), teacher=teacher)
    with pytest.raises(InvalidInput, match="--lexical-depth needs --catalog"):
        add_lists(no_catalog, teacher, lexical_depth=5)
    with pytest.raises(InvalidInput, match="--lexical-depth needs a distillation loss"):
        TrainConfig(loss="mnrl", lexical_depth=5).check()


@pytest.mark.slow
def test_the_cli_adds_bm25_candidates_by_default_where_a_catalog_and_a_distillation_loss_allow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAILSYNTH_STATE_DIR", str(tmp_path / "state"))
    catalog = catalog_with_a_drill_bit_set(tmp_path)
    args = ["train", "retriever", "--store", str(store(tmp_path / "s")), "--teacher", "lexical", "--batch-size",
            "8", "--list-size", "3", "--max-length", "16", "--max-steps", "1", "--quiet"]  # fmt: skip
    assert synth_main([*args, "--catalog", str(catalog)]) == 0
    added = re.search(r"candidate lists: (\d+) candidates from BM25's top 30", capsys.readouterr().err)
    assert added and int(added[1]) > 0
    assert synth_main([*args, "--catalog", str(catalog), "--lexical-depth", "0"]) == 0
    assert "BM25" not in capsys.readouterr().err
    assert synth_main(args) == 0  # no catalog to search: the judged candidates alone, no error
    assert "BM25" not in capsys.readouterr().err
    assert synth_main([*args, "--catalog", str(catalog), "--loss", "mnrl"]) == 0  # contrastive: no teacher
    assert "BM25" not in capsys.readouterr().err


def test_the_cli_refuses_a_missing_teacher_and_bad_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = store(tmp_path / "s")
    monkeypatch.setenv("TAILSYNTH_STATE_DIR", str(tmp_path / "state"))
    assert synth_main(["train", "retriever", "--store", str(path), "--quiet"]) == 2
    assert "no trained cross-encoder" in capsys.readouterr().err  # the default teacher, never trained
    assert synth_main(["train", "retriever", "--store", str(path), "--teacher", "rewriter", "--quiet"]) == 2
    assert "unknown judge engine 'rewriter'" in capsys.readouterr().err
    args = ["train", "retriever", "--store", str(path), "--teacher", "lexical", "--refresh-every", "5"]
    assert synth_main([*args, "--quiet"]) == 2
    assert "--refresh-every needs the teacher and --catalog" in capsys.readouterr().err
    assert (
        synth_main(["train", "retriever", "--store", str(path), "--loss", "mnrl", "--refresh-every", "5"])
        == 2
    )
    assert "--refresh-every needs a distillation loss" in capsys.readouterr().err


def test_a_human_grade_replaces_the_teachers_score_as_the_target(tmp_path: Path, teacher: Teacher) -> None:
    from services.lab.labels import LabelledPair, LabelSet, Scale

    graded = [
        LabelledPair(2, "red drill", "red-rug", title("red", "rug"), "3", 1.0, True),
        LabelledPair(3, "red drill", "red-drill", title("red", "drill"), "1", 0.0, False),
        LabelledPair(
            4, "garden gnome", "x1", "Garden Gnome 1", "3", 1.0, True
        ),  # a query synthesis never saw
    ]
    labels = LabelSet(tmp_path / "labels.csv", Scale("numeric", 1, 3, 2.33), graded, 3)
    data = load_training_data(store(tmp_path / "s"), labels=labels, teacher=teacher)
    red = next(lst for lst in data.lists if lst.query == "red drill")
    assert [c.product_id for c in red.ranked()][:1] == ["red-rug"]  # the human's best comes first
    assert red.candidates["red-rug"].target == 0.98 and red.candidates["red-drill"].target == 0.02
    assert red.candidates["red-hose"].target == red.candidates["red-hose"].score == 0.5  # the teacher's
    assert any(lst.query == "garden gnome" for lst in data.lists)


def test_a_teacher_of_another_catalog_and_a_catalog_without_titles_are_refused(
    tmp_path: Path, teacher: Teacher, capsys: pytest.CaptureFixture[str]
) -> None:
    teacher.engine.provenance = lambda: {"catalog": {"file": "other.csv", "sha256": "ab" * 32}}  # type: ignore[method-assign]
    with pytest.raises(InvalidInput, match="was trained on catalog other.csv"):
        teacher.check_catalog({"file": "products.csv", "sha256": "cd" * 32})
    teacher.check_catalog({"file": "other.csv", "sha256": "ab" * 32})  # the same catalog passes

    untitled = tmp_path / "untitled.csv"
    untitled.write_text("id,name_x\n1,drill\n")
    args = ["train", "retriever", "--store", str(store(tmp_path / "s")), "--teacher", "lexical"]
    assert synth_main([*args, "--catalog", str(untitled), "--quiet"]) == 2
    assert "no title column" in capsys.readouterr().err


def test_the_contrastive_stage_trains_on_the_teachers_confident_candidates_and_the_relevant_labels(
    tmp_path: Path, teacher: Teacher
) -> None:
    from services.lab.labels import LabelledPair, LabelSet, Scale

    graded = [
        LabelledPair(2, "red drill", "red-rug", title("red", "rug"), "3", 1.0, True),
        LabelledPair(3, "red drill", "red-drill", title("red", "drill"), "1", 0.0, False),
        LabelledPair(4, "blue hose", "blue-hose", title("blue", "hose"), "3", 1.0, True),  # also accepted
    ]
    labels = LabelSet(tmp_path / "labels.csv", Scale("numeric", 1, 3, 2.33), graded, 3)
    data = load_training_data(store(tmp_path / "s"), labels=labels, teacher=teacher)
    examples = ConfidentStage(min_score=0.8).data(data).examples
    by_query: dict[str, set[str]] = {}
    for e in examples:
        by_query.setdefault(e.query, set()).add(f"{e.source}:{e.product_id}")
    assert len(by_query) == 32
    assert by_query["green lamp"] == {"teacher:green-lamp"}  # lexical 1.0; the others 0.5 stay out
    assert by_query["blue hose"] == {"labels:blue-hose"}  # labelled relevant, though synthesis accepted it
    # The human said red-drill is not relevant: never a pseudo-label; the labelled relevant pair joins.
    assert by_query["red drill"] == {"labels:red-rug"}

    loose = ConfidentStage(min_score=0.4, per_query=2).data(data).examples
    assert sum(e.query == "green lamp" for e in loose) == 2  # the cap, the best first
    assert any(e.query == "green lamp" and e.product_id == "green-lamp" for e in loose)

    for lst in data.lists:
        for candidate in lst.candidates.values():
            candidate.score, candidate.label = 0.5, None
    data.labels = None
    with pytest.raises(InvalidInput, match="no candidate reaches --confident-score 0.8"):
        ConfidentStage(min_score=0.8).data(data)
    for bad, message in (
        (ConfidentStage(min_score=0), "--confident-score"),
        (ConfidentStage(per_query=0), "--confident-per-query"),
    ):
        with pytest.raises(InvalidInput, match=message):
            bad.check()


@pytest.mark.slow
def test_the_cli_follows_distillation_with_the_contrastive_stage_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAILSYNTH_STATE_DIR", str(tmp_path / "state"))
    args = ["train", "retriever", "--store", str(store(tmp_path / "s")), "--teacher", "lexical", "--batch-size",
            "8", "--list-size", "3", "--max-length", "16", "--quiet"]  # fmt: skip
    assert synth_main(args) == 0
    out = capsys.readouterr()
    final = json.loads((Path(out.out.strip().splitlines()[-1]) / MANIFEST).read_text())
    distilled = re.search(r"distilled: (\S+); the contrastive stage follows", out.err)
    assert distilled and final["parameters"]["loss"] == "mnrl"
    assert final["base_model"]["path"] == distilled[1]  # the stage continues from the distilled model
    assert final["data"]["examples"] == 32  # each query's own product: lexical 1.0, the rest 0.5
    assert "contrastive stage: 32 pairs over 32 queries (32 the teacher's confident candidates, 0 " in out.err
    assert synth_main([*args, "--no-confident-stage"]) == 0
    alone = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert str(alone) == distilled[1]  # the distilled model, found rather than trained again
    assert json.loads((alone / MANIFEST).read_text())["parameters"]["loss"] == "listwise"


@pytest.mark.slow
def test_a_rerun_finds_both_stages_even_where_refreshes_grew_the_lists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAILSYNTH_STATE_DIR", str(tmp_path / "state"))
    catalog = catalog_with_a_drill_bit_set(tmp_path)
    args = ["train", "retriever", "--store", str(store(tmp_path / "s")), "--teacher", "lexical", "--catalog",
            str(catalog), "--lexical-depth", "0", "--refresh-every", "2", "--refresh-depth", "6", "--confident-score", "0.5",
            "--batch-size", "8", "--list-size", "3", "--max-length", "16", "--quiet"]  # fmt: skip
    assert synth_main(args) == 0
    first = capsys.readouterr().out.strip().splitlines()[-1]
    distilled = json.loads((Path(json.loads((Path(first) / MANIFEST).read_text())["base_model"]["path"])
                            / MANIFEST).read_text())  # fmt: skip
    assert distilled["objective"]["refreshes"]  # the lists grew during distillation
    assert synth_main(args) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == first  # the same stage, found, not retrained
