"""make rewriter-experiment: does training the rewriter on its own rewards make its rewrites better?

On the Home Depot dev labels, split by query with the seeded split `synth judge train` uses:
1. start the local system with the base rewriter and `synth synthesize` a sample of the synthesis queries;
2. stop it (the sink flushes the store) and start it again with the LLM-free catalog engine only (the
   evaluations start their own rewriter per model);
3. `synth train rewriter` SFT in each variant (target format list or single, near-copies of the query
   kept or dropped from the targets, the prompt with or without few-shot turns), evaluated on dev
   queries of the synthesis side (`synth eval rewriter --split train --queries dev`); the best one goes
   on to DPO, with each --dpo-pairs value compared the same way (and GRPO with --grpo-steps);
4. `synth eval rewriter` of the base and the trained model on held-out queries, same seeded sampling;
5. reports/rewriter-experiment.md and .json with every measure and the time of every step.
A re-run resumes every step (the synthesis journal, the training checkpoints and finished models, the
cached catalog embeddings).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rewriter_steps import (  # noqa: E402
    REWRITE_DEADLINES,
    ROOT,
    SYNTH,
    Steps,
    base_env,
    local_system,
    split_queries,
    synthesize,
)


def train_command(
    args: argparse.Namespace,
    store: Path,
    stages: str,
    variant: tuple[str, str, str],
    steps: int | None = None,
    batch_size: int | None = None,
) -> list[str]:
    fmt, near_copies, prompt = variant
    command = [*SYNTH, "train", "rewriter", "--store", str(store), "--stages", stages, "--format", fmt]
    command += ["--near-copies", near_copies, "--prompt", prompt]
    command += [
        "--epochs",
        str(args.epochs),
        "--steps",
        str(args.steps if steps is None else steps),
        "--batch-size",
        str(args.batch_size if batch_size is None else batch_size),
        "--threads",
        str(args.threads),
        "--precision",
        args.precision,
    ]
    if args.grpo_steps and "grpo" in stages:
        command += ["--grpo-steps", str(args.grpo_steps)]
    return command


def eval_command(args: argparse.Namespace, model: str, out: Path, label: str, extra: list[str]) -> list[str]:
    return [
        *SYNTH, "eval", "rewriter", "--labels", str(args.data / "dev_labels.csv"),
        "--catalog", str(args.data / "products.csv"), "--on-error", "skip", "--seed", str(args.seed),
        "--eval-fraction", str(args.eval_fraction), "--model", model, "--label", label,
        "--num-rewrites", str(args.num_rewrites), "--out", str(out), *extra,
    ]  # fmt: skip


def evaluate(
    steps: Steps, args: argparse.Namespace, env: dict[str, str], model: str, name: str, extra: list[str]
) -> dict[str, Any]:
    out = args.work / "eval" / name
    if not (out / "rewriter-eval.json").is_file():
        steps.run(f"eval {name}", eval_command(args, model, out, name, extra), env)
    report: dict[str, Any] = json.loads((out / "rewriter-eval.json").read_text())
    return report


def variant_name(variant: tuple[str, str, str]) -> str:
    fmt, near_copies, prompt = variant
    return f"{fmt}, near-copies {near_copies}, {prompt}"


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "home_depot")
    parser.add_argument("--work", type=Path, default=ROOT / ".tailsynth" / "rewriter-experiment")
    parser.add_argument("--synth-queries", type=int, default=300, help="synthesis queries sampled")
    parser.add_argument(
        "--dev-queries", type=int, default=60, help="other synthesis-side queries for settings"
    )
    parser.add_argument(
        "--eval-queries", type=int, default=200, help="held-out queries sampled for evaluation"
    )
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--eval-fraction", type=float, default=0.3)
    parser.add_argument("--synth-engines", default="hf,catalog", help="rewriter engines while synthesizing")
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--num-rewrites", type=int, default=4)
    parser.add_argument(
        "--formats", default="single", help="SFT formats compared on the dev queries (list, single)"
    )
    parser.add_argument(
        "--near-copies",
        default="drop",
        help="near-copies of the query kept in or dropped from the targets (keep,drop compares them)",
    )
    parser.add_argument(
        "--prompts",
        default="rewrite_v1,rewrite_zero_shot_v1",
        help="prompts trained on (with and without few-shot turns), compared on the dev queries",
    )
    parser.add_argument(
        "--synthesize",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="--no-synthesize: train on the store as it is (a run stopped part-way through synthesis)",
    )
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=0, help="sft and dpo steps each (0: the epochs decide)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--dpo-steps", type=int, help="dpo steps (default: --steps)")
    parser.add_argument("--dpo-batch-size", type=int, help="dpo batch (default: --batch-size)")
    parser.add_argument(
        "--dpo-pairs",
        default="4",
        help="DPO's --pairs-per-query values compared on the dev queries (DPO's time grows with them)",
    )
    parser.add_argument("--grpo-steps", type=int, default=0, help="GRPO steps after DPO (0: none)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--precision", default="auto", help="synth train rewriter --precision")
    parser.add_argument("--out", type=Path, default=ROOT / "reports")
    args = parser.parse_args()

    labels, catalog = args.data / "dev_labels.csv", args.data / "products.csv"
    if not labels.is_file() or not catalog.is_file():
        print(f"no Home Depot data under {args.data} (dev_labels.csv, products.csv)", file=sys.stderr)
        return 2
    split = split_queries(
        labels, catalog, args.seed, args.eval_fraction, args.synth_queries, args.dev_queries
    )
    print(
        f"{len(split.synthesis)} synthesis, {len(split.dev)} dev, {split.held_out} held-out queries",
        file=sys.stderr,
    )
    state = args.work / "state"
    steps = Steps(state, base_env(state, args.synth_engines))
    timings_file = args.work / "timings.json"
    if timings_file.is_file():
        steps.timings.update(json.loads(timings_file.read_text()))
    if args.synthesize:
        with local_system(state, catalog, steps.env, steps.timings, "start system (base rewriter)") as env:
            synthesize(steps, env, split.synthesis, args.concurrency, "synthesize base")
        timings_file.write_text(json.dumps(steps.timings))
    store = state / "store"
    from services.lab.rewriter.data import load_store

    stored = load_store(store)
    print(stored.report(), file=sys.stderr)
    dev_file = args.work / "dev-queries.txt"
    dev_file.write_text("".join(q + "\n" for q in split.dev), encoding="utf-8")

    results: dict[str, Any] = {"formats": {}}
    precision = "" if args.precision == "auto" else f", {args.precision}"  # in the steps' names
    eval_env = base_env(state, "catalog") | REWRITE_DEADLINES
    with local_system(state, catalog, eval_env, steps.timings, "start system (evaluation)") as env:
        dev_extra = ["--split", "train", "--queries", str(dev_file)]
        variants = [
            (f, n, p)
            for f in args.formats.split(",")
            for n in args.near_copies.split(",")
            for p in args.prompts.split(",")
        ]
        if len(variants) > 1:  # a choice to make: on the dev queries
            results["dev_base"] = evaluate(steps, args, env, "base", "dev-base", dev_extra)
        for variant in variants:
            name = variant_name(variant)
            command = train_command(args, store, "sft", variant)
            model = last_line(steps.run(f"train sft ({name}{precision})", command, env))
            results["formats"][name] = {"model": model, "variant": variant}
            if len(variants) > 1:
                results["formats"][name]["dev"] = evaluate(
                    steps, args, env, model, f"dev-sft-{'-'.join(variant)}", dev_extra
                )
        best = max(
            variants,
            key=lambda v: (
                results["formats"][variant_name(v)]
                .get("dev", {})
                .get("summary", {})
                .get("mean_reward_per_sample", 0)
            ),
        )
        sft_model = results["formats"][variant_name(best)]["model"]
        dpo_pairs = [int(n) for n in args.dpo_pairs.split(",")]
        results["dpo"] = {}
        for pairs in dpo_pairs:
            command = train_command(args, store, "dpo", best, args.dpo_steps, args.dpo_batch_size)
            command += ["--base", sft_model, "--pairs-per-query", str(pairs)]
            name = f"train dpo ({variant_name(best)}, {pairs} pairs a query{precision})"
            model = last_line(steps.run(name, command, env))
            manifest = json.loads((Path(model) / "tailsynth-model.json").read_text())
            results["dpo"][pairs] = {"model": model, "seconds": manifest["train_seconds"]}
            # Always on dev (half a minute): runs of other settings (--precision...) compare there.
            results["dpo"][pairs]["dev"] = evaluate(
                steps, args, env, model, f"dev-{Path(model).name}", dev_extra
            )
        best_pairs = max(
            dpo_pairs,
            key=lambda n: (
                results["dpo"][n].get("dev", {}).get("summary", {}).get("mean_reward_per_sample", 0)
            ),
        )
        trained = results["dpo"][best_pairs]["model"]
        if args.grpo_steps:
            command = [*train_command(args, store, "grpo", best), "--base", trained]
            trained = last_line(steps.run(f"train grpo ({variant_name(best)}{precision})", command, env))
        held = ["--split", "eval", "--sample", str(args.eval_queries)]
        # Named by the sample and the model: a re-run with other settings evaluates its own.
        sample = f"held-out-{args.eval_queries}"
        results["base"] = evaluate(steps, args, env, "base", f"{sample}-base", held)
        results["trained"] = evaluate(steps, args, env, trained, f"{sample}-{Path(trained).name}", held)
        timings_file.write_text(json.dumps(steps.timings))
    results |= {
        "best_format": variant_name(best),
        "best_dpo_pairs": best_pairs,
        "trained_model": trained,
        "manifest": json.loads((Path(trained) / "tailsynth-model.json").read_text()),
        "synthesis_queries": len(stored.queries),
        "store": stored.report(),
        "dev_queries": len(split.dev),
        "held_out_queries": split.held_out,
        "synth_engines": args.synth_engines,
        "timings_s": steps.timings,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rewriter-experiment.json").write_text(json.dumps(results, indent=2, default=str))
    (args.out / "rewriter-experiment.md").write_text(markdown(results))
    print((args.out / "rewriter-experiment.md").read_text())
    return 0


def fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def row(name: str, report: dict[str, Any]) -> str:
    s, r = report["summary"], report["retrieval"]
    cells = [
        s["queries"], s["intent_pass_share"], s["dropped_share"], s["mean_reward"], s["mean_reward_per_sample"],
        *(s["components"][c] for c in ("relevance", "increment", "alignment", "diversity")),
        s["distinct_per_query"], r["query"]["recall@100"], r["union"]["recall@100"], r["increment"]["recall@100"],
    ]  # fmt: skip
    return f"| {name} | " + " | ".join(fmt(c) for c in cells) + " |"


def relative(new: float | None, old: float | None) -> str:
    return f"{(new / old - 1) * 100:+.1f}%" if new is not None and old else "n/a"


def markdown(results: dict[str, Any]) -> str:
    head = (
        "| rewriter | queries | intent pass | dropped | mean reward | reward/sample | relevance | increment | "
        "alignment | diversity | distinct/query | recall@100 query | union recall@100 | increment@100 |"
    )
    lines = [
        "# The rewriter trained on its own rewards (Home Depot)",
        "",
        f"{results['synthesis_queries']} synthesis queries synthesized with engines {results['synth_engines']}; "
        f"settings chosen on {results['dev_queries']} other synthesis-side queries; evaluated on a seeded "
        f"sample of the {results['held_out_queries']} held-out queries; every rewriter served by the hf "
        f"engine alone with the same seeded sampling per query; {results['machine']}.",
        "",
        "## Held-out queries",
        "",
        head,
        "|---" * 14 + "|",
        row("base SmolLM2-135M", results["base"]),
        row(f"trained ({results['manifest']['version']})", results["trained"]),
        "",
    ]
    b, t = results["base"], results["trained"]
    lines += [
        f"- intent pass share: {relative(t['summary']['intent_pass_share'], b['summary']['intent_pass_share'])} "
        "(target: at least x2)",
        f"- mean reward: {relative(t['summary']['mean_reward'], b['summary']['mean_reward'])} (target +30%)",
        f"- union recall@100: {relative(t['retrieval']['union']['recall@100'], b['retrieval']['union']['recall@100'])} "
        "(target +5%)",
        "",
    ]
    if "dev_base" in results:
        lines += [
            "## SFT variants on the dev queries",
            "",
            head,
            "|---" * 14 + "|",
            row("base", results["dev_base"]),
        ]
        lines += [row(f"sft {name}", entry["dev"]) for name, entry in results["formats"].items()]
        lines += ["", f"Chosen: `{results['best_format']}` (highest reward per sample).", ""]
    else:
        lines += [f"SFT variant: `{results['best_format']}` only (no comparison in this run).", ""]
    lines += [
        f"## DPO on the dev queries (from the chosen SFT model; {results['manifest'].get('precision', 'fp32')})",
        "",
        head,
        "|---" * 14 + "|",
    ]
    lines += [row(f"dpo, {n} pairs a query", entry["dev"]) for n, entry in results["dpo"].items()]
    lines += ["", "| DPO variant | training seconds |", "|---|---|"]
    lines += [f"| {n} pairs a query | {entry['seconds']} |" for n, entry in results["dpo"].items()]
    lines += [""]
    if len(results["dpo"]) > 1:
        lines += [f"Chosen: {results['best_dpo_pairs']} pairs a query (highest reward per sample).", ""]
    lines += ["| step | seconds |", "|---|---|"]
    lines += [f"| {name} | {seconds} |" for name, seconds in results["timings_s"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
