"""`synth judge train`, `synth judge calibrate` and `synth eval judge` end to end on small files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.cli.main import main
from services.judge.engine import PairKind
from services.judge.policy_file import load_policy

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"

COLOURS = ["red", "blue", "green", "black", "white", "grey", "brown", "pink"]
THINGS = ["drill", "hose", "lamp", "rug"]


def write_files(folder: Path) -> tuple[Path, Path]:
    """A catalog of colour x thing products and labels: the matching product 3, others 1 or 2."""
    catalog = ["product_uid,product_title"]
    ids = {}
    for n, (colour, thing) in enumerate((c, t) for c in COLOURS for t in THINGS):
        ids[colour, thing] = str(1000 + n)
        catalog.append(f"{1000 + n},{colour.title()} {thing.title()} Deluxe")
    labels = ["id,product_uid,search_term,relevance"]
    for colour in COLOURS:
        for thing in THINGS[:2]:
            for other in THINGS:
                rating = "3.0" if other == thing else ("1.67" if other in THINGS[2:] else "1.0")
                labels.append(f"{len(labels)},{ids[colour, other]},{colour} {thing},{rating}")
    (folder / "products.csv").write_text("\n".join(catalog) + "\n")
    (folder / "labels.csv").write_text("\n".join(labels) + "\n")
    return folder / "labels.csv", folder / "products.csv"


def test_train_calibrate_and_evaluate_from_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TAILSYNTH_STATE_DIR", str(tmp_path / "state"))
    labels, catalog = write_files(tmp_path)
    common = ["--labels", str(labels), "--catalog", str(catalog)]
    tiny = ["--batch-size", "8", "--max-length", "32", "--max-pairs", "0", "--threads", "1", "--quiet"]

    assert main(["judge", "train", *common, *tiny, "--seed", "3", "--eval-fraction", "0.25"]) == 0
    out = capsys.readouterr()
    assert "made CURRENT" in out.out and "64 pairs kept" in out.err
    current = (tmp_path / "state" / "models" / "judge" / "CURRENT").read_text()
    manifest = json.loads((tmp_path / "state" / "models" / "judge" / current / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["data"]["relevant_at"] == 2.33

    policy = tmp_path / "policy.json"
    calibrate = ["judge", "calibrate", *common, "--engines", "cross_encoder,lexical", "--target-precision"]
    assert main([*calibrate, "0.7", "--out", str(policy)]) == 0
    assert "policy written to" in capsys.readouterr().out
    rule = load_policy(policy).rules[PairKind.QUERY_PRODUCT]
    assert set(rule.thresholds) == {"cross_encoder", "lexical"}

    report_dir = tmp_path / "report"
    evaluate = ["eval", "judge", *common, "--engines", "cross_encoder,lexical", "--policy", str(policy)]
    assert (
        main(
            [*evaluate, "--split", "eval", "--seed", "3", "--eval-fraction", "0.25", "--out", str(report_dir)]
        )
        == 0
    )
    printed = capsys.readouterr()
    assert "| cross_encoder |" in printed.out and "| ensemble |" in printed.out
    assert "using the eval split" in printed.err
    report = json.loads((report_dir / "judge-eval.json").read_text())
    assert report["labels"]["pairs"] == manifest["data"]["eval_pairs"]
    assert report["judges"]["ensemble"]["threshold"] == pytest.approx(rule.threshold)
    assert report["versions"]["cross_encoder"] == f"cross_encoder:{current}"
    assert (report_dir / "judge-eval-pr.png").stat().st_size > 1000


def test_bad_label_rows_fail_with_line_numbers_or_are_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TAILSYNTH_STATE_DIR", str(tmp_path / "state"))
    labels, catalog = write_files(tmp_path)
    with labels.open("ab") as handle:
        handle.write(b"900,424242,red drill,3.0\n901,1000,red drill,very\n902,1001,\xff\xfe drill,2\n")
    common = ["--labels", str(labels), "--catalog", str(catalog), "--engines", "lexical"]
    assert main(["eval", "judge", *common, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "3 bad rows" in err
    assert "unknown product id: lines 66" in err
    assert "unknown label: lines 67" in err
    assert "invalid UTF-8: lines 68" in err
    assert main(["eval", "judge", *common, "--on-error", "skip", "--out", str(tmp_path / "r")]) == 0
    assert "64 pairs kept" in capsys.readouterr().err

    assert main(["judge", "train", "--labels", str(labels), "--on-error", "skip"]) == 2
    assert "pass --catalog" in capsys.readouterr().err

    monkeypatch.setenv("TAILSYNTH_STATE_DIR", str(tmp_path / "empty"))
    assert main(["eval", "judge", *common[:4], "--engines", "cross_encoder", "--on-error", "skip"]) == 2
    assert "synth judge train" in capsys.readouterr().err


@pytest.mark.data
@pytest.mark.skipif(not (SHARED_DATA / "crowdflower").is_dir(), reason="needs ../shared/data/crowdflower")
def test_crowdflower_evaluates_with_inline_titles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = SHARED_DATA / "crowdflower" / "train.csv"
    out = tmp_path / "cf"
    assert main(["eval", "judge", "--labels", str(labels), "--on-error", "skip", "--engines", "lexical",
                 "--out", str(out)]) == 0  # fmt: skip
    report = json.loads((out / "judge-eval.json").read_text())
    assert report["labels"]["relevant_at"] == 3.0
    assert report["judges"]["lexical"]["auc"] > 0.5
