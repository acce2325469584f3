"""Hard negatives for the business judge: rejected, unlabelled products of its training queries."""

from __future__ import annotations

from pathlib import Path

from services.lab.judge.negatives import mine_negatives
from services.lab.judge.train import TrainConfig, split_pairs
from services.lab.labels import LabelledPair, LabelSet, Scale
from tests.unit.lab.retriever.test_distillation import store


def labelled(query: str, product: str, grade: float) -> LabelledPair:
    return LabelledPair(1, query, product, product, "3", grade, grade >= 0.5)


def test_only_rejected_unlabelled_products_of_the_given_queries_are_mined(tmp_path: Path) -> None:
    path = store(tmp_path / "s")  # each query's own thing accepted, the other three rejected
    pairs = [labelled("red drill", "red-drill", 1.0), labelled("Red  Drill", "red-hose", 0.0)]
    pairs.append(labelled("blue lamp", "blue-lamp", 1.0))
    mined = mine_negatives([path], pairs, {}, per_query=5, seed=3)
    by_query: dict[str, set[str]] = {}
    for pair in mined:
        by_query.setdefault(pair.query, set()).add(pair.product)
        assert pair.grade == 0.0 and not pair.relevant and pair.label == "mined"
    assert by_query == {
        "red drill": {"red-lamp", "red-rug"},
        "blue lamp": {"blue-drill", "blue-hose", "blue-rug"},
    }
    assert len(mine_negatives([path], pairs, {}, per_query=1, seed=3)) == 2  # capped per query
    assert mine_negatives([path], [labelled("green gnome", "x", 1.0)], {}, 3, 3) == []


def test_calibration_queries_are_neither_trained_nor_evaluated_on() -> None:
    pairs = [labelled(f"query {n}", f"p{n}", 1.0) for n in range(400)]
    labels = LabelSet(Path("labels.csv"), Scale("numeric", 1, 3, 2.33), pairs, 400)
    fit, calibration, held = split_pairs(labels, TrainConfig())
    queries = [{p.query for p in part} for part in (fit, calibration, held)]
    assert not (queries[0] & queries[1] or queries[0] & queries[2] or queries[1] & queries[2])
    assert (
        80 < len(held) < 160 and 10 < len(calibration) < 50 and len(fit) + len(calibration) + len(held) == 400
    )
