"""`synth judge train|calibrate` and `synth eval judge`: the business judge's life cycle."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from services.core.settings import load_settings
from services.lab.judge.train import TrainConfig
from services.lab.labels import LabelSet

DEFAULTS = TrainConfig()


def load_label_set(args: argparse.Namespace) -> LabelSet:
    from services.lab.labels import load_labels, split_by_query

    labels = load_labels(
        args.labels,
        args.catalog,
        scale=args.scale,
        relevant_at=args.relevant_at,
        esci_substitutes=args.esci_substitutes,
        on_error=args.on_error,
        description=args.description,
    )
    print(labels.report(), file=sys.stderr)
    split = getattr(args, "split", "all")
    if split != "all":
        train, held = split_by_query(labels.pairs, args.eval_fraction, args.seed)
        labels.pairs = held if split == "eval" else train
        print(f"using the {split} split: {len(labels.pairs)} pairs", file=sys.stderr)
    return labels


def _train(args: argparse.Namespace) -> int:
    from services.core.errors import InvalidInput
    from services.judge.config import JudgeSettings
    from services.lab.judge.train import train
    from services.lab.retriever.data import catalog_texts

    labels = load_label_set(args)
    config = TrainConfig(
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_length=args.max_length,
        learning_rate=args.learning_rate,
        max_pairs=args.max_pairs,
        eval_fraction=args.eval_fraction,
        calibration_fraction=args.calibration_fraction,
        negatives_per_query=args.negatives_per_query,
        checkpoint_every=args.checkpoint_every,
    )
    if not 0 <= config.calibration_fraction < 1 or config.negatives_per_query < 0:
        raise InvalidInput("--calibration-fraction must be in [0, 1) and --negatives-per-query at least 0")
    for store in args.negatives or []:
        if not store.is_dir():
            raise InvalidInput(f"--negatives {store}: no training store there")
    settings = load_settings(JudgeSettings)
    try:
        result = train(
            labels,
            settings.models_dir,
            config,
            resume=args.resume,
            progress=not args.quiet,
            threads=args.threads,
            negatives=args.negatives or [],
            texts=catalog_texts(args.catalog),
        )
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; rerun the same command with --resume to continue from the last "
            f"checkpoint (every {config.checkpoint_every} steps)",
            file=sys.stderr,
        )
        raise
    metrics = result.manifest.get("eval", {})
    shown = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if not k.startswith("threshold"))
    print(f"model {result.version} written to {result.path} and made CURRENT ({result.steps} steps)")
    if shown:
        print(f"held-out queries: {shown}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from services.judge.config import JudgeSettings
    from services.lab.judge.calibrate import calibrate

    labels = load_label_set(args)
    settings = load_settings(JudgeSettings)
    engines = args.engines.split(",") if args.engines else settings.engine_list
    result = calibrate(labels, settings, engines, args.target_precision, args.mode, args.out)
    print(result.summary())
    return 0


def _eval_judge(args: argparse.Namespace) -> int:
    from services.judge.config import JudgeSettings
    from services.lab.judge.evaluate import evaluate

    labels = load_label_set(args)
    settings = load_settings(JudgeSettings)
    engines = args.engines.split(",") if args.engines else settings.engine_list
    report = evaluate(labels, settings, engines, args.out, args.policy, args.target_precision)
    print(report.table())
    print(f"report: {report.json_path}\nplot:   {report.plot_path}")
    return 0


def scale_arguments(parser: argparse.ArgumentParser, on_error: str) -> None:
    """How label values read (scale, relevance cut, ESCI substitutes) and what bad rows do."""
    parser.add_argument(
        "--scale", default="auto", help="label scale: auto, esci, wands or LO-HI such as 1-3, 1-4"
    )
    parser.add_argument(
        "--relevant-at",
        type=float,
        help="numeric scales: least value that counts as relevant (default 2.33 on 1-3, 3 on 1-4)",
    )
    parser.add_argument(
        "--esci-substitutes", action="store_true", help="ESCI: count S (substitute) as relevant too"
    )
    parser.add_argument(
        "--on-error",
        choices=["fail", "skip"],
        default=on_error,
        help=f"bad rows (listed by line either way): fail, or skip them (default {on_error})",
    )


def label_arguments(parser: argparse.ArgumentParser, split: bool) -> None:
    parser.add_argument("--labels", type=Path, required=True, help="CSV, TSV or JSONL of graded pairs")
    parser.add_argument(
        "--catalog",
        type=Path,
        help="catalog CSV/JSONL the product ids join to (not needed for inline titles)",
    )
    scale_arguments(parser, on_error="fail")
    parser.add_argument(
        "--description", action="store_true", help="append the start of inline product descriptions"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULTS.seed, help="seeds the query split (and training)"
    )
    parser.add_argument(
        "--eval-fraction", type=float, default=DEFAULTS.eval_fraction, help="share of queries held out"
    )
    if split:
        parser.add_argument(
            "--split",
            choices=["all", "eval", "train"],
            default="all",
            help="use every pair, or one side of the query split `judge train` makes (same seed/fraction)",
        )


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    judge = commands.add_parser("judge", help="business judge: train and calibrate").add_subparsers(
        dest="action", required=True
    )
    train = judge.add_parser(
        "train", help="fine-tune the cross-encoder judge from MiniLM on labelled pairs (versioned model)"
    )
    label_arguments(train, split=False)
    train.add_argument("--epochs", type=int, default=DEFAULTS.epochs)
    train.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    train.add_argument("--max-length", type=int, default=DEFAULTS.max_length, help="tokens per pair")
    train.add_argument("--learning-rate", type=float, default=DEFAULTS.learning_rate)
    train.add_argument(
        "--max-pairs",
        type=int,
        default=DEFAULTS.max_pairs,
        help="train on a seeded sample of this many pairs (0: all, the default)",
    )
    train.add_argument(
        "--calibration-fraction",
        type=float,
        default=DEFAULTS.calibration_fraction,
        help="share of the training queries kept apart to fit the Platt calibration on",
    )
    train.add_argument(
        "--negatives",
        type=Path,
        action="append",
        help="training store whose judged, rejected, unlabelled products of the training queries are "
        "added as negatives (repeatable)",
    )
    train.add_argument("--negatives-per-query", type=int, default=DEFAULTS.negatives_per_query)
    train.add_argument("--checkpoint-every", type=int, default=DEFAULTS.checkpoint_every, help="steps")
    train.add_argument("--resume", action="store_true", help="continue this run from its last checkpoint")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    train.set_defaults(func=_train)

    calibrate = judge.add_parser(
        "calibrate", help="pick per-engine and ensemble thresholds for a target precision; write a policy"
    )
    label_arguments(calibrate, split=True)
    calibrate.add_argument("--target-precision", type=float, required=True)
    calibrate.add_argument("--engines", help="comma-separated (default: TAILSYNTH_JUDGE_ENGINES)")
    calibrate.add_argument("--mode", choices=["all", "ensemble"], default="ensemble", help="policy mode")
    calibrate.add_argument("--out", type=Path, default=Path("policy.json"), help="policy file to write")
    calibrate.set_defaults(func=_calibrate)


def add_eval_command(evaluation: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`synth eval judge` in the `eval` group (services/cli/evaluate.py)."""
    judge_eval = evaluation.add_parser(
        "judge", help="AUC, precision/recall at the accepting threshold, agreement per grade; JSON + PNG"
    )
    label_arguments(judge_eval, split=True)
    judge_eval.add_argument("--engines", help="comma-separated (default: TAILSYNTH_JUDGE_ENGINES)")
    judge_eval.add_argument(
        "--policy", type=Path, help="policy file with the thresholds (default: the judge's settings)"
    )
    judge_eval.add_argument("--target-precision", type=float, default=0.85)
    judge_eval.add_argument("--out", type=Path, default=Path("reports/judge-eval"), help="output folder")
    judge_eval.set_defaults(func=_eval_judge)
