"""`synth synthesize --from-catalog CATALOG`: shopper queries generated from a seeded sample of products,
through the running gateway's POST /v1/synthesize:product.

Rows without a title (and other bad rows) are skipped and counted; products go to the gateway with at
most --concurrency in flight; each finished product is journaled, and a re-run skips the products done
under the pipeline version the gateway serves now (the journal and the run loop of `synth synthesize`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services.cli import journal
from services.cli.journal import ProductEntry
from services.cli.synthesize import (
    Run,
    _detail,
    _duration,
    _retry_after,
    client_for,
    finish,
    pipeline_version,
    with_retries,
)
from services.core.catalog import Product, read_catalog
from services.core.errors import InvalidInput
from services.pipeline.product_models import STYLES, ProductItem


@dataclass(frozen=True)
class Options:
    styles: list[str]
    num_queries: int
    top_k: int
    num_rewrites: int
    seed: int


@dataclass(frozen=True)
class Sample:
    products: list[Product]
    total: int  # valid products in the catalog
    bad: Counter[str]  # rows skipped, by kind ("empty title", "duplicate id", ...)


def sample_catalog(path: Path, size: int | None, seed: int) -> Sample:
    """A seeded draw of `size` valid products (all, in a seeded order, when size is None or larger)."""
    products, bad = read_catalog(path)
    skipped = Counter(row.kind for row in bad)
    if not products:
        kinds = ", ".join(f"{n} with {kind}" for kind, n in skipped.most_common())
        raise InvalidInput(f"{path}: no product to generate queries for ({kinds or 'no rows'})")
    drawn = random.Random(seed).sample(products, min(size or len(products), len(products)))
    return Sample(drawn, len(products), skipped)


def item_of(product: Product, options: Options) -> ProductItem:
    # The LLM's seed follows from the run's and the product's: the same run writes the same queries.
    digest = hashlib.sha256(f"{options.seed}:{product.id}".encode()).hexdigest()
    return ProductItem(
        product_id=product.id,
        title=product.title,
        brand=product.brand,
        category=product.category,
        description=product.description,
        styles=options.styles,
        num_queries=options.num_queries,
        top_k=options.top_k,
        num_rewrites=options.num_rewrites,
        seed=int(digest[:12], 16),
    )


def key_of(item: ProductItem) -> journal.Key:
    return (
        "product",
        item.product_id,
        ",".join(item.styles),
        item.num_queries,
        item.top_k,
        item.num_rewrites,
    )


@dataclass
class ProductTally:
    total: int
    skipped: int
    done: int = 0
    failed: int = 0
    incomplete: int = 0  # done, but a rewrite engine failed for a style: the next run does it again
    generated: int = 0
    kept: int = 0
    by_retrieval: int = 0
    accepted: int = 0
    new: int = 0
    duplicates: int = 0
    spooled: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    generated_by_style: Counter[str] = field(default_factory=Counter)
    kept_by_style: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    unit: str = "products"

    def add(self, entry: ProductEntry) -> None:
        if not entry.ok:
            self.failed += 1
            return
        self.done += 1
        self.incomplete += bool(entry.failures)
        self.generated += entry.generated
        self.kept += entry.kept
        self.by_retrieval += entry.by_retrieval
        self.accepted += entry.accepted
        self.new += entry.new
        self.duplicates += entry.duplicates
        self.spooled += entry.spooled
        self.dropped.update(entry.dropped)
        self.generated_by_style.update(entry.generated_by_style)
        self.kept_by_style.update(entry.kept_by_style)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def rate(self, count: int) -> float:
        return count / self.elapsed if self.elapsed > 0 else 0.0

    def line(self, width: int = 24) -> str:
        finished = self.done + self.failed
        filled = width * finished // self.total if self.total else width
        rate = self.rate(finished)
        eta = _duration((self.total - finished) / rate) if rate > 0 else "?"
        drops = ", ".join(f"{reason} {n}" for reason, n in self.dropped.most_common()) or "none"
        return (
            f"[{'#' * filled}{'.' * (width - filled)}] {finished}/{self.total} products"
            f" · {self.kept}/{self.generated} queries kept · {self.accepted} accepted pairs"
            f" · {self.failed} failed · {self.incomplete} incomplete · dropped: {drops}"
            f" · {rate:.3f} products/s · ETA {eta}"
        )


def entry_of(item: ProductItem, version: str, status: int = 0) -> ProductEntry:
    return ProductEntry(
        product_id=item.product_id,
        styles=list(item.styles),
        num_queries=item.num_queries,
        top_k=item.top_k,
        num_rewrites=item.num_rewrites,
        pipeline_version=version,
        status=status,
    )


async def _attempt(
    client: httpx.AsyncClient, item: ProductItem, version: str
) -> tuple[ProductEntry, float | None]:
    response = await client.post("/v1/synthesize:product", json=item.model_dump())
    entry = entry_of(item, version, response.status_code)
    if response.status_code != 200:
        entry.error = _detail(response.content)
        return entry, _retry_after(response)
    body = json.loads(response.content)
    candidates = body["candidates"]
    entry.pipeline_version = body["pipeline_version"]
    entry.generated, entry.kept, entry.dropped = body["generated"], body["kept"], body["dropped"]
    entry.by_retrieval = sum(c["reason"] == "kept_by_retrieval" for c in candidates)
    entry.generated_by_style = dict(Counter(c["style"] for c in candidates))
    entry.kept_by_style = dict(Counter(c["style"] for c in candidates if c["kept"]))
    entry.accepted = body["accepted_count"]
    entry.failures = [f"{f['style']}: {f['engine']}: {f['error']}" for f in body.get("failures", [])]
    for synthesis in body["syntheses"]:
        entry.new += synthesis["new"]
        entry.duplicates += synthesis["duplicates"]
        entry.spooled += synthesis["spooled"]
    return entry, None


def summary(
    path: Path, journal_path: Path, version: str, sample: Sample, tally: ProductTally, left: int
) -> str:
    bad = sum(sample.bad.values())
    bad_text = ", ".join(f"{n} {kind}" for kind, n in sample.bad.most_common())
    dropped = sum(tally.dropped.values())
    styles = "; ".join(
        f"{style} {tally.kept_by_style[style]}/{n} kept"
        for style, n in sorted(tally.generated_by_style.items())
    )
    elapsed = tally.elapsed
    return (
        f"{path}: {tally.done} products synthesized, {tally.skipped} skipped (done before under this "
        f"pipeline version), {tally.failed} failed, {tally.incomplete} incomplete (a rewrite engine failed for "
        "a style: done again next run)"
        + (f", {left} not started" if left else "")
        + f"; {len(sample.products)} drawn of {sample.total} products"
        + (f", {bad} rows skipped ({bad_text})" if bad else "")
        + f"\n  queries: {tally.generated} generated, {tally.kept} kept ({tally.by_retrieval} by retrieval, "
        f"{tally.kept - tally.by_retrieval} by the judge), {dropped} dropped"
        + (f" ({', '.join(f'{r} {n}' for r, n in tally.dropped.most_common())})" if dropped else "")
        + (f"\n  by style: {styles}" if styles else "")
        + f"\n  accepted pairs: {tally.accepted} ({tally.new} new in the store, {tally.duplicates} "
        f"duplicates, {tally.spooled} spooled)"
        f"\n  elapsed: {elapsed:.1f} s, {tally.rate(tally.done):.3f} products/s, "
        f"{tally.rate(tally.generated):.2f} queries generated/s"
        f"\n  pipeline version: {version}\n  journal: {journal_path}"
    )


async def _from_catalog(
    url: str,
    path: Path,
    journal_path: Path,
    sample: Sample,
    options: Options,
    concurrency: int,
    limit: int | None,
    api_key: str | None,
    resume_hint: str,
) -> int:
    items = [item_of(product, options) for product in sample.products]
    async with client_for(url, concurrency, api_key) as client:
        version = await pipeline_version(client, url)
        entries = journal.read_journal(journal_path, ProductEntry)
        todo, skipped = journal.plan(items, journal.done_under(entries, version), key_of)
        chosen = todo if limit is None else todo[:limit]

        async def work(item: ProductItem) -> ProductEntry:
            entry = await with_retries(
                lambda: _attempt(client, item, version), lambda: entry_of(item, version)
            )
            if entry.ok and entry.failures:  # listed with the failures; the next run does it again
                run.failed.append(f"{item.product_id}: incomplete: {'; '.join(entry.failures)}")
            return entry

        with journal.open_journal(journal_path) as handle:
            tally = ProductTally(total=len(chosen), skipped=skipped)
            run = Run(chosen, work, tally, handle, concurrency, name=lambda item: item.product_id)
            interrupted = await run.run()
    left = len(todo) - tally.done - tally.failed
    text = summary(path, journal_path, version, sample, tally, left)
    return finish(run, text, left, interrupted, resume_hint)


def run_from_catalog(
    url: str,
    path: Path,
    journal_path: Path,
    options: Options,
    sample_size: int | None = None,
    concurrency: int = 2,
    limit: int | None = None,
    api_key: str | None = None,
    resume_hint: str = "run the same command again",
) -> int:
    if concurrency < 1 or (limit is not None and limit < 0) or (sample_size is not None and sample_size < 1):
        raise InvalidInput("--concurrency and --sample must be at least 1 and --limit at least 0")
    unknown = [s for s in options.styles if s not in STYLES]
    if unknown or not options.styles or len(set(options.styles)) != len(options.styles):
        raise InvalidInput(f"--styles takes distinct names among {', '.join(STYLES)}, got {options.styles}")
    if not 1 <= options.num_queries <= 8:
        raise InvalidInput("--queries-per-style must be between 1 and 8")
    if not url.startswith(("http://", "https://")):
        raise InvalidInput(f"--url must be an http:// or https:// address, not {url!r}")
    sample = sample_catalog(path, sample_size, options.seed)
    if sample.bad:
        skipped = ", ".join(f"{n} with {kind}" for kind, n in sample.bad.most_common())
        print(f"{path}: skipping {sum(sample.bad.values())} rows ({skipped})", file=sys.stderr)
    return asyncio.run(
        _from_catalog(url, path, journal_path, sample, options, concurrency, limit, api_key, resume_hint)
    )
