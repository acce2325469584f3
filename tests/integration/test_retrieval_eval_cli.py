"""`synth eval retrieval` end to end on a slice of the demo catalog with the packaged MiniLM."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.cli.main import main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DEMO_CATALOG = ROOT / "data" / "demo" / "catalog.csv"
PNG = b"\x89PNG\r\n\x1a\n"

# Home Depot style labels over the first 40 demo products (1-3 means; relevant at >= 2.33).
LABELS = """id,product_uid,search_term,relevance
1,DEMO-000001,stainless cabinet pull,3
2,DEMO-000002,stainless cabinet pull,1
3,DEMO-000002,dual monitor stand,3
4,DEMO-000006,dual monitor stand,1.33
5,DEMO-000006,big and tall office chair,3
6,DEMO-000004,big and tall office chair,1
7,DEMO-000008,solar market umbrella,2.67
8,DEMO-000003,only weak labels,1.67
"""


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.setenv("TAILSYNTH_STATE_DIR", str(tmp_path / "state"))
    # PyTorch: a fresh state dir would otherwise export the ONNX graph first (minutes on 2 cores).
    monkeypatch.setenv("TAILSYNTH_RETRIEVER_ENCODER_BACKEND", "torch")
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("".join(DEMO_CATALOG.read_text().splitlines(keepends=True)[:41]))
    labels = tmp_path / "labels.csv"
    labels.write_text(LABELS)
    return {"catalog": catalog, "labels": labels, "out": tmp_path / "out"}


def test_eval_retrieval_writes_report_and_curves_then_compares(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["eval", "retrieval", "--catalog", str(files["catalog"]), "--labels", str(files["labels"])]
    assert main([*common, "--k", "1,5", "--out", str(files["out"])]) == 0
    out = capsys.readouterr().out
    assert "| query |" in out and "recall@5" in out
    report = json.loads((files["out"] / "retrieval.json").read_text())
    assert report["min_grade"] == 2.33 and report["k"] == [1, 5]
    assert report["counts"]["queries"] == 4 and report["counts"]["queries_without_relevant"] == 1
    assert report["dataset"]["products"] == 40 and report["model"]["fingerprint"]
    query = report["metrics"]["query"]
    # Each query names its product almost word for word: MiniLM finds all of them in the top 5.
    assert query["recall@5"] == 1.0 and query["mrr"] >= 0.75 and 0 < query["ndcg@10"] <= 1
    assert len(report["curves"]["query"]) == 5 and report["curves"]["query"][-1] == 1.0
    assert not report["embeddings_cached"]
    assert (files["out"] / "retrieval-recall.png").read_bytes().startswith(PNG)

    rewrites = tmp_path / "rewrites.jsonl"
    rewrites.write_text(
        '{"query": "dual monitor stand", "rewrites": ["desk stand for two screens"]}\n'
        '{"query": "solar market umbrella", "rewrites": ["patio umbrella with solar lights", "parasol"]}\n'
    )
    second = tmp_path / "second"
    args = ["--k", "1,5", "--rewrites-file", str(rewrites), "--out", str(second)]
    assert main([*common, *args, "--compare", str(files["out"] / "retrieval.json")]) == 0
    report = json.loads((second / "retrieval.json").read_text())
    assert report["embeddings_cached"]  # same model, same catalog: not encoded again
    assert set(report["metrics"]) == {"query", "fused", "union"}
    assert report["metrics"]["union"]["union_size@1"] > 1  # rewrites add candidates
    assert report["metrics"]["union"]["recall@5"] >= report["metrics"]["query"]["recall@5"]
    assert report["rewrites"]["source"]["queries_without_rewrites"] == 2
    used = {row["query"]: row["rewrites"] for row in report["rewrites"]["per_query"]}
    assert used["solar market umbrella"] == ["patio umbrella with solar lights", "parasol"]
    assert (second / "rewrites.jsonl").read_text().count("\n") == 4
    assert (second / "retrieval-compare.png").read_bytes().startswith(PNG)

    held_out = tmp_path / "held"
    split = ["--split", "eval", "--eval-fraction", "0.5", "--seed", "1", "--out", str(held_out)]
    assert main([*common, "--k", "5", *split]) == 0
    assert json.loads((held_out / "retrieval.json").read_text())["counts"]["queries"] < 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_bad_input_exits_2_with_a_message(
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    catalog, labels = str(files["catalog"]), str(files["labels"])
    out = ["--out", str(files["out"])]
    cases = {
        "does not exist": ["--catalog", catalog, "--labels", str(tmp_path / "missing.csv")],
        "catalog": ["--catalog", str(tmp_path / "missing.csv"), "--labels", labels],
        "--k": ["--catalog", catalog, "--labels", labels, "--k", "ten"],
        "no query has a relevant product": ["--catalog", catalog, "--labels", labels, "--min-grade", "3.0"]
        + ["--split", "eval", "--eval-fraction", "0.01"],
        "model directory": ["--catalog", catalog, "--labels", labels, "--model", str(tmp_path / "nope")],
        "rewrites file": ["--catalog", catalog, "--labels", labels, "--rewrites-file", str(tmp_path / "x")],
    }
    for message, args in cases.items():
        assert main(["eval", "retrieval", *args, *out]) == 2, message
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    monkeypatch.setenv("TAILSYNTH_PIPELINE_REWRITER_TARGET", f"127.0.0.1:{_free_port()}")
    assert main(["eval", "retrieval", "--catalog", catalog, "--labels", labels, "--rewrites", *out]) == 2
    assert "rewriter at 127.0.0.1" in capsys.readouterr().err
    assert not (files["out"] / "retrieval.json").exists()


def test_rewrites_from_the_running_rewriter(
    files: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rewriter as its own process (catalog engine: no LLM); its rewrites are searched and stored."""
    port = _free_port()
    env = {
        **os.environ,
        "TAILSYNTH_REWRITER_BIND": f"127.0.0.1:{port}",
        "TAILSYNTH_REWRITER_ENGINES": "catalog",
        "TAILSYNTH_REWRITER_CATALOG": str(files["catalog"]),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.rewriter"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        monkeypatch.setenv("TAILSYNTH_PIPELINE_REWRITER_TARGET", f"127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert process.poll() is None and time.monotonic() < deadline, "rewriter did not start"
            time.sleep(0.1)
        args = ["--catalog", str(files["catalog"]), "--labels", str(files["labels"]), "--k", "1,5"]
        out = files["out"]
        assert main(["eval", "retrieval", *args, "--rewrites", "--num-rewrites", "2", "--out", str(out)]) == 0
    finally:
        process.terminate()
        process.wait(30)
    report = json.loads((out / "retrieval.json").read_text())
    assert report["rewrites"]["source"]["num_rewrites"] == 2
    per_query = report["rewrites"]["per_query"]
    assert len(per_query) == 4 and all(len(row["rewrites"]) <= 2 for row in per_query)
    assert any(row["rewrites"] for row in per_query)  # the catalog engine relaxes these queries
    union, query = report["metrics"]["union"], report["metrics"]["query"]
    assert union["mean_rewrites"] > 0 and union["recall@1"] >= query["recall@1"]
    reused = [json.loads(line) for line in (out / "rewrites.jsonl").read_text().splitlines()]
    assert reused == per_query
