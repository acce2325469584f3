"""make bench-rewriter: HF vs vLLM rewrite throughput on the same model, prompts and sampling.

Each engine is measured through its propose() in its own environment (hf in .venv, vllm in .venv-vllm),
one after the other, at concurrency 1 and 16; writes reports/bench-rewriter.md and .json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from services.core.assets import smollm2_hf_dir
from services.rewriter.config import RewriterSettings

ROOT = Path(__file__).resolve().parents[1]
QUERIES_TSV = ROOT / "data" / "demo" / "wands_queries.tsv"
PYTHONS = {"hf": ROOT / ".venv" / "bin" / "python", "vllm": ROOT / ".venv-vllm" / "bin" / "python"}
TARGET_RATIO = 2.0


def varied_queries(count: int) -> list[str]:
    """One query per product class first (varied topics and lengths), in file order."""
    with QUERIES_TSV.open(newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    picked: list[str] = []
    classes: set[str] = set()
    for row in rows:
        if row["query_class"] not in classes and row["query"] not in picked:
            classes.add(row["query_class"])
            picked.append(row["query"])
    return (picked + [r["query"] for r in rows if r["query"] not in picked])[:count]


def run_engine(engine: str, model_dir: Path, queries: Path, out: Path, extra: list[str]) -> dict[str, Any]:
    python = PYTHONS[engine]
    if not python.exists():
        raise SystemExit(f"{python} is missing: run make venv / make vllm-env")
    command = [str(python), str(ROOT / "benchmarks" / "rewriter_measure.py"), "--engine", engine]
    command += ["--model-dir", str(model_dir), "--queries", str(queries), "--out", str(out), *extra]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, cwd=ROOT)
    result: dict[str, Any] = json.loads(out.read_text())
    result["process_s"] = time.perf_counter() - started
    return result


def summarise(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Median over the repetitions of each level."""
    summary = {}
    for level, data in result["levels"].items():
        runs = data["runs"]
        summary[level] = {
            key: statistics.median(run[key] for run in runs)
            for key in ("tokens_per_s", "rewrites_per_s", "requests_per_s", "p50_latency_s", "cpu_steal")
        } | {"requests": runs[0]["requests"], "repeats": len(runs), "load_avg_1m": data["load_avg_1m"]}
    return summary


def markdown(report: dict[str, Any]) -> str:
    s = report["sampling"]
    lines = [
        "# Rewriter engines: HF transformers vs vLLM",
        "",
        f"Model {report['model']}; {report['queries']} WANDS demo queries; {report['n']} rewrites asked per "
        f"query = {s['samples_per_query']} samples of at most {s['max_new_tokens']} new tokens "
        f"(temperature {s['temperature']}, top-p {s['top_p']}), per-query seeds. Each engine through its "
        "propose() in its own environment, warm-up excluded, median of the repetitions. Machine: "
        f"{report['machine']}.",
        "",
        "| engine | concurrency | queries/run | runs | tokens/s | rewrites/s | queries/s | p50 latency (s) "
        "| load avg | CPU steal |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for engine, result in report["engines"].items():
        for level, row in result["summary"].items():
            lines.append(
                f"| {engine} | {level} | {row['requests']} | {row['repeats']} | {row['tokens_per_s']:.1f} | "
                f"{row['rewrites_per_s']:.2f} | {row['requests_per_s']:.2f} | {row['p50_latency_s']:.2f} | "
                f"{row['load_avg_1m']:.1f} | {row['cpu_steal']:.0%} |"
            )
    lines.append("")
    gains = ", ".join(f"{engine} {gain:.2f}x" for engine, gain in report["concurrency_gain"].items())
    lines.append(f"Tokens/s at concurrency 16 over concurrency 1: {gains}.")
    ratio = report.get("ratio_at_16")
    if ratio is not None:
        verdict = "met" if ratio["tokens_per_s"] >= TARGET_RATIO else "NOT met"
        lines += [
            "",
            f"**vLLM / HF at concurrency 16: {ratio['tokens_per_s']:.2f}x tokens/s, "
            f"{ratio['rewrites_per_s']:.2f}x rewrites/s** (target >= {TARGET_RATIO:.0f}x: {verdict}).",
        ]
    engines = report["engines"]
    lines += [
        "",
        "Engine start (weights to first answer): "
        + ", ".join(f"{e} {engines[e]['init_s']:.1f} s" for e in engines)
        + ". Versions: "
        + ", ".join(f"`{engines[e]['version']}`" for e in engines)
        + ".",
        "",
        "Both batch every query in flight (continuous batching): HF one decode step at a time on the "
        "service's worker thread, every row attending to one cached copy of the prompt's shared prefix; "
        "vLLM with its paged cache. tokens/s counts generated tokens "
        "without end-of-sequence; rewrites/s counts parsed, distinct candidates. Other processes on the "
        "machine show in the load average column, other machines on the same host in CPU steal.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=48)
    parser.add_argument("--out", default=str(ROOT / "reports" / "bench-rewriter"))
    parser.add_argument("--engines", default="hf,vllm", help="comma-separated subset of hf,vllm")
    args, extra = parser.parse_known_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if not engines or set(engines) - set(PYTHONS):
        parser.error(f"--engines: choose from {', '.join(PYTHONS)}")

    model_dir = smollm2_hf_dir(RewriterSettings().models_dir)
    queries = varied_queries(args.queries)
    report: dict[str, Any] = {
        "model": model_dir.name,
        "queries": len(queries),
        "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, {platform.python_version()}",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "engines": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        query_file = Path(tmp) / "queries.json"
        query_file.write_text(json.dumps(queries))
        for engine in engines:
            result = run_engine(engine, model_dir, query_file, Path(tmp) / f"{engine}.json", extra)
            result["summary"] = summarise(result)
            report["engines"][engine] = result
    first = report["engines"][engines[0]]
    report["n"], report["sampling"] = first["n"], first["sampling"]
    report["concurrency_gain"] = {
        engine: result["summary"]["16"]["tokens_per_s"] / result["summary"]["1"]["tokens_per_s"]
        for engine, result in report["engines"].items()
    }
    if len(engines) == 2:
        hf, vllm = report["engines"]["hf"], report["engines"]["vllm"]
        report["ratio_at_16"] = {
            key: vllm["summary"]["16"][key] / hf["summary"]["16"][key]
            for key in ("tokens_per_s", "rewrites_per_s")
        }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2))
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report), file=sys.stderr)


if __name__ == "__main__":
    main()
