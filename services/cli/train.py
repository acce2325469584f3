"""`synth train retriever`: fine-tune the retriever's encoder on the training store: distil the teacher's
scores over each query's judged candidates, then contrast each query with the candidates the teacher is
confident about (the default: services/lab/retriever/confident.py), or contrast accepted pairs (mnrl)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from services.cli.judge import scale_arguments
from services.cli.rewriter_commands import add_train_command as add_rewriter_train
from services.core.settings import load_settings
from services.lab.retriever.confident import ConfidentStage
from services.lab.retriever.lexical import DEFAULT_DEPTH as LEXICAL_DEPTH
from services.lab.retriever.objectives import LOSSES
from services.lab.retriever.train import TrainConfig

DEFAULTS = TrainConfig()
STAGE = ConfidentStage()


def _retriever(args: argparse.Namespace) -> int:
    from services.core.catalog import load_catalog
    from services.core.encoder import resolve_device
    from services.core.errors import InvalidInput
    from services.judge.config import JudgeSettings
    from services.lab.labels import LabelSet, load_labels
    from services.lab.retriever.data import add_lists, load_training_data
    from services.lab.retriever.distributed import join
    from services.lab.retriever.train import Inputs, train
    from services.retriever.config import RetrieverSettings
    from services.store.config import StoreSettings

    config = TrainConfig(
        loss=args.loss,
        teacher=args.teacher,
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        list_size=args.list_size,
        student_temperature=args.student_temperature,
        contrastive_weight=args.contrastive_weight,
        teacher_temperature=args.teacher_temperature,
        learning_rate=args.lr,
        max_length=args.max_length,
        max_pairs=args.max_pairs,
        hard_negatives=args.hard_negatives,
        refresh_every=args.refresh_every,
        refresh_depth=args.refresh_depth,
        lexical_depth=lexical_depth(args),
        checkpoint_every=args.checkpoint_every,
    )
    config.check()
    stage = ConfidentStage(args.confident_score, args.confident_per_query)
    stage.check()
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
    stores = args.store or [load_settings(StoreSettings).store_dir]
    retriever = load_settings(RetrieverSettings)
    data = load_training_data(stores, args.catalog, labels, args.hard_negatives)
    world = join(resolve_device(retriever.device))
    teacher = None
    try:
        if config.distills:
            judge = load_settings(JudgeSettings)
            if args.teacher_model is not None:
                judge = judge.model_copy(update={"cross_encoder_model": args.teacher_model})
            teacher = teacher_for(config.teacher, judge, retriever.models_dir, args.catalog)
            # The main process scores what the store lacks; the others then find every score cached.
            if not world.main:
                world.barrier()
            add_lists(
                data, teacher, progress=not args.quiet and world.main, lexical_depth=config.lexical_depth
            )
            if world.main:
                world.barrier()
        if world.main:
            print(data.report(), file=sys.stderr)
        products = load_catalog(args.catalog) if args.catalog and config.refresh_every else None
        staged = config.distills and args.confident_stage
        # The stage's pairs come from the lists as they are before distillation (a refresh grows them), so a
        # re-run that finds the distilled model trains the stage on the same pairs.
        stage_data = stage.data(data) if staged else None
        result = train(
            Inputs(data, teacher, products, world),
            config,
            retriever.models_dir,
            out=None if staged else args.out,
            base=args.base,
            threads=args.threads,
            progress=not args.quiet,
            max_steps=args.max_steps,
        )
        if stage_data is not None and result.finished:
            if world.main:
                print(f"distilled: {result.path}; the contrastive stage follows", file=sys.stderr)
                counts = stage_data.counts()
                print(
                    f"contrastive stage: {counts['examples']} pairs over {counts['queries']} queries "
                    f"({counts['examples'] - counts['from_labels']} the teacher's confident candidates, "
                    f"{counts['from_labels']} relevant labelled pairs)",
                    file=sys.stderr,
                )
            result = train(
                Inputs(stage_data, world=world),
                stage.config(config),
                retriever.models_dir,
                out=args.out,
                base=result.path,
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
    finally:
        if teacher is not None:
            teacher.close()
        world.close()
    if not world.main:
        return 0
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


def lexical_depth(args: argparse.Namespace) -> int:
    """--lexical-depth as given, else the default where it applies (a catalog to search, a teacher to score)."""
    if args.lexical_depth is not None:
        return int(args.lexical_depth)
    return LEXICAL_DEPTH if args.catalog is not None and args.loss != "mnrl" else 0


def teacher_for(engine: str, settings: Any, models_dir: Path, catalog: Path | None) -> Any:
    """The teacher engine, loaded, its score cache under the models directory; refused when it was
    trained on another catalog than --catalog."""
    import hashlib

    from services.lab.retriever.teacher import Teacher

    teacher = Teacher(engine, settings, models_dir / "retriever" / ".teacher-scores.sqlite")
    if catalog is not None:
        teacher.check_catalog(
            {"file": catalog.name, "sha256": hashlib.sha256(catalog.read_bytes()).hexdigest()}
        )
    return teacher


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    train = commands.add_parser("train", help="fine-tune models on the training store").add_subparsers(
        dest="model", required=True
    )
    retriever = train.add_parser(
        "retriever",
        help="fine-tune the retriever's encoder (MiniLM) on the store's accepted pairs (versioned model)",
    )
    retriever.add_argument(
        "--store",
        type=Path,
        action="append",
        help="a Parquet store; repeat for several (default: TAILSYNTH_STORE_DIR); with --labels it may "
        "be empty or absent",
    )
    retriever.add_argument(
        "--catalog",
        type=Path,
        help="catalog CSV/JSONL: products are trained on the text the index embeds (title, brand, "
        "category); also joins --labels product ids",
    )
    retriever.add_argument("--labels", type=Path, help="human labels (CSV, TSV, JSONL) to add as positives")
    retriever.add_argument(
        "--loss",
        choices=LOSSES,
        default=DEFAULTS.loss,
        help="listwise: KL between the teacher's and the student's softmax over each query's judged "
        "candidates; margin_mse: the teacher's score margins; mnrl: contrast accepted pairs (in-batch "
        "and judge-rejected negatives)",
    )
    retriever.add_argument(
        "--teacher",
        default=DEFAULTS.teacher,
        help="judge engine whose scores are distilled (cross_encoder: the business judge of synth judge "
        "train; embedding, lexical, llm)",
    )
    retriever.add_argument(
        "--teacher-model", type=Path, help="the cross-encoder model directory (default: its CURRENT)"
    )
    retriever.add_argument(
        "--list-size",
        type=int,
        default=DEFAULTS.list_size,
        help="candidates per query and step: the teacher's best and others sampled",
    )
    retriever.add_argument("--student-temperature", type=float, default=DEFAULTS.student_temperature)
    retriever.add_argument(
        "--contrastive-weight",
        type=float,
        default=DEFAULTS.contrastive_weight,
        help="distillation: weight of an in-batch MNRL term over (query, the teacher's best) (0: none)",
    )
    retriever.add_argument(
        "--teacher-temperature", type=float, default=DEFAULTS.teacher_temperature, help="on log-odds"
    )
    retriever.add_argument(
        "--refresh-every",
        type=int,
        default=DEFAULTS.refresh_every,
        help="every N steps retrieve each query's top --refresh-depth with the current weights and add "
        "what is new, scored by the teacher (0: never; needs --catalog)",
    )
    retriever.add_argument("--refresh-depth", type=int, default=DEFAULTS.refresh_depth)
    retriever.add_argument(
        "--lexical-depth",
        type=int,
        help="before training, each query's top N products by BM25 over --catalog join its candidates, "
        f"scored by the teacher: products the base encoder does not retrieve (default: {LEXICAL_DEPTH} "
        "with --catalog and a distillation loss, else 0; 0: none)",
    )
    retriever.add_argument(
        "--confident-stage",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after distillation, MNRL over each query's candidates the teacher is confident about and "
        "(with --labels) every relevant labelled pair, as the supervised recipe trains (lr 5e-5, "
        "batches of 64, one epoch); ignored with --loss mnrl",
    )
    retriever.add_argument(
        "--confident-score",
        type=float,
        default=STAGE.min_score,
        help="the teacher's score a candidate needs to be a positive of the contrastive stage",
    )
    retriever.add_argument(
        "--confident-per-query",
        type=int,
        default=STAGE.per_query,
        help="the contrastive stage's positives per query at most (the teacher's most confident)",
    )
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
        help="stop after this step of the run (of each stage), resumable (0: run to the end)",
    )
    retriever.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    retriever.add_argument("--quiet", action="store_true", help="no progress bar")
    retriever.set_defaults(func=_retriever)
    add_rewriter_train(train)
