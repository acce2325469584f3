"""`synth eval judge|retrieval`: offline evaluation against human relevance labels."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from services.cli.judge import add_eval_command as add_judge_eval
from services.cli.judge import label_arguments, load_label_set
from services.cli.rewriter_commands import add_eval_command as add_rewriter_eval
from services.core.settings import load_settings
from services.pipeline.models import DEFAULT_NUM_REWRITES


def _eval_retrieval(args: argparse.Namespace) -> int:
    from services.lab.retriever.eval_run import RetrievalEvalConfig, run_retrieval_eval
    from services.lab.retriever.evaluate import parse_ks
    from services.pipeline.config import PipelineSettings
    from services.retriever.config import RetrieverSettings

    ks = parse_ks(args.k)  # before the labels load: a typo fails at once
    if args.catalog is None:
        from services.core.errors import InvalidInput

        raise InvalidInput("--catalog is required: retrieval searches the whole catalog")
    labels = load_label_set(args)
    config = RetrievalEvalConfig(
        catalog=args.catalog,
        ks=ks,
        out_dir=args.out,
        model=args.model,
        rewrites=args.rewrites,
        rewrites_file=args.rewrites_file,
        num_rewrites=args.num_rewrites,
        judge_rewrites=args.judge_rewrites,
        compare=args.compare,
    )
    report = run_retrieval_eval(
        labels, config, load_settings(RetrieverSettings), load_settings(PipelineSettings)
    )
    print(report.table())
    print(f"report: {report.json_path}\nplot:   {report.plot_path}")
    if report.compare_path is not None:
        print(f"compare: {report.compare_path}")
    print(f"took {report.data['timings']['total_s']:.1f} s", file=sys.stderr)
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    evaluation = commands.add_parser("eval", help="evaluation commands").add_subparsers(
        dest="what", required=True
    )
    add_judge_eval(evaluation)
    retrieval = evaluation.add_parser(
        "retrieval",
        help="recall@k, nDCG@10 and MRR of exact search over the whole catalog for labelled queries "
        "(optionally with rewrites: union and fused); JSON + recall@k curves (PNG)",
    )
    label_arguments(retrieval, split=True)
    retrieval.add_argument(
        "--min-grade",
        dest="relevant_at",
        type=float,
        help="same as --relevant-at: least label value that counts as relevant (Home Depot default 2.33)",
    )
    retrieval.add_argument(
        "--model", type=Path, help="sentence-transformers model dir (default: the packaged all-MiniLM-L6-v2)"
    )
    retrieval.add_argument("--k", default="10,100", help="comma-separated cut-offs for recall@k")
    retrieval.add_argument(
        "--rewrites", action="store_true", help="also evaluate query + rewrites from the running rewriter"
    )
    retrieval.add_argument(
        "--rewrites-file",
        type=Path,
        help='JSONL {"query": ..., "rewrites": [...]} to use instead of the rewriter (implies --rewrites)',
    )
    retrieval.add_argument(
        "--num-rewrites", type=int, default=DEFAULT_NUM_REWRITES, help="rewrites asked per query"
    )
    retrieval.add_argument(
        "--judge-rewrites",
        action="store_true",
        help="keep only rewrites the running judge accepts as same-intent (as the pipeline does)",
    )
    retrieval.add_argument(
        "--compare", type=Path, help="another run's retrieval.json: both runs' curves in one PNG"
    )
    retrieval.add_argument("--out", type=Path, default=Path("reports/retrieval-eval"), help="output folder")
    retrieval.set_defaults(func=_eval_retrieval)
    add_rewriter_eval(evaluation)
