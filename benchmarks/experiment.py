"""make experiment: what each ingredient of the synthesized data buys the retriever on held-out queries.

On the Home Depot dev labels, split by query with the seeded split `synth judge train` uses (seed 13,
30% held out for evaluation; with --split dev the evaluation queries are a dev part of the synthesis
side instead, for choosing settings, and the held-out queries are not read at all):

1. the local system (catalog rewrites, the default embedding judge) synthesizes every synthesis query
   (`synth synthesize`); base MiniLM is evaluated with and without the rewriter's rewrites;
2. with the SmolLM2 rewriter, a sample of the synthesis queries is synthesized again (LLM rewrites,
   its own store) and queries are generated from a product sample (`synth synthesize --from-catalog`,
   its own store); the rewriter round: the rewriter is trained on that store's rewards (`synth train
   rewriter`), base and trained rewriter are evaluated on a sample of the evaluation queries with the
   same seeded sampling (`synth eval rewriter`), and the sample is synthesized again with the trained
   rewriter (its own store);
3. the business judge (the teacher) is trained on the synthesis side's labels, with hard negatives from
   the first store, and a weaker one as today's default trains it; both are evaluated on the held-out
   queries (`synth eval judge`);
4. one retriever per ablation row (`synth train retriever`), each evaluated on the evaluation queries
   (`synth eval retrieval`), next to a supervised reference trained on 12,000 of the synthesis side's
   human labels, the same on every one of them, and synthetic data plus those labels;
5. reports/experiment.md and .json: the table, each row's gain over base and as a share of the label
   gain, the teachers' and the rewriters' evaluation, and the time of every step.

Every step is the user-facing command run as its own process. A re-run resumes: finished steps are
recorded in the work directory and skipped, synthesis skips queries done, training resumes from its
checkpoint, the teacher's scores and the catalog embeddings are cached.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rewriter_steps import REWRITE_DEADLINES, ROOT, SYNTH, base_env  # noqa: E402

DEV_SEED_OFFSET = 1000  # the dev split of the synthesis side uses seed + this
DEV_FRACTION = 0.2  # of the synthesis side


@dataclass(frozen=True)
class Row:
    name: str
    what: str
    train: list[str] | None  # synth train retriever arguments; None: the base model
    stores: tuple[str, ...] = ()
    synthetic: bool = True  # trained on synthesized data only (no human label)


@dataclass
class Steps:
    """Finished steps and their seconds, kept in the work directory so a re-run skips them."""

    path: Path
    done: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Steps:
        return cls(path, json.loads(path.read_text()) if path.is_file() else {})

    def run(
        self,
        name: str,
        command: list[str],
        env: dict[str, str],
        ok: tuple[int, ...] = (0,),
        again: bool = False,
    ) -> str:
        """Run one CLI step (stderr streams through); return its stdout, from the record if this very
        command ran before (a step whose arguments changed runs again). `again`: run it anyway, for a
        command that finds its own finished work (training: the same arguments may mean new code
        defaults); the recorded seconds stay when it printed the same result."""
        arguments = [arg for arg in command[3:] if not arg.startswith("http://")]  # ports change
        before = self.done.get(name, {})
        if before.get("command") == arguments and not again:
            print(f"== {name}: done ({before['seconds']} s)", file=sys.stderr, flush=True)
            return str(before["stdout"])
        print(f"\n== {name}: {' '.join(command[3:])}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        finished = subprocess.run(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        print(finished.stdout, file=sys.stderr)
        if finished.returncode not in ok:
            raise SystemExit(f"{name} failed with exit code {finished.returncode}")
        seconds = time.perf_counter() - started
        if before.get("command") == arguments and before.get("stdout") == finished.stdout:
            seconds = float(before["seconds"])  # found, not done again: the run's own time stands
        self.record(name, seconds, finished.stdout, arguments)
        return finished.stdout

    def record(self, name: str, seconds: float, stdout: str = "", command: list[str] | None = None) -> None:
        self.done[name] = {"seconds": round(seconds, 1), "stdout": stdout, "command": command}
        self.path.write_text(json.dumps(self.done, indent=2))

    def seconds(self) -> dict[str, float]:
        return {name: float(step["seconds"]) for name, step in self.done.items()}


def split_rows(labels: Path, seed: int, eval_fraction: float, split: str) -> dict[str, list[list[str]]]:
    """The label file's rows by side: `train` (the synthesis side, whose labels the teachers and the
    supervised rows read) and `eval` (the evaluation queries), each with the header."""
    from services.lab.labels import query_bucket

    with labels.open(newline="", encoding="utf-8") as handle:
        header, *body = list(csv.reader(handle))
    column = header.index("search_term")
    sides: dict[str, list[list[str]]] = {"train": [header], "eval": [header]}
    for row in body:
        held = query_bucket(row[column], seed) < eval_fraction
        if split == "dev":
            if held:
                continue  # the held-out queries are not read when choosing settings
            held = query_bucket(row[column], seed + DEV_SEED_OFFSET) < DEV_FRACTION
        sides["eval" if held else "train"].append(row)
    return sides


def write_inputs(args: argparse.Namespace, work: Path) -> dict[str, Path]:
    """Label files of each side and the query lists to synthesize, in the work directory."""
    sides = split_rows(args.data / "dev_labels.csv", args.seed, args.eval_fraction, args.split)
    files = {}
    for side, rows_of_side in sides.items():
        path = work / f"labels-{side}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows_of_side)
        files[f"labels_{side}"] = path
    column = sides["train"][0].index("search_term")
    queries = sorted({row[column] for row in sides["train"][1:]})
    if args.synth_queries and len(queries) > args.synth_queries:
        queries = sorted(random.Random(args.seed).sample(queries, args.synth_queries))
    files["queries"] = work / "synthesis-queries.txt"
    files["queries"].write_text("".join(q + "\n" for q in queries), encoding="utf-8")
    llm = sorted(random.Random(args.seed + 1).sample(queries, min(args.llm_queries, len(queries))))
    files["llm_queries"] = work / "llm-queries.txt"
    files["llm_queries"].write_text("".join(q + "\n" for q in llm), encoding="utf-8")
    print(f"{len(queries)} synthesis queries, {len(llm)} with LLM rewrites", file=sys.stderr)
    return files


def run_system(
    args: argparse.Namespace,
    state: Path,
    store: str,
    engines: str,
    steps: Steps,
    work: list[Any],
    rewriter_model: str | None = None,
) -> None:
    """Start the local system (its store under state/<store>), run the steps, stop it (the sink flushes)."""
    from services.cli.system import LocalSystem, Ports

    env = system_env(args, state, store, engines, rewriter_model)
    system = LocalSystem(state_dir=state, catalog=args.data / "products.csv", ports=Ports.free(), workers=0,
                         base_env=env)  # fmt: skip
    started = time.perf_counter()
    system.start()
    steps.record(f"start system ({engines} rewriter, store {store})", time.perf_counter() - started)
    try:
        for name, command, ok in work:
            steps.run(name, [*command, "--url", system.gateway_url] if command[3] == "synthesize" else command,
                      system.env(), ok)  # fmt: skip
    finally:
        system.stop()


def system_env(
    args: argparse.Namespace, state: Path, store: str, engines: str, rewriter_model: str | None = None
) -> dict[str, str]:
    model = Path(rewriter_model) if rewriter_model else None
    return base_env(state, engines, model) | {"TAILSYNTH_STORE_DIR": str(state / store), **REWRITE_DEADLINES}


def rows(args: argparse.Namespace, labels_train: Path, teachers: dict[str, str]) -> list[Row]:
    catalog = str(args.data / "products.csv")
    common = ["--catalog", catalog, "--threads", str(args.threads), "--quiet"]
    contrast = ["--loss", "mnrl", "--lr", "5e-5", "--batch-size", "64"]
    today = [*contrast, "--max-pairs", "12000"]
    distil = ["--loss", "listwise", "--teacher-model", teachers[args.teacher]]
    lexical = ["--lexical-depth", str(args.lexical_depth)]
    dense_only = ["--lexical-depth", "0"]  # the judged candidates alone (BM25's are the default)
    distil_only = ["--no-confident-stage"]  # no contrastive stage after distillation (the default has one)
    refresh = ["--refresh-every", str(args.refresh_every)]
    labels = ["--labels", str(labels_train), "--on-error", "skip"]
    found = [
        Row("base", "all-MiniLM-L6-v2 as packaged", None),
        Row(
            "today",
            "today's recipe: MNRL on accepted pairs (embedding judge), 12,000 pairs",
            today,
            ("store",),
        ),
        Row(
            "distil (weak teacher)",
            "listwise distillation (+ in-batch MNRL, weight 1) of a judge trained as before (1 epoch, "
            "20,000 pairs, no mined negatives)",
            ["--loss", "listwise", "--teacher-model", teachers["weak"], *dense_only, *distil_only],
            ("store",),
        ),
        Row(
            "distil (weak teacher) + lexical candidates",
            f"the same, and each query's top {args.lexical_depth} products by BM25 over the catalog, scored "
            "by the weak teacher",
            ["--loss", "listwise", "--teacher-model", teachers["weak"], *lexical, *distil_only],
            ("store",),
        ),
        Row(
            "distil (weak teacher) + lexical + confident stage",
            "the same, then MNRL over each query's candidates the weak teacher scores >= 0.8 (at most 8)",
            ["--loss", "listwise", "--teacher-model", teachers["weak"], *lexical],
            ("store",),
        ),
        Row(
            "distil",
            f"listwise distillation of the {args.teacher} teacher over each query's judged candidates (+ "
            "in-batch MNRL over the teacher's best, weight 1)",
            distil + dense_only + distil_only,
            ("store",),
        ),
        Row(
            "+ lexical candidates",
            f"... and each query's top {args.lexical_depth} products by BM25 over the catalog, scored by "
            "the teacher",
            distil + lexical + distil_only,
            ("store",),
        ),
        Row(
            "+ confident stage",
            "... then MNRL over each query's candidates the teacher scores >= 0.8 (at most 8)",
            distil + lexical,
            ("store",),
        ),
        Row(
            "+ refreshed negatives",
            f"... and every {args.refresh_every} steps the current model's top 50 per query, scored by the "
            "teacher"
            if args.refresh_every
            else "... (--refresh-every 0: no refresh)",
            distil + lexical + refresh,
            ("store",),
        ),
    ]
    stores: tuple[str, ...] = ("store",)
    if args.products:
        stores += ("store-products",)
        found.append(
            Row(
                "+ product-side queries",
                f"... and queries generated from {args.products} products (round-trip filtered)",
                distil + lexical + refresh,
                stores,
            )
        )
    if args.llm_queries:
        stores += ("store-llm",)
        found.append(
            Row(
                "+ LLM rewrites",
                f"... and {args.llm_queries} queries synthesized again with SmolLM2 rewrites",
                distil + lexical + refresh,
                stores,
            )
        )
        if args.rewriter_round:
            stores = (*stores[:-1], "store-llm-trained")
            found.append(
                Row(
                    "+ trained rewriter",
                    "... with those queries' rewrites by the rewriter trained on its own rewards instead",
                    distil + lexical + refresh,
                    stores,
                )
            )
    found += [
        Row("supervised reference", "today's recipe on 12,000 of the synthesis side's human labels "
            "(relevance >= 2.33), no synthetic data", [*today, *labels], ("empty",), synthetic=False),
        Row("labels only", "the same recipe on every relevant labelled pair of the synthesis side (what "
            "the synthetic data adds to the labels: 'synthetic + labels' against this row)",
            [*contrast, *labels], ("empty",), synthetic=False),
        Row("synthetic + labels", "the last synthetic row with the synthesis side's labels among the "
            "candidates (their human grade as the target) and their relevant pairs in the confident stage", distil + lexical + refresh + labels, stores, synthetic=False),
    ]  # fmt: skip
    for row in found:
        if row.train is not None:
            row.train.extend(common)
    return found


def train_row(row: Row, state: Path, steps: Steps, env: dict[str, str]) -> str:
    assert row.train is not None
    stores = [arg for store in row.stores for arg in ("--store", str(state / store))]
    (state / "empty").mkdir(exist_ok=True)
    # Always run: the model's run key makes an unchanged run a lookup, and a changed default trains again.
    out = steps.run(
        f"train: {row.name}", [*SYNTH, "train", "retriever", *stores, *row.train], env, again=True
    )
    return out.strip().splitlines()[-1]


def eval_row(args: argparse.Namespace, row: Row, model: str | None, files: dict[str, Path], work: Path,
             steps: Steps, env: dict[str, str]) -> Path:  # fmt: skip
    out = work / "eval" / row.name.replace(" ", "-").replace("+", "plus").strip("-")
    command = [
        *SYNTH, "eval", "retrieval", "--catalog", str(args.data / "products.csv"), "--labels",
        str(files["labels_eval"]), "--k", args.k, "--out", str(out), "--on-error", "skip",
    ]  # fmt: skip
    base = work / "eval" / "base"
    if model is None:
        command += ["--rewrites"]
    else:
        command += ["--model", model, "--rewrites-file", str(base / "rewrites.jsonl")]
        command += ["--compare", str(base / "retrieval.json")]
    steps.run(f"eval: {row.name}", command, env)
    return out / "retrieval.json"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "home_depot")
    parser.add_argument("--work", type=Path, default=ROOT / ".tailsynth" / "experiment")
    parser.add_argument(
        "--split",
        choices=["eval", "dev"],
        default="eval",
        help="eval: report on the held-out queries; dev: on a dev part of the synthesis side",
    )
    parser.add_argument("--seed", type=int, default=13, help="the query split's seed (as synth judge train)")
    parser.add_argument("--eval-fraction", type=float, default=0.3)
    parser.add_argument("--synth-queries", type=int, default=0, help="synthesis queries sampled (0: all)")
    parser.add_argument(
        "--llm-queries",
        type=int,
        default=500,
        help="synthesis queries synthesized again with SmolLM2 rewrites (0: skip the row)",
    )
    parser.add_argument(
        "--products", type=int, default=500, help="products to generate queries from (0: skip)"
    )
    parser.add_argument(
        "--rewriter-round",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train the rewriter on the LLM store, evaluate it, synthesize the LLM sample again with it",
    )
    parser.add_argument("--rewriter-eval-queries", type=int, default=200, help="evaluation queries sampled")
    parser.add_argument(
        "--teacher",
        choices=["strong", "weak"],
        default="strong",
        help="the teacher of the 'distil' row and every row after it (the weak one trains in a fraction of "
        "the time)",
    )
    parser.add_argument("--refresh-every", type=int, default=60, help="0: the refresh rows never refresh")
    parser.add_argument(
        "--lexical-depth", type=int, default=30, help="BM25 candidates per query of the lexical row and after"
    )
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--k", default="10,100")
    parser.add_argument("--out", type=Path, default=ROOT / "reports")
    parser.add_argument("--only", help="comma-separated row names to train and evaluate (default: all)")
    args = parser.parse_args()  # fmt: skip

    labels, catalog = args.data / "dev_labels.csv", args.data / "products.csv"
    if not labels.is_file() or not catalog.is_file():
        print(f"no Home Depot data under {args.data} (dev_labels.csv, products.csv)", file=sys.stderr)
        return 2
    work = args.work / args.split
    work.mkdir(parents=True, exist_ok=True)
    state = work / "state"
    steps = Steps.load(work / "steps.json")
    files = write_inputs(args, work)
    env = system_env(args, state, "store", "catalog")
    synthesize = [*SYNTH, "synthesize", "--concurrency", str(args.concurrency)]

    # 1. Synthesis over every synthesis query; base MiniLM with the rewriter's rewrites.
    run_system(args, state, "store", "catalog", steps, [
        ("synthesize (catalog rewrites)", [*synthesize, "--queries", str(files["queries"])], (0, 1)),
        ("eval: base", eval_command_base(args, files, work), (0,)),
    ])  # fmt: skip
    # 2. The teachers the chosen rows distil, trained on the synthesis side's labels only, evaluated on the
    # held-out queries.
    wanted = set(args.only.split(",")) if args.only else None
    recipes = {
        "weak": ["--epochs", "1", "--max-pairs", "20000"],
        "strong": ["--negatives", str(state / "store")],
    }
    placeholders = {name: f"<teacher {name}>" for name in recipes}
    used = {arg for row in rows(args, files["labels_train"], placeholders) if row.train is not None
            and (not wanted or row.name in wanted) for arg in row.train}  # fmt: skip
    teachers = {name: train_teacher(args, files, state, steps, env, name, recipe)
                for name, recipe in recipes.items() if placeholders[name] in used}  # fmt: skip
    # 3. SmolLM2: LLM rewrites of a sample, queries generated from products (each in its own store).
    if args.llm_queries:
        run_system(args, state, "store-llm", "hf,catalog", steps, [
            ("synthesize (LLM rewrites)", [*synthesize, "--queries", str(files["llm_queries"])], (0, 1)),
        ])  # fmt: skip
    rewriters = (
        rewriter_round(args, files, state, work, steps) if args.llm_queries and args.rewriter_round else {}
    )
    if args.products:
        run_system(args, state, "store-products", "hf", steps, [
            ("synthesize (product-side queries)", [*synthesize, "--from-catalog", str(catalog), "--sample",
             str(args.products), "--seed", str(args.seed)], (0, 1)),
        ])  # fmt: skip
    # 4. One retriever per row.
    reports: dict[str, Path] = {"base": work / "eval" / "base" / "retrieval.json"}
    chosen = rows(args, files["labels_train"], placeholders | teachers)
    for row in chosen:
        if row.train is None or (wanted and row.name not in wanted):
            continue
        model = train_row(row, state, steps, env)
        reports[row.name] = eval_row(args, row, model, files, work, steps, env)
    report(args, chosen, reports, teachers, rewriters, work, steps, files)
    return 0


def rewriter_round(
    args: argparse.Namespace, files: dict[str, Path], state: Path, work: Path, steps: Steps
) -> dict[str, Any]:
    """Train the rewriter on the LLM store's rewards, evaluate base and trained on a sample of the evaluation
    queries (same seeded sampling), synthesize the LLM sample again with it; returns the two evaluations."""
    trained = steps.run("rewriter: synth train rewriter", [
        *SYNTH, "train", "rewriter", "--store", str(state / "store-llm"), "--seed", str(args.seed),
        "--threads", str(args.threads), "--quiet",
    ], system_env(args, state, "store-llm", "catalog")).strip().splitlines()[-1]  # fmt: skip
    evaluations = {}
    work_items = []
    for name, model in (("base", "base"), ("trained", trained)):
        out = work / "eval" / f"rewriter-{name}"
        evaluations[name] = out / "rewriter-eval.json"
        work_items.append((f"rewriter: synth eval rewriter ({name})", [
            *SYNTH, "eval", "rewriter", "--labels", str(files["labels_eval"]), "--catalog",
            str(args.data / "products.csv"), "--on-error", "skip", "--seed", str(args.seed), "--sample",
            str(args.rewriter_eval_queries), "--model", model, "--label", name, "--out", str(out),
        ], (0,)))  # fmt: skip
    run_system(args, state, "store-rewriter-eval", "catalog", steps, work_items)
    run_system(args, state, "store-llm-trained", "hf,catalog", steps, [
        ("synthesize (trained rewriter)", [*SYNTH, "synthesize", "--concurrency", str(args.concurrency),
         "--queries", str(files["llm_queries"])], (0, 1)),
    ], rewriter_model=trained)  # fmt: skip
    return {"model": trained} | {name: json.loads(path.read_text()) for name, path in evaluations.items()}


def eval_command_base(args: argparse.Namespace, files: dict[str, Path], work: Path) -> list[str]:
    return [
        *SYNTH, "eval", "retrieval", "--catalog", str(args.data / "products.csv"), "--labels",
        str(files["labels_eval"]), "--k", args.k, "--out", str(work / "eval" / "base"), "--on-error", "skip",
        "--rewrites",
    ]  # fmt: skip


def train_teacher(args: argparse.Namespace, files: dict[str, Path], state: Path, steps: Steps,
                  env: dict[str, str], name: str, extra: list[str]) -> str:  # fmt: skip
    """A business judge on the synthesis side's labels (every query of labels-train.csv), evaluated on
    the evaluation queries; returns its model directory."""
    catalog = str(args.data / "products.csv")
    common = ["--catalog", catalog, "--on-error", "skip", "--threads", str(args.threads)]
    out = steps.run(f"teacher ({name}): synth judge train", [
        *SYNTH, "judge", "train", "--labels", str(files["labels_train"]), "--eval-fraction", "0", *common,
        "--seed", str(args.seed), "--quiet", *extra,
    ], env)  # fmt: skip
    model = out.split(" written to ")[1].split(" and made CURRENT")[0].strip()
    judge_env = {**env, "TAILSYNTH_JUDGE_CROSS_ENCODER_MODEL": model}
    steps.run(f"teacher ({name}): synth eval judge", [
        *SYNTH, "eval", "judge", "--labels", str(files["labels_eval"]), *common[:4], "--engines",
        "cross_encoder", "--out", str(state.parent / "eval" / f"teacher-{name}"),
    ], judge_env)  # fmt: skip
    return model


def relative(new: float | None, old: float | None) -> str:
    return f"{(new / old - 1) * 100:+.1f}%" if new is not None and old else "n/a"


def report(args: argparse.Namespace, chosen: list[Row], reports: dict[str, Path], teachers: dict[str, str],
           rewriters: dict[str, Any], work: Path, steps: Steps, files: dict[str, Path]) -> None:  # fmt: skip
    metrics = {
        name: json.loads(path.read_text())["metrics"] for name, path in reports.items() if path.is_file()
    }
    base = metrics["base"]["query"]
    names = [n for n in base if n != "queries"]
    label_gain = metrics.get("supervised reference", {}).get("query", {}).get("recall@100")
    teacher_evals = {}
    for name in teachers:
        path = work / "eval" / f"teacher-{name}" / "judge-eval.json"
        if path.is_file():
            teacher_evals[name] = json.loads(path.read_text())
    results = {
        "dataset": args.data.name, "split": args.split, "seed": args.seed, "eval_fraction": args.eval_fraction,
        "evaluation_queries": int(base.get("queries", 0)),
        "synthesis_queries": len(files["queries"].read_text().splitlines()),
        "rows": [{"name": r.name, "what": r.what, "train": r.train, "stores": r.stores,
                  "synthetic": r.synthetic, "metrics": metrics.get(r.name)} for r in chosen],
        "teachers": teachers, "teacher_of_rows": args.teacher, "teacher_eval": teacher_evals,
        "timings_s": steps.seconds(),
        "rewriter_round": {name: {"summary": value["summary"], "retrieval": value["retrieval"]}
                           if isinstance(value, dict) else value for name, value in rewriters.items()},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }  # fmt: skip
    lines = [
        "# What each ingredient of the synthesized data buys the retriever (Home Depot)",
        "",
        f"{results['synthesis_queries']} synthesis queries; {results['evaluation_queries']} "
        f"{'held-out' if args.split == 'eval' else 'dev'} evaluation queries with a relevant product "
        f"(split by query, seed {args.seed}; no label of an evaluation query is read before evaluation); "
        f"the {args.teacher} teacher from the 'distil' row on; {results['machine']}.",
        "",
        "| row | " + " | ".join(names) + " | recall@100 vs base | share of the label gain |",
        "|---|" + "---|" * (len(names) + 2),
    ]
    for row in chosen:
        found = metrics.get(row.name, {}).get("query")
        if not found:
            continue
        gain = found["recall@100"] - base["recall@100"]
        share = (
            f"{gain / (label_gain - base['recall@100']):.2f}"
            if label_gain and label_gain != base["recall@100"]
            else "-"
        )
        cells = " | ".join(f"{found[n]:.4f}" for n in names)
        lines.append(
            f"| {row.name} | {cells} | {relative(found['recall@100'], base['recall@100'])} | {share} |"
        )
    lines += ["", "Rows:", ""] + [f"- **{r.name}**: {r.what}" for r in chosen if r.name in metrics]
    if "union" in metrics["base"]:
        union = metrics["base"]["union"]
        lines += [
            "",
            f"Base with the catalog rewriter's rewrites (union of each text's top k): recall@100 "
            f"{union['recall@100']:.4f} ({relative(union['recall@100'], base['recall@100'])}).",
        ]
    lines += [
        "",
        "Teachers (the business judge, cross-encoder) on the evaluation queries' labelled pairs:",
        "",
        "| teacher | AUC | precision at recall 0.5 | recall at precision 0.85 |",
        "|---|---|---|---|",
    ]
    for name, evaluation in teacher_evals.items():
        engine = evaluation["judges"]["cross_encoder"]
        lines.append(
            f"| {name} | {engine['auc']:.3f} | {engine['precision_at_recall_0.5']:.3f} | "
            f"{engine['recall_at_target_precision']:.3f} |"
        )
    lines += rewriter_lines(rewriters)
    lines += ["", "| step | seconds |", "|---|---|"]
    lines += [f"| {name} | {seconds} |" for name, seconds in results["timings_s"].items()]
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.split == "eval" else "-dev"
    (args.out / f"experiment{suffix}.json").write_text(json.dumps(results, indent=2))
    (args.out / f"experiment{suffix}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def rewriter_lines(rewriters: dict[str, Any]) -> list[str]:
    """The rewriter round's table: base vs trained SmolLM2 on the same evaluation queries and sampling."""
    if not rewriters:
        return []
    lines = [
        "",
        f"The rewriter round (trained model {rewriters['model']}), LLM candidates only, same seeded sampling:",
        "",
        "| rewriter | queries | intent pass | dropped | mean reward | distinct/query | union recall@100 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("base", "trained"):
        summary, union = rewriters[name]["summary"], rewriters[name]["retrieval"]["union"]
        reward = "-" if summary["mean_reward"] is None else f"{summary['mean_reward']:.4f}"  # no candidate
        lines.append(
            f"| {name} | {summary['queries']} | {summary['intent_pass_share']:.3f} | "
            f"{summary['dropped_share']:.3f} | {reward} | {summary['distinct_per_query']} | "
            f"{union['recall@100']:.4f} |"
        )
    return lines


if __name__ == "__main__":
    sys.exit(main())
