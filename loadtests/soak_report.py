"""What the soak test measured: requests by phase and kind, failures by status, latency percentiles, and
the accounting of accepted pairs (every pair a client was given as accepted, against the Parquet store).

No locust and no running system here: soak.py collects Samples and a PairAccount, this module turns them
into the verdict and the markdown + JSON report.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from loadtests.report import fmt_ms
from loadtests.results import percentile

OK_STATUSES = {"200", "202"}
# Answers the system gives on purpose while a part is down: Redis (queue routes) or a gRPC backend.
DEGRADED_STATUSES = {"503"}


@dataclass(frozen=True)
class Sample:
    kind: str  # cached, uncached, batch, enqueue, queue_status
    phase: str  # the phase the request started in
    latency_s: float
    status: str  # the HTTP status, or "error: <exception>" when no answer came
    cached: bool | None = None  # for syntheses: whether the answer came from the cache
    item_statuses: tuple[int, ...] = ()  # for batches: each query's status


@dataclass
class PairAccount:
    accepted: set[str]  # accepted pair ids in 200 responses and in the queue's completion records
    stored: list[str]  # pair ids in the Parquet store, one per row
    unfinished_jobs: int = 0  # queued queries neither done nor dead-lettered at the end
    dead_jobs: int = 0

    @property
    def lost(self) -> set[str]:
        return self.accepted - set(self.stored)

    @property
    def duplicates(self) -> int:
        return len(self.stored) - len(set(self.stored))

    @property
    def unseen(self) -> set[str]:
        """Stored pairs no client saw accepted (a request whose client gave up after the store)."""
        return set(self.stored) - self.accepted


@dataclass(frozen=True)
class Event:
    at_s: float  # since the traffic started
    what: str


@dataclass
class Verdict:
    passed: bool
    reasons: list[str] = field(default_factory=list)


def judge(samples: list[Sample], account: PairAccount) -> Verdict:
    """Pass when no pair was lost or stored twice, every queued query finished, and every failed request
    is a deliberate 503 (a part was down), never a 500/502, a timeout or a dropped connection."""
    reasons = []
    if account.lost:
        reasons.append(f"{len(account.lost)} accepted pairs are not in the Parquet store")
    if account.duplicates:
        reasons.append(f"{account.duplicates} pairs are stored more than once")
    if account.unfinished_jobs or account.dead_jobs:
        reasons.append(
            f"{account.unfinished_jobs} queued queries unfinished, {account.dead_jobs} dead-lettered"
        )
    unexpected = Counter(
        s.status for s in samples if s.status not in OK_STATUSES | DEGRADED_STATUSES
    ) + Counter(f"batch item {c}" for s in samples for c in s.item_statuses if c not in {200, 503})
    if unexpected:
        reasons.append("unexpected answers: " + ", ".join(f"{k} x{v}" for k, v in sorted(unexpected.items())))
    if not account.accepted:
        reasons.append("no accepted pair at all: the accounting proves nothing")
    return Verdict(not reasons, reasons)


def _latency_cells(samples: list[Sample]) -> list[str]:
    ms = [s.latency_s * 1000 for s in samples if s.status in OK_STATUSES]
    return [fmt_ms(percentile(ms, q)) for q in (50, 95, 99)] + [fmt_ms(max(ms) if ms else None)]


def _failures(samples: list[Sample]) -> str:
    counts = Counter(s.status for s in samples if s.status not in OK_STATUSES)
    counts.update(f"item {c}" for s in samples for c in s.item_statuses if c != 200)
    return ", ".join(f"{status}: {n}" for status, n in sorted(counts.items())) or "none"


KINDS = ["cached", "uncached", "batch", "enqueue", "queue_status"]


def _row(label: list[str], group: list[Sample]) -> list[str]:
    hits = [s for s in group if s.cached is not None]
    hit_share = f"{sum(bool(s.cached) for s in hits) / len(hits):.0%}" if hits else "-"
    ok = sum(s.status in OK_STATUSES for s in group)
    return [*label, str(len(group)), str(ok), _failures(group), hit_share, *_latency_cells(group)]


def rows_by_phase(samples: list[Sample], phases: list[str]) -> list[list[str]]:
    """One row per phase and kind of request (latencies of different kinds do not mix)."""
    rows = []
    for phase in phases:
        for kind in KINDS:
            group = [s for s in samples if s.phase == phase and s.kind == kind]
            if group:
                rows.append(_row([phase, kind], group))
    return rows


def rows_by_kind(samples: list[Sample]) -> list[list[str]]:
    return [_row([kind], group) for kind in KINDS if (group := [s for s in samples if s.kind == kind])]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def render(
    context: list[str],
    events: list[Event],
    samples: list[Sample],
    account: PairAccount,
    phases: list[str],
    verdict: Verdict,
) -> str:
    header = ["requests", "ok", "failures by status", "from cache", "p50 ms", "p95 ms", "p99 ms", "max ms"]
    lines = [
        "# Soak test",
        "",
        f"**{'PASS' if verdict.passed else 'FAIL'}**"
        + ("" if verdict.passed else ": " + "; ".join(verdict.reasons)),
        "",
        *(f"- {line}" for line in context),
        "",
        "## Timeline",
        "",
        *(f"- {event.at_s:7.1f} s  {event.what}" for event in events),
        "",
        "## Requests by phase",
        "",
        "Latency percentiles are over the successful requests of each row (nearest rank).",
        "",
        *_table(["phase", "kind", *header], rows_by_phase(samples, phases)),
        "",
        "## Requests by kind, all phases",
        "",
        *_table(["kind", *header], rows_by_kind(samples)),
        "",
        "## Accepted pairs",
        "",
        f"- accepted in responses and queue completion records: {len(account.accepted)} distinct pair ids",
        f"- stored in Parquet: {len(account.stored)} rows, {len(set(account.stored))} distinct pair ids",
        f"- lost (accepted, not stored): {len(account.lost)}",
        f"- stored twice or more: {account.duplicates}",
        f"- stored but never seen accepted by a client: {len(account.unseen)}",
        f"- queued queries unfinished: {account.unfinished_jobs}, dead-lettered: {account.dead_jobs}",
        "",
    ]
    return "\n".join(lines)


def write(
    path: Path,
    context: list[str],
    events: list[Event],
    samples: list[Sample],
    account: PairAccount,
    phases: list[str],
) -> Verdict:
    verdict = judge(samples, account)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(context, events, samples, account, phases, verdict), encoding="utf-8")
    data = {
        "passed": verdict.passed,
        "reasons": verdict.reasons,
        "context": context,
        "events": [asdict(e) for e in events],
        "samples": [asdict(s) for s in samples],
        "pairs": {
            "accepted": len(account.accepted),
            "stored_rows": len(account.stored),
            "stored_distinct": len(set(account.stored)),
            "lost": sorted(account.lost),
            "duplicates": account.duplicates,
            "unseen": len(account.unseen),
            "unfinished_jobs": account.unfinished_jobs,
            "dead_jobs": account.dead_jobs,
        },
    }
    path.with_suffix(".json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    return verdict
