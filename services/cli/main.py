"""`synth`: the command line of tailsynth.

`synth query`, `enqueue` and `synthesize` go to a running gateway over HTTP; `up` starts the whole system
as local processes; `worker` and `sink` run those roles in this process; `index` builds and updates the
retriever's index; `train`, `judge` and `eval` are the offline work in services/lab. Each command checks
that its extra is installed before it imports anything from it (NEEDS).
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path

from services.core.errors import ConfigError, InvalidInput
from services.core.logging import setup_logging
from services.core.optional import MissingExtra, missing, require
from services.core.settings import load_settings
from services.pipeline.models import DEFAULT_NUM_REWRITES, DEFAULT_TOP_K

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CATALOG = REPO_ROOT / "data" / "demo" / "catalog.csv"
GATEWAY_URL = "http://127.0.0.1:8000"

log = logging.getLogger("synth")

# What each command imports: the extras whose libraries must be installed, and the extra to name when one
# is missing. `synth up` runs every serving role (the embedded Redis falls back to a redis-server on PATH).
NEEDS: dict[str, tuple[tuple[str, ...], str]] = {
    "up": (("gateway", "rewriter", "retriever", "judge"), "all"),
    "worker": (("gateway",), "gateway"),
    "sink": (("gateway",), "gateway"),
    "query": (("clients",), "gateway"),
    "enqueue": (("clients",), "gateway"),
    "synthesize": (("clients",), "gateway"),
    "export": (("store",), "gateway"),
    "index": (("retriever",), "retriever"),
    "train": (("lab",), "lab"),
    "judge": (("lab",), "lab"),
    "eval": (("lab",), "lab"),
}
# The offline commands, listed without the lab extra (their definitions import it).
LAB_COMMANDS = {
    "judge": "business judge: train and calibrate",
    "train": "fine-tune models on the training store",
    "eval": "evaluation commands",
}


def _up(args: argparse.Namespace) -> int:
    from services.cli.system import LocalSystem, Ports
    from services.gateway.config import GatewaySettings
    from services.judge.config import JudgeSettings
    from services.retriever.config import RetrieverSettings
    from services.rewriter.config import RewriterSettings
    from services.store.config import StoreSettings

    settings = load_settings(StoreSettings)
    ports = Ports(
        rewriter=_port(load_settings(RewriterSettings).bind),
        retriever=_port(load_settings(RetrieverSettings).bind),
        judge=_port(load_settings(JudgeSettings).bind),
        gateway=load_settings(GatewaySettings).port,
    )
    system = LocalSystem(
        state_dir=settings.state_dir,
        catalog=args.catalog,
        ports=ports,
        redis_url=settings.redis_url,
        workers=args.workers,
    )
    system.start()
    try:
        url = system.gateway_url
        print(
            f"\ntailsynth is up.\n"
            f"  API:      {url}/v1/synthesize   (docs: {url}/docs, metrics: {url}/metrics)\n"
            f"  debug:    {url}/debug   (watch one query go through every stage)\n"
            f"  queue:    {url}/v1/queue ({args.workers} worker(s); `synth enqueue FILE` adds a query log)\n"
            f"  Redis:    {system.redis_url}\n"
            f"  store:    {settings.store_dir} (Parquet)\n\n"
            f"  curl -XPOST {url}/v1/synthesize -H 'content-type: application/json' "
            f'-d \'{{"query":"cordless drill for deck screws"}}\'\n'
            f'  synth query "cordless drill for deck screws"\n\n'
            f"Ctrl-C stops everything.",
            flush=True,
        )
        return system.wait()
    finally:
        log.info("stopping")
        system.stop()


def _port(bind: str) -> int:
    return int(bind.rpartition(":")[2])


def _index_build(args: argparse.Namespace) -> int:
    from services.retriever.build import build_from_catalog
    from services.retriever.config import RetrieverSettings

    target = build_from_catalog(load_settings(RetrieverSettings), args.catalog, model_dir=args.model)
    print(f"index written to {target}")
    return 0


def _index_add(args: argparse.Namespace) -> int:
    from services.retriever.config import RetrieverSettings
    from services.retriever.updates import add_products

    print(add_products(load_settings(RetrieverSettings), args.catalog).summary())
    return 0


def _index_remove(args: argparse.Namespace) -> int:
    from services.retriever.config import RetrieverSettings
    from services.retriever.updates import remove_products

    print(remove_products(load_settings(RetrieverSettings), args.ids).summary())
    return 0


def _query(args: argparse.Namespace) -> int:
    from services.cli.query import run_query

    return run_query(
        args.url, args.text, args.num_rewrites, args.top_k, not args.no_cache, args.json, args.api_key
    )


def _enqueue(args: argparse.Namespace) -> int:
    from services.cli.enqueue import run_enqueue

    return run_enqueue(
        args.url, args.file, args.num_rewrites, args.top_k, args.batch, args.strict, args.api_key
    )


def _synthesize(args: argparse.Namespace) -> int:
    from services.cli.journal import default_journal
    from services.cli.synthesize import run_synthesize
    from services.store.config import StoreSettings

    if args.from_catalog is not None:
        return _from_catalog(args)
    journal = args.journal or default_journal(load_settings(StoreSettings).state_dir, args.queries)
    hint = shlex.join(
        ["synth", "synthesize", "--queries", str(args.queries)]
        + (["--url", args.url] if args.url != GATEWAY_URL else [])
        + (["--journal", str(args.journal)] if args.journal else [])
    )
    return run_synthesize(
        args.url,
        args.queries,
        journal,
        args.num_rewrites,
        args.top_k,
        args.concurrency or 4,
        args.limit,
        args.api_key,
        resume_hint=hint,
    )


def _from_catalog(args: argparse.Namespace) -> int:
    from services.cli.journal import default_journal
    from services.cli.products import Options, run_from_catalog
    from services.pipeline.product_models import STYLES
    from services.store.config import StoreSettings

    catalog: Path = args.from_catalog
    journal = args.journal or default_journal(load_settings(StoreSettings).state_dir, catalog, "products")
    styles = [s.strip() for s in args.styles.split(",") if s.strip()]
    styles = sorted(styles, key=lambda s: STYLES.index(s) if s in STYLES else len(STYLES))
    options = Options(styles, args.queries_per_style, args.top_k, args.num_rewrites, args.seed)
    hint = shlex.join(
        ["synth", "synthesize", "--from-catalog", str(catalog), "--seed", str(args.seed)]
        + (["--sample", str(args.sample)] if args.sample else [])
        + (["--styles", args.styles] if args.styles != ",".join(STYLES) else [])
        + (["--queries-per-style", str(args.queries_per_style)] if args.queries_per_style != 2 else [])
        + (["--url", args.url] if args.url != GATEWAY_URL else [])
        + (["--journal", str(args.journal)] if args.journal else [])
    )
    return run_from_catalog(
        args.url,
        catalog,
        journal,
        options,
        args.sample,
        args.concurrency or 2,
        args.limit,
        args.api_key,
        resume_hint=hint,
    )


def _apikey_new(args: argparse.Namespace) -> int:
    from services.gateway.auth import NAME_PATTERN, entry, new_key

    if not NAME_PATTERN.match(args.name):
        raise InvalidInput("the key name must be 1-64 letters, digits, '_', '.' or '-'")
    if args.per_minute is not None and args.per_minute < 1:
        raise InvalidInput("--per-minute must be at least 1")
    key = new_key()
    print(f"key (give it to the caller; it is not stored anywhere): {key}")
    print(
        f"entry (add to TAILSYNTH_GATEWAY_API_KEYS or the keys file): {entry(args.name, key, args.per_minute)}"
    )
    return 0


def _export_preferences(args: argparse.Namespace) -> int:
    from services.store.config import StoreSettings
    from services.store.preferences import export_preferences

    store = args.store or load_settings(StoreSettings).store_dir
    summary = export_preferences(store, args.out, args.format, args.margin, args.flat)
    print(
        f"{summary.rows} rows written to {args.out}: {summary.pairs} chosen/rejected pairs over "
        f"{summary.queries} queries ({summary.records} syntheses read"
        + (f", {summary.skipped} unreadable records skipped" if summary.skipped else "")
        + ")"
    )
    return 0


def _worker(args: argparse.Namespace) -> int:
    from services.worker.__main__ import main as worker_main

    return worker_main()


def _sink(args: argparse.Namespace) -> int:
    from services.store.__main__ import main as sink_main

    return sink_main()


def _config(args: argparse.Namespace) -> int:
    from services.core.settings import env_table
    from services.gateway.config import GatewaySettings
    from services.judge.config import JudgeSettings
    from services.pipeline.config import PipelineSettings
    from services.retriever.config import RetrieverSettings
    from services.rewriter.config import RewriterSettings
    from services.store.config import StoreSettings
    from services.worker.config import QueueSettings

    classes = [
        GatewaySettings,
        PipelineSettings,
        RewriterSettings,
        RetrieverSettings,
        JudgeSettings,
        StoreSettings,
        QueueSettings,
    ]
    print("| variable | default | meaning |\n|---|---|---|")
    for env, default, description in env_table(classes):  # type: ignore[arg-type]
        print(f"| `{env}` | `{default}` | {description} |")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synth", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser(
        "up", help="start Redis, the three gRPC services, the sink, queue workers and the gateway"
    )
    up.add_argument("--catalog", type=Path, default=DEMO_CATALOG, help="catalog to index if no index exists")
    up.add_argument("--workers", type=int, default=1, help="queue workers to start (0: none)")
    up.set_defaults(func=_up)

    enqueue = commands.add_parser(
        "enqueue", help="queue a query log (text, JSONL, CSV/TSV with a query column) for the workers"
    )
    enqueue.add_argument("file", type=Path)
    enqueue.add_argument("--url", default="http://127.0.0.1:8000", help="the gateway")
    enqueue.add_argument(
        "--num-rewrites", type=int, default=DEFAULT_NUM_REWRITES, help="default for lines that give none"
    )
    enqueue.add_argument("--top-k", type=int, default=DEFAULT_TOP_K, help="default for lines that give none")
    enqueue.add_argument("--batch", type=int, default=500, help="queries per request")
    enqueue.add_argument("--strict", action="store_true", help="queue nothing if any line is bad")
    enqueue.add_argument("--api-key", help="API key, when the gateway requires one")
    enqueue.set_defaults(func=_enqueue)

    synthesize = commands.add_parser(
        "synthesize",
        help="synthesize a query log, or queries generated from catalog products, through the running "
        "gateway now (resumable; pairs go to the store)",
    )
    source = synthesize.add_mutually_exclusive_group(required=True)
    source.add_argument("--queries", type=Path, help="query log: text, JSONL, CSV/TSV with a query column")
    source.add_argument(
        "--from-catalog",
        type=Path,
        metavar="CATALOG",
        help="catalog (CSV or JSONL with id and title): generate shopper queries from a sample of its "
        "products (POST /v1/synthesize:product)",
    )
    synthesize.add_argument("--url", default=GATEWAY_URL, help="the gateway")
    synthesize.add_argument(
        "--num-rewrites",
        type=int,
        default=DEFAULT_NUM_REWRITES,
        help="rewrites per synthesis (for lines that give none)",
    )
    synthesize.add_argument(
        "--top-k", type=int, default=DEFAULT_TOP_K, help="products per search, and the round trip's depth"
    )
    synthesize.add_argument(
        "--concurrency", type=int, help="queries (default 4) or products (default 2) in flight at once"
    )
    synthesize.add_argument(
        "--limit", type=int, help="synthesize at most this many queries or products not yet done, then stop"
    )
    synthesize.add_argument(
        "--sample", type=int, help="--from-catalog: products drawn from the catalog (default: all)"
    )
    synthesize.add_argument(
        "--seed", type=int, default=13, help="--from-catalog: seed of the draw and of the LLM's sampling"
    )
    synthesize.add_argument(
        "--styles",
        default="keywords,attributes,need,misspelled",
        help="--from-catalog: query styles, comma-separated (keywords, attributes, need, misspelled)",
    )
    synthesize.add_argument(
        "--queries-per-style", type=int, default=2, help="--from-catalog: queries asked per style (1-8)"
    )
    synthesize.add_argument(
        "--journal", type=Path, help="JSONL of finished queries (default: under the state dir)"
    )
    synthesize.add_argument("--api-key", help="API key, when the gateway requires one")
    synthesize.set_defaults(func=_synthesize)

    worker = commands.add_parser("worker", help="run a continuous-synthesis worker on the query queue")
    worker.set_defaults(func=_worker)
    sink = commands.add_parser("sink", help="run the training-store sink (Redis Stream -> Parquet)")
    sink.set_defaults(func=_sink)

    query = commands.add_parser("query", help="send one query to the running system and show every stage")
    query.add_argument("text")
    query.add_argument("--url", default="http://127.0.0.1:8000")
    query.add_argument("--num-rewrites", type=int, default=DEFAULT_NUM_REWRITES)
    query.add_argument("--top-k", type=int, default=DEFAULT_TOP_K)
    query.add_argument("--no-cache", action="store_true")
    query.add_argument("--json", action="store_true", help="print the raw response")
    query.add_argument("--api-key", help="API key, when the gateway requires one")
    query.set_defaults(func=_query)

    index = commands.add_parser("index", help="product index commands").add_subparsers(
        dest="action", required=True
    )
    build = index.add_parser("build", help="embed a catalog (CSV or JSONL) and write a FAISS index")
    build.add_argument("--catalog", type=Path, required=True)
    build.add_argument(
        "--model",
        type=Path,
        help="sentence-transformers model directory to encode with (e.g. from synth train retriever); "
        "default TAILSYNTH_RETRIEVER_MODEL_DIR, else the packaged all-MiniLM-L6-v2",
    )
    build.set_defaults(func=_index_build)
    add = index.add_parser(
        "add", help="add new and changed products (same id) to the index as a new version, without a rebuild"
    )
    add.add_argument("--catalog", type=Path, required=True, help="CSV or JSONL with the new/changed products")
    add.set_defaults(func=_index_add)
    remove = index.add_parser("remove", help="remove products by id from the index as a new version")
    remove.add_argument("--ids", type=Path, required=True, help="file with one product id per line")
    remove.set_defaults(func=_index_remove)

    apikey = commands.add_parser("apikey", help="API key commands").add_subparsers(
        dest="action", required=True
    )
    new = apikey.add_parser("new", help="make a key: prints the key once and the hashed entry to configure")
    new.add_argument("name", help="who the key is for (letters, digits, _ . -); shown in metrics and logs")
    new.add_argument("--per-minute", type=int, help="this key's rate limit (default: the gateway's)")
    new.set_defaults(func=_apikey_new)

    export = commands.add_parser("export", help="export data from the training store").add_subparsers(
        dest="what", required=True
    )
    preferences = export.add_parser(
        "preferences",
        help="ranked rewrite candidates as partial orders and chosen/rejected pairs (Bradley-Terry/DPO)",
    )
    preferences.add_argument("--out", type=Path, required=True, help="FILE.jsonl or FILE.parquet")
    preferences.add_argument("--store", type=Path, help="the Parquet store (default: TAILSYNTH_STORE_DIR)")
    preferences.add_argument("--format", choices=["jsonl", "parquet"], help="default: from --out's suffix")
    preferences.add_argument(
        "--margin", type=float, default=0.05, help="least reward difference for a chosen/rejected pair"
    )
    preferences.add_argument(
        "--flat",
        action="store_true",
        help="one row per (prompt, chosen, rejected) pair, as DPO trainers read",
    )
    preferences.set_defaults(func=_export_preferences)

    if not missing("lab"):
        from services.cli.evaluate import add_commands as add_eval_commands
        from services.cli.judge import add_commands as add_judge_commands
        from services.cli.train import add_commands as add_train_commands

        add_judge_commands(commands)
        add_train_commands(commands)
        add_eval_commands(commands)
    else:  # listed in --help; main() names the extra before any parsing
        for name, text in LAB_COMMANDS.items():
            commands.add_parser(name, help=f"{text} (needs the lab extra)")

    config = commands.add_parser("config", help="print every TAILSYNTH_ environment variable as a table")
    config.set_defaults(func=_config)
    return parser


def check_installed(argv: list[str]) -> None:
    """Raise MissingExtra when the command's extra is not installed (before its arguments are parsed: the
    definitions of the offline commands import the lab extra)."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command in NEEDS:
        extras, install = NEEDS[command]
        require(*extras, what=f"synth {command}", install=install)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        check_installed(argv)
    except MissingExtra as error:
        print(f"synth: {error}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    setup_logging("synth", "INFO")
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # a reader that went away shows here, not as a traceback at exit
        return code
    except (ConfigError, InvalidInput) as error:
        print(f"synth: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader of stdout closed it (`synth ... | head`): what the command writes to files is written;
        # stdout goes to /dev/null so that the interpreter's last flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a process a closed pipe stopped


if __name__ == "__main__":
    raise SystemExit(main())
