"""The soak report's verdict and accounting: lost or doubled pairs and unexpected answers fail it."""

from __future__ import annotations

from pathlib import Path

from loadtests.soak_report import Event, PairAccount, Sample, judge, render, write

PHASES = ["steady", "redis killed", "steady after redis"]


def samples() -> list[Sample]:
    return [
        Sample("cached", "steady", 0.004, "200", cached=True),
        Sample("uncached", "steady", 3.1, "200", cached=False),
        Sample("cached", "redis killed", 3.3, "200", cached=False),
        Sample("enqueue", "redis killed", 0.002, "503"),
        Sample("batch", "redis killed", 6.0, "200", item_statuses=(200, 200, 503, 200)),
        Sample("queue_status", "steady after redis", 0.01, "200"),
    ]


def test_deliberate_503s_pass_when_every_accepted_pair_is_stored_once() -> None:
    verdict = judge(samples(), PairAccount({"a", "b"}, ["a", "b", "c"]))
    assert verdict.passed, verdict.reasons


def test_lost_or_doubled_pairs_fail() -> None:
    lost = judge(samples(), PairAccount({"a", "b"}, ["a"]))
    doubled = judge(samples(), PairAccount({"a", "b"}, ["a", "b", "b"]))
    assert not lost.passed and lost.reasons == ["1 accepted pairs are not in the Parquet store"]
    assert not doubled.passed and doubled.reasons == ["1 pairs are stored more than once"]


def test_server_errors_timeouts_and_stuck_queries_fail() -> None:
    bad = [
        *samples(),
        Sample("uncached", "steady", 1.0, "500"),
        Sample("cached", "steady", 300, "error: ReadTimeout"),
    ]
    verdict = judge(bad, PairAccount({"a"}, ["a"], unfinished_jobs=1))
    assert not verdict.passed
    assert "1 queued queries unfinished, 0 dead-lettered" in verdict.reasons
    assert "unexpected answers: 500 x1, error: ReadTimeout x1" in verdict.reasons
    assert not judge(samples(), PairAccount(set(), [])).passed  # nothing accepted proves nothing


def test_the_report_has_phases_kinds_failures_and_the_pair_accounting(tmp_path: Path) -> None:
    account = PairAccount({"a", "b"}, ["a", "b", "c"])
    text = render(
        ["context"], [Event(12.5, "SIGKILL to Redis")], samples(), account, PHASES, judge(samples(), account)
    )
    assert text.startswith("# Soak test\n\n**PASS**")
    assert "| steady | cached | 1 | 1 | none | 100% | 4.00 | 4.00 | 4.00 | 4.00 |" in text
    assert "| redis killed | cached | 1 | 1 | none | 0% | 3300 | 3300 | 3300 | 3300 |" in text
    assert "| redis killed | batch | 1 | 1 | item 503: 1 | - | 6000 | 6000 | 6000 | 6000 |" in text
    assert "| enqueue | 1 | 0 | 503: 1 | - | n/a | n/a | n/a | n/a |" in text  # all phases
    assert "| cached | 2 | 2 | none | 50% | 4.00 | 3300 | 3300 | 3300 |" in text
    assert "- stored but never seen accepted by a client: 1" in text
    assert "12.5 s  SIGKILL to Redis" in text
    verdict = write(tmp_path / "soak.md", ["context"], [], samples(), account, PHASES)
    assert verdict.passed and (tmp_path / "soak.json").is_file()
