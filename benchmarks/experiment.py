"""make experiment: does training the retriever on synthesized pairs improve retrieval on held-out queries?

On the Home Depot dev labels, split by query with the seeded split `synth judge train` uses:
1. start the local system on the Home Depot catalog;
2. `synth synthesize` over a sample of the synthesis queries (their labels are never read);
3. `synth eval retrieval` of base MiniLM on the evaluation queries, alone and with the running
   rewriter's rewrites (saved, so the trained model is evaluated with the very same rewrites);
4. stop the system (the sink flushes the training store), `synth train retriever` on the store;
5. `synth eval retrieval` of the trained model with the saved rewrites;
6. reports/experiment.md and .json: recall@k, nDCG@10, MRR per model and mode, the time of every step,
   and the recall@k curves of base vs trained as a PNG.

Every step is the user-facing command run as its own process, so the experiment also proves the commands.
A re-run resumes: synthesis skips queries done for this pipeline version, training resumes from its
checkpoint, evaluation reuses cached catalog embeddings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SYNTH = [sys.executable, "-m", "services.cli.main"]


def split_queries(labels: Path, catalog: Path, seed: int, eval_fraction: float) -> tuple[list[str], int]:
    """(synthesis queries, number of evaluation queries) from the seeded split by query."""
    from services.lab.labels import load_labels, split_by_query

    found = load_labels(labels, catalog, on_error="skip")
    train, held = split_by_query(found.pairs, eval_fraction, seed)
    synthesis = sorted({p.query for p in train})
    return synthesis, len({p.query for p in held})


def run_step(name: str, command: list[str], env: dict[str, str], timings: dict[str, float]) -> str:
    """Run one CLI step, streaming its stderr (progress); return its stdout. Fails the experiment on error."""
    print(f"\n== {name}: {' '.join(command[3:])}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    timings[name] = round(time.perf_counter() - started, 1)
    print(done.stdout, file=sys.stderr)
    # synthesize exits 1 when some queries failed: they are in its journal and the rest still counts.
    if done.returncode not in (0, 1) or (done.returncode == 1 and name != "synthesize"):
        raise SystemExit(f"{name} failed with exit code {done.returncode}")
    return done.stdout


def eval_command(args: argparse.Namespace, out: Path, extra: list[str]) -> list[str]:
    return [
        *SYNTH,
        "eval",
        "retrieval",
        "--catalog",
        str(args.data / "products.csv"),
        "--labels",
        str(args.data / "dev_labels.csv"),
        "--split",
        "eval",
        "--seed",
        str(args.seed),
        "--eval-fraction",
        str(args.eval_fraction),
        "--k",
        args.k,
        "--out",
        str(out),
        *extra,
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "home_depot")
    parser.add_argument("--work", type=Path, default=ROOT / ".tailsynth" / "experiment")
    parser.add_argument("--synth-queries", type=int, default=1000, help="synthesis queries sampled (0: all)")
    parser.add_argument(
        "--seed", type=int, default=13, help="the query split's seed (as `synth judge train`)"
    )
    parser.add_argument("--eval-fraction", type=float, default=0.3)
    # The SmolLM2 rewriter costs ~3 s a query on 2 idle cores (and 20-50 s while the cores are busy):
    # the default is the LLM-free catalog engine; pass "hf,catalog" (or vllm) where the cores allow it.
    parser.add_argument("--rewriter-engines", default="catalog")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-pairs", type=int, default=12000, help="training pairs sampled (0: all)")
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--k", default="10,100")
    parser.add_argument("--out", type=Path, default=ROOT / "reports")
    args = parser.parse_args()

    labels, catalog = args.data / "dev_labels.csv", args.data / "products.csv"
    if not labels.is_file() or not catalog.is_file():
        print(f"no Home Depot data under {args.data} (dev_labels.csv, products.csv)", file=sys.stderr)
        return 2
    from services.cli.system import LocalSystem, Ports

    args.work.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    synthesis, eval_queries = split_queries(labels, catalog, args.seed, args.eval_fraction)
    if args.synth_queries and len(synthesis) > args.synth_queries:
        synthesis = sorted(random.Random(args.seed).sample(synthesis, args.synth_queries))
    queries_file = args.work / "synthesis-queries.txt"
    queries_file.write_text("".join(q + "\n" for q in synthesis), encoding="utf-8")
    print(f"{len(synthesis)} synthesis queries, {eval_queries} evaluation queries", file=sys.stderr)

    state = args.work / "state"
    env = {
        **os.environ,
        "TAILSYNTH_STATE_DIR": str(state),
        "TAILSYNTH_REWRITER_ENGINES": args.rewriter_engines,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    env.pop("TAILSYNTH_REDIS_URL", None)
    system = LocalSystem(state_dir=state, catalog=catalog, ports=Ports.free(), workers=0, base_env=env)
    started = time.perf_counter()
    system.start()
    timings["start system (incl. index build)"] = round(time.perf_counter() - started, 1)
    step_env = {**system.env()}
    base_out, trained_out = args.work / "eval-base", args.work / "eval-trained"
    try:
        run_step(
            "synthesize",
            [
                *SYNTH,
                "synthesize",
                "--queries",
                str(queries_file),
                "--url",
                system.gateway_url,
                "--concurrency",
                str(args.concurrency),
            ],
            step_env,
            timings,
        )
        run_step("eval base (+ rewrites)", eval_command(args, base_out, ["--rewrites"]), step_env, timings)
    finally:
        system.stop()
    store = state / "store"
    model = (
        run_step(
            "train retriever",
            [
                *SYNTH,
                "train",
                "retriever",
                "--store",
                str(store),
                "--catalog",
                str(catalog),
                "--epochs",
                str(args.epochs),
                "--max-pairs",
                str(args.max_pairs),
                "--lr",
                str(args.lr),
                "--threads",
                str(args.threads),
            ],
            step_env,
            timings,
        )
        .strip()
        .splitlines()[-1]
    )
    rewrites = base_out / "rewrites.jsonl"
    run_step(
        "eval trained (+ rewrites)",
        eval_command(
            args,
            trained_out,
            [
                "--model",
                model,
                "--rewrites-file",
                str(rewrites),
                "--compare",
                str(base_out / "retrieval.json"),
            ],
        ),
        step_env,
        timings,
    )
    report(args, synthesis, eval_queries, base_out, trained_out, model, timings)
    return 0


def report(
    args: argparse.Namespace,
    synthesis: list[str],
    eval_queries: int,
    base_out: Path,
    trained_out: Path,
    model: str,
    timings: dict[str, float],
) -> None:
    base = json.loads((base_out / "retrieval.json").read_text())
    trained = json.loads((trained_out / "retrieval.json").read_text())
    manifest = json.loads((Path(model) / "tailsynth-model.json").read_text())
    results: dict[str, Any] = {
        "dataset": str(args.data.name),
        "seed": args.seed,
        "eval_fraction": args.eval_fraction,
        "synthesis_queries": len(synthesis),
        "evaluation_queries": eval_queries,
        "rewriter_engines": args.rewriter_engines,
        "judge_engines": os.environ.get("TAILSYNTH_JUDGE_ENGINES", "embedding (default)"),
        "model": manifest,
        "base": base,
        "trained": trained,
        "timings_s": timings,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "experiment.json").write_text(json.dumps(results, indent=2))
    (args.out / "experiment.md").write_text(markdown(results))
    shutil.copyfile(trained_out / "retrieval-compare.png", args.out / "experiment-recall.png")
    print((args.out / "experiment.md").read_text())


def relative(new: float | None, old: float | None) -> str:
    return f"{(new / old - 1) * 100:+.1f}%" if new is not None and old else "n/a"


def cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def markdown(results: dict[str, Any]) -> str:
    base, trained = results["base"]["metrics"], results["trained"]["metrics"]
    names = [name for name in base["query"] if name != "queries"]
    base_counts = results["base"]["counts"]
    labels_note = (
        "human labels of the synthesis queries reach training only through the business judge"
        if "cross_encoder" in results["judge_engines"]
        else "no human label is used for training"
    )
    lines = [
        "# Close the loop: base MiniLM vs trained on synthesized pairs (Home Depot held-out queries)",
        "",
        f"{results['synthesis_queries']} synthesis queries, {base_counts['queries']} evaluation queries "
        f"with a relevant product (split by query, seed {results['seed']}; no query on both sides, no "
        f"evaluation label read before evaluation); rewriter engines {results['rewriter_engines']}, judge "
        f"engines {results['judge_engines']} ({labels_note}); {results['machine']}.",
        "",
        "| model | mode | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for model, metrics in (("base", base), ("trained", trained)):
        for mode, values in metrics.items():
            lines.append(f"| {model} | {mode} | " + " | ".join(cell(values.get(n)) for n in names) + " |")
    lines += ["", "Relative change:", ""]
    for mode in base:
        if mode in trained:
            changes = ", ".join(
                f"{n} {relative(trained[mode].get(n), base[mode].get(n))}" for n in names if n in base[mode]
            )
            lines.append(f"- trained vs base, {mode}: {changes}")
    for model, metrics in (("base", base), ("trained", trained)):
        for mode in ("union", "fused"):
            if mode in metrics:
                changes = ", ".join(
                    f"{n} {relative(metrics[mode][n], metrics['query'][n])}"
                    for n in names
                    if n in metrics[mode]
                )
                lines.append(f"- {model}, {mode} vs query alone: {changes}")
    model = results["model"]
    data = model["data"]
    lines += [
        "",
        f"Training store: {data['pairs_read']} accepted pairs over {data['queries']} queries and "
        f"{data['products']} products, {data['hard_negatives']} with a hard negative; trained on "
        f"{data['trained_on']['examples']} of them ({model['steps']} steps, loss {model['loss']['first']:.3f} "
        f"-> {model['loss']['final']:.3f}, {model['pairs_per_second']} pairs/s).",
        "",
    ]
    lines += ["| step | seconds |", "|---|---|"]
    lines += [f"| {name} | {seconds} |" for name, seconds in results["timings_s"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
