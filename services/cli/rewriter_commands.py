"""`synth train rewriter` and `synth eval rewriter`: the rewriter's LLM trained on its own rewards."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from services.core.settings import load_settings
from services.lab.rewriter.data import NEAR_COPIES
from services.lab.rewriter.stages import PRECISIONS
from services.lab.rewriter.train import STAGES, TrainConfig

DEFAULTS = TrainConfig()


def _stages(text: str) -> list[str]:
    from services.core.errors import InvalidInput

    stages = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if not stages or unknown:
        raise InvalidInput(f"--stages {text!r}: expected a comma-separated list of {', '.join(STAGES)}")
    return stages


def _train(args: argparse.Namespace) -> int:
    from services.lab.rewriter.train import train_stages
    from services.pipeline.config import PipelineSettings
    from services.rewriter.config import RewriterSettings
    from services.store.config import StoreSettings

    stages = _stages(args.stages)
    config = TrainConfig(
        fmt=args.format,
        seed=args.seed,
        epochs=args.epochs,
        steps=args.steps,
        grpo_steps=args.grpo_steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        candidates=args.candidates,
        min_reward=args.min_reward,
        near_copies=args.near_copies,
        margin=args.margin,
        pairs_per_query=args.pairs_per_query,
        beta=args.beta,
        max_length=args.max_length,
        num_generations=args.num_generations,
        dev_fraction=args.dev_fraction,
        prompt=args.prompt,
        precision=args.precision,
        checkpoint_every=args.checkpoint_every,
    )
    config.check()
    store = args.store or load_settings(StoreSettings).store_dir
    pipeline = load_settings(PipelineSettings) if "grpo" in stages else None
    try:
        results = train_stages(
            store,
            stages,
            config,
            load_settings(RewriterSettings),
            pipeline,
            base=args.base,
            out=args.out,
            threads=args.threads,
            progress=not args.quiet,
            stop_after=args.max_steps,
        )
    except KeyboardInterrupt:
        print("\ninterrupted; the same command continues from the last checkpoint", file=sys.stderr)
        raise
    for result in results:
        log = result.manifest.get("log", {})
        if result.finished:
            print(
                f"{result.version}: {result.steps} steps, loss {log.get('loss', {}).get('first')} -> "
                f"{log.get('loss', {}).get('final')}, {result.manifest.get('train_seconds')} s "
                f"(resumed from step {result.resumed_from})",
                file=sys.stderr,
            )
    last = results[-1]
    if not last.finished:
        why = "interrupted" if last.interrupted else "--max-steps"
        print(
            f"{last.version}: stopped after step {last.done} of {last.steps} ({why}); the same command "
            "continues",
            file=sys.stderr,
        )
        return 130 if last.interrupted else 0
    print(last.path)  # last on stdout, for scripts
    return 0


def add_train_command(train: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = train.add_parser(
        "rewriter",
        help="train the rewriter's LLM on the store's rewards: SFT (rejection sampling), DPO (reward "
        "order), GRPO (live pipeline reward); versioned model for TAILSYNTH_REWRITER_MODEL_DIR",
    )
    p.add_argument("--store", type=Path, help="the Parquet store (default: TAILSYNTH_STORE_DIR)")
    p.add_argument(
        "--stages",
        default="sft,dpo",
        help="comma-separated stages, each from the previous one's model: sft, dpo, grpo (grpo needs the "
        "retriever and judge at TAILSYNTH_PIPELINE_*_TARGET)",
    )
    p.add_argument(
        "--format",
        choices=("list", "single"),
        default=DEFAULTS.fmt,
        help="list: one target listing several rewrites, one per line; single: one rewrite per sample",
    )
    p.add_argument(
        "--base", type=Path, help="model to start from (default: TAILSYNTH_REWRITER_MODEL_DIR or SmolLM2)"
    )
    p.add_argument("--out", type=Path, help="the last stage's output (default: <models>/rewriter/<version>)")
    p.add_argument(
        "--prompt",
        default=DEFAULTS.prompt,
        help="rewrite prompt to train on, which serving the model then uses (default: the one the base "
        "model was trained on, else TAILSYNTH_REWRITER_PROMPT)",
    )
    p.add_argument("--seed", type=int, default=DEFAULTS.seed)
    p.add_argument("--epochs", type=float, default=DEFAULTS.epochs, help="sft and dpo epochs")
    p.add_argument(
        "--steps", type=int, default=DEFAULTS.steps, help="sft and dpo steps (0: the epochs decide)"
    )
    p.add_argument("--grpo-steps", type=int, default=DEFAULTS.grpo_steps, help="online RL steps")
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    p.add_argument("--lr", type=float, default=0.0, help="learning rate (0: sft 5e-5, dpo 5e-6, grpo 2e-6)")
    p.add_argument(
        "--candidates", type=int, default=DEFAULTS.candidates, help="best accepted rewrites kept per query"
    )
    p.add_argument(
        "--min-reward", type=float, default=DEFAULTS.min_reward, help="least reward of an SFT target"
    )
    p.add_argument(
        "--near-copies",
        choices=NEAR_COPIES,
        default=DEFAULTS.near_copies,
        help="drop: no SFT target or DPO chosen rewrite that is a near-copy of its query (only its own "
        "words, or a typo or plural apart)",
    )
    p.add_argument(
        "--margin", type=float, default=DEFAULTS.margin, help="least reward gap of a preference pair"
    )
    p.add_argument("--pairs-per-query", type=int, default=DEFAULTS.pairs_per_query)
    p.add_argument("--beta", type=float, default=-1.0, help="KL weight (< 0: dpo 0.1, grpo 0)")
    p.add_argument("--max-length", type=int, default=DEFAULTS.max_length, help="tokens of prompt + target")
    p.add_argument("--num-generations", type=int, default=DEFAULTS.num_generations, help="GRPO group size")
    p.add_argument(
        "--dev-fraction",
        type=float,
        default=DEFAULTS.dev_fraction,
        help="store queries held out of training (seeded by query) to choose settings on",
    )
    p.add_argument("--checkpoint-every", type=int, default=DEFAULTS.checkpoint_every, help="steps")
    p.add_argument("--max-steps", type=int, default=0, help="stop after this step, resumable (0: to the end)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=DEFAULTS.precision,
        help="fp32, or bf16 mixed precision (auto: bf16 where the GPU or CPU computes it natively)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)


def wait_serving(target: str, process: subprocess.Popen[bytes], timeout_s: float = 600.0) -> None:
    """Until the rewriter at target answers SERVING; an error if its process exits first."""
    import asyncio
    import time

    from services.core.errors import ConfigError
    from services.pipeline.clients import RewriterClient

    async def wait() -> None:
        client = RewriterClient(target, 5.0)
        deadline = time.monotonic() + timeout_s
        try:
            while not await client.healthy():
                if process.poll() is not None:
                    raise ConfigError(
                        f"the rewriter exited with code {process.returncode}; see its log above"
                    )
                if time.monotonic() > deadline:
                    raise ConfigError(f"the rewriter at {target} is not SERVING after {timeout_s:.0f} s")
                await asyncio.sleep(0.5)
        finally:
            await client.close()

    asyncio.run(wait())


@contextlib.contextmanager
def served_rewriter(model: str | None, engines: str, fallback: str) -> Iterator[str]:
    """The rewriter to evaluate: with --model, its own `python -m services.rewriter` on a free port
    (`base`: the packaged SmolLM2), stopped afterwards; else the one at fallback."""
    if model is None:
        yield fallback
        return
    from services.core.redis_server import free_port

    target = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if k != "TAILSYNTH_REWRITER_MODEL_DIR"}
    env |= {"TAILSYNTH_REWRITER_BIND": target, "TAILSYNTH_REWRITER_ENGINES": engines}
    env |= {"TAILSYNTH_REWRITER_METRICS_PORT": "0"}
    if model != "base":
        env["TAILSYNTH_REWRITER_MODEL_DIR"] = str(Path(model).resolve())
    process = subprocess.Popen([sys.executable, "-m", "services.rewriter"], env=env, start_new_session=True)
    try:
        wait_serving(target, process)
        yield target
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _eval(args: argparse.Namespace) -> int:
    import asyncio
    import json
    import random
    import time

    from services.cli.judge import load_label_set
    from services.core.catalog import load_catalog
    from services.core.errors import InvalidInput
    from services.core.text import normalize_query
    from services.lab.retriever.evaluate import labelled_queries, parse_ks
    from services.lab.rewriter.evaluate import (
        DEFINITIONS,
        EvalConfig,
        score_queries,
        summarize,
        union_recall,
        write_report,
    )
    from services.pipeline.config import PipelineSettings

    ks = parse_ks(args.k)
    if args.catalog is None:
        raise InvalidInput("--catalog is required: recall is measured over the whole catalog")
    compare = json.loads(args.compare.read_text()) if args.compare else None
    began = time.monotonic()
    timings: dict[str, float] = {}
    labels = load_label_set(args)
    products = load_catalog(args.catalog)
    labelled = labelled_queries(labels, products).queries
    if args.queries:
        wanted = {
            normalize_query(q) for q in args.queries.read_text(encoding="utf-8").splitlines() if q.strip()
        }
        labelled = [q for q in labelled if normalize_query(q.text) in wanted]
    if args.sample and len(labelled) > args.sample:
        labelled = random.Random(args.seed).sample(labelled, args.sample)
    if not labelled:
        raise InvalidInput("no labelled query with a relevant product to evaluate")
    config = EvalConfig(num_rewrites=args.num_rewrites, top_k=args.top_k, ks=tuple(ks), seed=args.seed)
    pipeline = load_settings(PipelineSettings)
    step = time.monotonic()
    with served_rewriter(args.model, args.engines, pipeline.rewriter_target) as target:
        timings["start_rewriter_s"] = time.monotonic() - step
        step = time.monotonic()
        outcomes, described = asyncio.run(score_queries(pipeline, target, [q.text for q in labelled], config))
        timings["rewrite_and_score_s"] = time.monotonic() - step
    retrieval = union_recall(outcomes, labelled, ks)
    timings["total_s"] = time.monotonic() - began
    data: dict[str, Any] = {
        "label": args.label or (Path(args.model).name if args.model else target),
        "model": args.model or "served",
        "rewriter": described,
        "labels": labels.provenance(),
        "sampling": {
            "num_rewrites": args.num_rewrites,
            "seed": args.seed,
            "per_query_seed": "sha256(seed, normalised query)",
            "engines": args.engines if args.model else "served",
        },
        "summary": summarize(outcomes),
        "retrieval": retrieval,
        "definitions": DEFINITIONS,
        "timings": {k: round(v, 1) for k, v in timings.items()},
        "per_query": [o.__dict__ for o in outcomes],
    }
    json_path, plot_path = write_report(data, args.out, compare)
    s = data["summary"]
    print(
        f"{data['label']}: {s['queries']} queries, intent pass {s['intent_pass_share']:.3f}, "
        f"dropped {s['dropped_share']:.3f}, mean reward {s['mean_reward']}, distinct/query "
        f"{s['distinct_per_query']}, union recall@{ks[-1]} {retrieval['union'][f'recall@{ks[-1]}']:.4f} "
        f"(query alone {retrieval['query'][f'recall@{ks[-1]}']:.4f})"
    )
    print(f"report: {json_path}\nplot:   {plot_path}")
    return 0


def add_eval_command(evaluation: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from services.cli.judge import label_arguments

    p = evaluation.add_parser(
        "rewriter",
        help="a rewriter on labelled queries: intent pass share, dropped share, rewards, distinct rewrites, "
        "union recall@k of query + rewrites; JSON + PNG",
    )
    label_arguments(p, split=True)
    p.add_argument(
        "--model",
        help="serve this model directory for the evaluation (`base`: the packaged SmolLM2); default: the "
        "rewriter at TAILSYNTH_PIPELINE_REWRITER_TARGET",
    )
    p.add_argument("--engines", default="hf", help="engines of the rewriter started for --model")
    p.add_argument("--queries", type=Path, help="only these queries (one a line)")
    p.add_argument("--sample", type=int, default=0, help="a seeded sample of this many queries (0: all)")
    p.add_argument("--num-rewrites", type=int, default=4)
    p.add_argument("--top-k", type=int, default=20, help="products retrieved per text, as synthesis does")
    p.add_argument("--k", default="10,100", help="comma-separated cut-offs for recall@k")
    p.add_argument("--label", help="the name of this run in reports")
    p.add_argument("--compare", type=Path, help="another run's rewriter-eval.json: both in the PNG")
    p.add_argument("--out", type=Path, default=Path("reports/rewriter-eval"), help="output folder")
    p.set_defaults(func=_eval)
