"""`synth train retriever`: fine-tune the retriever's encoder on the training store's accepted pairs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from services.cli.judge import scale_arguments
from services.cli.rewriter_commands import add_train_command as add_rewriter_train
from services.core.settings import load_settings
from services.lab.retriever.train import TrainConfig

DEFAULTS = TrainConfig()


def _retriever(args: argparse.Namespace) -> int:
    from services.core.errors import InvalidInput
    from services.lab.labels import LabelSet, load_labels
    from services.lab.retriever.data import load_training_data
    from services.lab.retriever.train import train
    from services.retriever.config import RetrieverSettings
    from services.store.config import StoreSettings

    if args.catalog and not args.catalog.is_file():
        raise InvalidInput(f"catalog {args.catalog} does not exist")
    labels: LabelSet | None = None
    if args.labels:
        labels = load_labels(
            args.labels,
            args.catalog,
            scale=args.scale,
            relevant_at=args.relevant_at,
            esci_substitutes=args.esci_substitutes,
            on_error=args.on_error,
        )
    store = args.store or load_settings(StoreSettings).store_dir
    data = load_training_data(store, args.catalog, labels, args.hard_negatives)
    print(data.report(), file=sys.stderr)
    config = TrainConfig(
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        max_length=args.max_length,
        max_pairs=args.max_pairs,
        hard_negatives=args.hard_negatives,
        checkpoint_every=args.checkpoint_every,
    )
    try:
        result = train(
            data,
            config,
            load_settings(RetrieverSettings).models_dir,
            out=args.out,
            base=args.base,
            threads=args.threads,
            progress=not args.quiet,
            max_steps=args.max_steps,
        )
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; the same command continues from the last finished step (a killed run: "
            f"from the last checkpoint, every {config.checkpoint_every} steps)",
            file=sys.stderr,
        )
        raise
    if not result.finished:
        print(
            f"stopped after step {result.done} of {result.steps} (--max-steps); the same command "
            "without --max-steps continues",
            file=sys.stderr,
        )
        return 0
    loss = result.manifest.get("loss", {})
    print(
        f"model {result.version}: {result.steps} steps, final loss {loss.get('final')}, "
        f"{result.manifest.get('train_seconds')} s (resumed from step {result.resumed_from})",
        file=sys.stderr,
    )
    print(result.path)  # last on stdout, for scripts
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    train = commands.add_parser("train", help="fine-tune models on the training store").add_subparsers(
        dest="model", required=True
    )
    retriever = train.add_parser(
        "retriever",
        help="fine-tune the retriever's encoder (MiniLM) on the store's accepted pairs (versioned model)",
    )
    retriever.add_argument("--store", type=Path, help="the Parquet store (default: TAILSYNTH_STORE_DIR)")
    retriever.add_argument(
        "--catalog",
        type=Path,
        help="catalog CSV/JSONL: products are trained on the text the index embeds (title, brand, "
        "category); also joins --labels product ids",
    )
    retriever.add_argument("--labels", type=Path, help="human labels (CSV, TSV, JSONL) to add as positives")
    scale_arguments(retriever, on_error="skip")
    retriever.add_argument(
        "--hard-negatives",
        action=argparse.BooleanOptionalAction,
        default=DEFAULTS.hard_negatives,
        help="add a judge-rejected product of the same query to each pair, where the store has one",
    )
    retriever.add_argument("--base", type=Path, help="model to continue from (default: packaged MiniLM)")
    retriever.add_argument(
        "--out", type=Path, help="output directory (default: <state dir>/models/retriever/<version>)"
    )
    retriever.add_argument("--seed", type=int, default=DEFAULTS.seed)
    retriever.add_argument("--epochs", type=int, default=DEFAULTS.epochs)
    retriever.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    retriever.add_argument("--lr", type=float, default=DEFAULTS.learning_rate, help="peak learning rate")
    retriever.add_argument(
        "--max-length", type=int, default=DEFAULTS.max_length, help="tokens per text while training"
    )
    retriever.add_argument(
        "--max-pairs", type=int, default=DEFAULTS.max_pairs, help="train on a seeded sample (0: all)"
    )
    retriever.add_argument(
        "--checkpoint-every", type=int, default=DEFAULTS.checkpoint_every, help="steps between checkpoints"
    )
    retriever.add_argument(
        "--max-steps",
        type=int,
        default=0,
        help="stop after this step of the run, resumable (0: run to the end)",
    )
    retriever.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    retriever.add_argument("--quiet", action="store_true", help="no progress bar")
    retriever.set_defaults(func=_retriever)
    add_rewriter_train(train)
