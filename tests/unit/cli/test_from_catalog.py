"""`synth synthesize --from-catalog`: the seeded draw, rows without a title, the journal's product keys,
and bad input as one line with exit status 2 (no gateway needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli.journal import ProductEntry, done_under, parse_journal, plan
from services.cli.main import main
from services.cli.products import Options, ProductTally, item_of, key_of, sample_catalog
from services.core.catalog import Product

OPTIONS = Options(["keywords", "need"], 2, 20, 4, 13)
PRODUCTS = [Product(f"P{i}", f"Product {i}") for i in range(3)]


def catalog(tmp_path: Path, rows: list[str], header: str = "id,title,brand") -> Path:
    path = tmp_path / "catalog.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_the_draw_is_seeded_and_rows_without_a_title_are_skipped_and_counted(tmp_path: Path) -> None:
    rows = [f"P{i},Product {i},Acme" for i in range(30)] + [
        "P-empty,,Acme",
        "P-blank,   ,Acme",
        "P3,Again,Acme",
    ]
    path = catalog(tmp_path, rows)
    first = sample_catalog(path, 10, seed=13)
    assert [p.id for p in first.products] == [p.id for p in sample_catalog(path, 10, seed=13).products]
    assert [p.id for p in first.products] != [p.id for p in sample_catalog(path, 10, seed=14).products]
    assert len(first.products) == 10 and first.total == 30
    assert first.bad == {"empty title": 2, "duplicate id": 1}
    assert len(sample_catalog(path, None, seed=1).products) == 30


def test_a_product_is_done_once_per_version_and_parameters() -> None:
    sample = [item_of(p, OPTIONS) for p in PRODUCTS]
    assert sample[0].seed == item_of(PRODUCTS[0], OPTIONS).seed  # the LLM's seed is fixed
    done = ProductEntry(
        product_id=sample[0].product_id, styles=["keywords", "need"], num_queries=2, top_k=20,
        num_rewrites=4, pipeline_version="v1", status=200,
    )  # fmt: skip
    failed = done.model_copy(update={"product_id": sample[1].product_id, "status": 503})
    entries = parse_journal([done.model_dump_json(), failed.model_dump_json(), "{cut"], ProductEntry)
    assert len(entries) == 2
    todo, skipped = plan(sample, done_under(entries, "v1"), key_of)
    assert skipped == 1 and [i.product_id for i in todo] == [i.product_id for i in sample[1:]]
    todo, skipped = plan(sample, done_under(entries, "v2"), key_of)  # a new pipeline: all again
    assert skipped == 0
    incomplete = done.model_copy(update={"failures": ["need: hf: timeout"]})
    assert done_under([incomplete], "v1") == set()  # a style's engine failed: done again
    other = Options(["keywords"], 2, 20, 4, 13)
    assert key_of(item_of(PRODUCTS[0], other)) != key_of(sample[0])


def test_the_progress_line_counts_products_kept_queries_and_drops() -> None:
    tally = ProductTally(total=4, skipped=0)
    entry = ProductEntry(
        product_id="P1", styles=["keywords"], num_queries=2, top_k=20, num_rewrites=4, pipeline_version="v",
        status=200, generated=4, kept=2, accepted=30, dropped={"copy_of_title": 1, "round_trip_failed": 1},
    )  # fmt: skip
    tally.add(entry)
    tally.add(entry.model_copy(update={"status": 502}))
    line = tally.line()
    assert "2/4 products" in line and "2/4 queries kept" in line and "30 accepted pairs" in line
    assert "1 failed" in line and "copy_of_title 1" in line and "round_trip_failed 1" in line


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        (
            ["P1,,Acme", "P2, ,Acme"],
            "id,title,brand",
            "no product to generate queries for (2 with empty title)",
        ),
        (["P1,Acme"], "id,brand", "no title column"),
        ([], "id,title", "no product to generate queries for (no rows)"),
    ],
)
def test_a_catalog_without_titles_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: list[str], header: str, message: str
) -> None:
    path = catalog(tmp_path, rows, header)
    code = main(["synthesize", "--from-catalog", str(path), "--journal", str(tmp_path / "j.jsonl")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--styles", "keywords,poems"], "--styles takes distinct names"),
        (["--queries-per-style", "9"], "between 1 and 8"),
        (["--sample", "0"], "at least 1"),
        (["--url", "gateway:8000"], "http:// or https://"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    path = catalog(tmp_path, ["P1,Drill,Acme"])
    assert main(["synthesize", "--from-catalog", str(path), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_an_unreachable_gateway_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = catalog(tmp_path, ["P1,Drill,Acme", "P2,,Acme"])
    args = [
        "synthesize",
        "--from-catalog",
        str(path),
        "--url",
        "http://127.0.0.1:9",
        "--journal",
        str(tmp_path / "j"),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "skipping 1 rows (1 with empty title)" in err
    assert "cannot reach the gateway at http://127.0.0.1:9" in err and "Traceback" not in err
