"""`synth synthesize` against the running system: journal, resume, skip, Ctrl-C, pairs in the store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import redis

from services.cli.main import main
from services.cli.system import LocalSystem

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
QUERIES = ["teak outdoor dining table", "brushed nickel bathroom faucet", "memory foam bath mat"]
CHEAP = ["--num-rewrites", "2", "--top-k", "5", "--concurrency", "2"]


def journal_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def pairs_by_query(system: LocalSystem) -> Counter[str]:
    client = redis.Redis.from_url(system.redis_url or "")
    entries = [fields for _, fields in client.xrange("tailsynth:pairs")]
    return Counter(f[b"query"].decode() for f in entries if f.get(b"kind", b"pair") == b"pair")


def synth(*args: str) -> int:
    return main(["synthesize", *args])


def test_a_query_log_is_synthesized_resumed_and_then_skipped(
    live_system: LocalSystem, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queries = tmp_path / "log.jsonl"
    queries.write_text(f'"{QUERIES[0]}"\n{{"query": "{QUERIES[1]}"}}\n{{oops\n"{QUERIES[2]}"\n')
    journal = tmp_path / "journal.jsonl"
    common = ["--queries", str(queries), "--url", live_system.gateway_url, "--journal", str(journal), *CHEAP]
    version = httpx.get(f"{live_system.gateway_url}/readyz", timeout=30).json()["pipeline_version"]
    assert version.startswith("0.1.0+")
    before = pairs_by_query(live_system)

    # Stopped after two queries: the summary says one is left and how to continue.
    assert synth(*common, "--limit", "2") == 0
    out, err = capsys.readouterr()
    assert "line 3: not JSON" in err and "to continue: synth synthesize --queries" in err
    assert "2 queries synthesized, 0 skipped" in out and "1 bad lines, 1 not started" in out
    first = journal_lines(journal)
    assert sorted(line["query"] for line in first) == sorted(QUERIES[:2])  # two in flight at once
    assert all(line["status"] == 200 and line["pipeline_version"] == version for line in first)

    # Resumed: only the third query runs.
    assert synth(*common) == 0
    out, _ = capsys.readouterr()
    assert "1 queries synthesized, 2 skipped" in out and "0 failed" in out
    lines = journal_lines(journal)
    assert len(lines) == 3 and {line["query"] for line in lines} == set(QUERIES)
    assert sum(line["accepted"] for line in lines) > 0
    # Every accepted pair the journal calls new is in the training stream under its query.
    after = pairs_by_query(live_system)
    for line in lines:
        assert line["new"] + line["duplicates"] == line["accepted"]
        assert after[line["query"]] - before[line["query"]] == line["new"]
    third = next(line for line in lines if line["query"] == QUERIES[2])
    assert f"accepted pairs: {third['accepted']} ({third['new']} new in the store" in out

    # Everything done under this version: nothing is synthesized again.
    assert synth(*common) == 0
    out, _ = capsys.readouterr()
    assert "0 queries synthesized, 3 skipped" in out
    assert len(journal_lines(journal)) == 3 and pairs_by_query(live_system) == after


def test_bad_input_and_an_unreachable_gateway_exit_2_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "bad.jsonl"
    empty.write_text("{oops\n")
    assert synth("--queries", str(empty), "--journal", str(tmp_path / "j.jsonl")) == 2
    assert "no queries to synthesize" in capsys.readouterr().err
    good = tmp_path / "good.txt"
    good.write_text("deck over\n")
    assert synth("--queries", str(good), "--url", "http://127.0.0.1:9", "--journal", str(tmp_path / "j")) == 2
    err = capsys.readouterr().err
    assert "cannot reach the gateway at http://127.0.0.1:9" in err and "Traceback" not in err


def test_ctrl_c_finishes_the_query_in_flight_and_a_rerun_continues(
    live_system: LocalSystem, tmp_path: Path
) -> None:
    queries = tmp_path / "log.txt"
    queries.write_text("cedar raised garden bed\nsolar pathway lights\n")
    journal = tmp_path / "journal.jsonl"
    args = ["--queries", str(queries), "--url", live_system.gateway_url, "--journal", str(journal), *CHEAP]
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "synthesize", *args, "--concurrency", "1"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=os.environ | {"PYTHONPATH": str(ROOT)},
        )
        deadline = time.monotonic() + 120
        while "0/2" not in stderr.read_text() and time.monotonic() < deadline:  # the first query is in flight
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=300)
    assert process.returncode == 130, stderr.read_text()
    assert "stopping: finishing the queries in flight" in stderr.read_text()
    assert "1 queries synthesized" in out and "1 not started" in out
    assert [line["query"] for line in journal_lines(journal)] == ["cedar raised garden bed"]

    assert synth(*args) == 0
    assert [line["query"] for line in journal_lines(journal)] == [
        "cedar raised garden bed",
        "solar pathway lights",
    ]
