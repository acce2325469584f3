"""The rewriter round's steps on Home Depot, as functions another experiment can call.

Each step is the user-facing command run as its own process (`synth synthesize`, `synth train rewriter`,
`synth eval rewriter`), against a local system started like `synth up`; every step resumes on a re-run.
benchmarks/rewriter_experiment.py chains them; the main experiment (benchmarks/experiment.py) builds its
systems' environment with `base_env()` and `REWRITE_DEADLINES`.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SYNTH = [sys.executable, "-m", "services.cli.main"]
# On 2 cores the hf engine may take minutes for a batch of sampled rewrites; a timed-out rewrite would count
# as a rewriter that wrote nothing (the catalog engine answers well inside them).
REWRITE_DEADLINES = {
    "TAILSYNTH_PIPELINE_REWRITE_TIMEOUT_S": "600",
    "TAILSYNTH_PIPELINE_SEARCH_TIMEOUT_S": "120",
    "TAILSYNTH_PIPELINE_JUDGE_TIMEOUT_S": "300",
}


@dataclass
class Split:
    """Queries of the seeded split by query (seed 13, 30% held out, as `synth judge train`)."""

    synthesis: list[str]  # sampled synthesis-side queries the store is built from
    dev: list[str]  # other synthesis-side queries: settings are chosen on these
    held_out: int  # held-out queries (evaluation only)


def split_queries(
    labels: Path, catalog: Path, seed: int, eval_fraction: float, synth_queries: int, dev_queries: int
) -> Split:
    from services.lab.labels import load_labels, split_by_query

    found = load_labels(labels, catalog, on_error="skip")
    train, held = split_by_query(found.pairs, eval_fraction, seed)
    side = sorted({p.query for p in train})
    synthesis = side
    if synth_queries and len(side) > synth_queries:
        synthesis = sorted(random.Random(seed).sample(side, synth_queries))
    rest = sorted(set(side) - set(synthesis))
    dev = sorted(random.Random(seed + 1).sample(rest, min(dev_queries, len(rest))))
    return Split(synthesis, dev, len({p.query for p in held}))


@dataclass
class Steps:
    """Runs the commands with one environment and records how long each took."""

    state: Path
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)

    def run(self, name: str, command: list[str], env: dict[str, str] | None = None) -> str:
        """Run one CLI step, streaming its stderr (progress); return its stdout."""
        print(f"\n== {name}: {' '.join(command[3:])}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        done = subprocess.run(command, env=env or self.env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        self.timings[name] = self.timings.get(name, 0.0) + round(time.perf_counter() - started, 1)
        print(done.stdout, file=sys.stderr)
        # synthesize exits 1 when some queries failed: they are in its journal and the rest still counts.
        if done.returncode not in (0, 1) or (done.returncode == 1 and not name.startswith("synthesize")):
            raise SystemExit(f"{name} failed with exit code {done.returncode}")
        return done.stdout


def base_env(state: Path, engines: str, rewriter_model: Path | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "TAILSYNTH_STATE_DIR": str(state),
        "TAILSYNTH_REWRITER_ENGINES": engines,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    env.pop("TAILSYNTH_REDIS_URL", None)
    env.pop("TAILSYNTH_REWRITER_MODEL_DIR", None)
    if rewriter_model is not None:
        env["TAILSYNTH_REWRITER_MODEL_DIR"] = str(rewriter_model)
    return env


@contextlib.contextmanager
def local_system(
    state: Path, catalog: Path, env: dict[str, str], timings: dict[str, float], name: str
) -> Iterator[dict[str, str]]:
    """The whole system on free ports (`synth up`); yields the environment that points the CLI at it.
    Stopping it flushes the training store (the sink)."""
    from services.cli.system import LocalSystem, Ports

    system = LocalSystem(state_dir=state, catalog=catalog, ports=Ports.free(), workers=0, base_env=env)
    started = time.perf_counter()
    system.start()
    timings[name] = timings.get(name, 0.0) + round(time.perf_counter() - started, 1)
    try:
        yield {**system.env(), "TAILSYNTH_GATEWAY_URL": system.gateway_url}
    finally:
        system.stop()


def synthesize(steps: Steps, env: dict[str, str], queries: list[str], concurrency: int, name: str) -> None:
    """`synth synthesize` over the queries through the running gateway (skips those already done under
    this pipeline version)."""
    work = steps.state.parent
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"{name}-queries.txt"
    path.write_text("".join(q + "\n" for q in queries), encoding="utf-8")
    steps.run(
        name,
        [
            *SYNTH,
            "synthesize",
            "--queries",
            str(path),
            "--url",
            env["TAILSYNTH_GATEWAY_URL"],
            "--concurrency",
            str(concurrency),
        ],
        env,
    )
