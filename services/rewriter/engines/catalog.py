"""Catalog engine: candidates grounded in the product catalog, no LLM.

Three kinds, each tagged with its source (see services.rewriter.catalog_rewrites for the rules):
catalog:relax (an over-specified query without its least informative terms), catalog:spell (words
corrected against the catalog's vocabulary) and catalog:prf (a product-style query from the titles
of the query's own top products, RewriteInput.feedback). Each kind gives at most
catalog_per_kind candidates and the engine at most catalog_max_candidates; RewriteInput.n is the
LLM engines' budget and does not limit them. Deterministic, and cheap enough (about half a
millisecond per query on a 50k-product catalog, a few milliseconds at worst) to run on the event
loop rather than queue behind the LLM on the worker thread.

The catalog is TAILSYNTH_REWRITER_CATALOG (CSV or JSONL) or, unset, the products of the retriever's
current index (<index root>/CURRENT/products.jsonl).
"""

from __future__ import annotations

import logging
from pathlib import Path

from services.core.catalog import load_catalog
from services.core.errors import ConfigError, InvalidInput
from services.core.index_layout import PRODUCTS_FILE, current_version_dir
from services.core.text import clean, normalize_query
from services.rewriter import catalog_rewrites
from services.rewriter.catalog_rewrites import CatalogKnobs
from services.rewriter.catalog_terms import CatalogTerms, catalog_fingerprint
from services.rewriter.config import RewriterSettings
from services.rewriter.engine import BlockingRunner, Proposal, Proposed, RewriteEngine, RewriteInput
from services.rewriter.parsing import Dropped
from services.rewriter.spelling import SpellIndex

log = logging.getLogger(__name__)

# Bump whenever the rules in catalog_rewrites/catalog_terms/spelling change what is proposed.
ALGORITHM = "catalog-v1"


class CatalogEngine(RewriteEngine):
    name = "catalog"
    terms: CatalogTerms | None = None
    spelling: SpellIndex | None = None
    _version = "unloaded"

    def __init__(self, settings: RewriterSettings, run_blocking: BlockingRunner) -> None:
        super().__init__(settings, run_blocking)
        s = settings
        self.knobs = CatalogKnobs(
            per_kind=s.catalog_per_kind,
            min_matches=s.catalog_relax_min_matches,
            max_distance=s.catalog_max_edit_distance,
            prf_titles=s.catalog_prf_titles,
            max_words=s.catalog_prf_max_words,
        )
        self.source()  # fail at construction, with the setting to fix, when there is no catalog

    def source(self) -> Path:
        """The catalog file to read: the configured one or the current index's products."""
        s = self.settings
        if s.catalog is not None:
            if not s.catalog.is_file():
                raise ConfigError(
                    f"catalog engine: TAILSYNTH_REWRITER_CATALOG={s.catalog} is not a file; "
                    "point it at a CSV or JSONL catalog"
                )
            return s.catalog
        root = s.catalog_index_dir or s.index_root
        try:
            products = current_version_dir(root) / PRODUCTS_FILE
        except ConfigError:
            products = None
        if products is None or not products.is_file():
            raise ConfigError(
                f"catalog engine: no index products under {root} (CURRENT/{PRODUCTS_FILE}); set "
                "TAILSYNTH_REWRITER_CATALOG to a CSV or JSONL catalog, or TAILSYNTH_REWRITER_CATALOG_INDEX_DIR "
                "to an index root, or build the index with: synth index build --catalog FILE"
            )
        return products

    def load(self) -> None:
        path = self.source()
        try:
            products = load_catalog(path)
        except InvalidInput as error:
            raise ConfigError(f"catalog engine: {error}") from None
        terms = CatalogTerms(products)
        spelling = SpellIndex(
            ((word, df) for word, df in terms.surface_df.items() if len(word) >= 3 and word.isalpha()),
            self.knobs.max_distance,
        )
        k = self.knobs
        self._version = (
            f"{ALGORITHM}:{catalog_fingerprint(products)[:12]}:n={len(products)},"
            f"relax>={k.min_matches},ed={k.max_distance},prf={k.prf_titles}x{k.max_words},"
            f"per_kind={k.per_kind},max={self.settings.catalog_max_candidates}"
        )
        self.terms, self.spelling = terms, spelling
        log.info(
            "catalog engine: %d products from %s, %d terms, spelling index %.1f MiB",
            len(products),
            path,
            len(terms.postings),
            spelling.nbytes / 2**20,
        )

    @property
    def version(self) -> str:
        return self._version

    async def propose(self, request: RewriteInput) -> Proposal:
        if request.product is not None:  # it rewrites queries; writing queries for a product is the LLM's
            return Proposal()
        return self.propose_now(request)

    def propose_now(self, request: RewriteInput) -> Proposal:
        """The candidates for one query (synchronous and cheap: see the module docstring)."""
        terms, spelling = self.terms, self.spelling
        if terms is None or spelling is None:
            raise RuntimeError("catalog engine used before load()")
        s = self.settings
        query = clean(request.query)
        spelled = catalog_rewrites.spell(terms, spelling, query, self.knobs)
        kinds = [
            ("catalog:relax", catalog_rewrites.relax(terms, query, self.knobs)),
            ("catalog:spell", spelled),
            (
                "catalog:prf",
                catalog_rewrites.prf(terms, query, request.feedback, self.knobs, " ".join(spelled[:1])),
            ),
        ]
        proposal = Proposal()
        seen = {normalize_query(query)}
        for source, texts in kinds:
            for text in texts:
                key = normalize_query(text)
                if key in seen:
                    reason = "duplicate"
                elif len(text) > s.max_rewrite_chars or len(text.split()) > s.max_rewrite_words:
                    reason = "too_long"
                elif len(proposal.candidates) >= s.catalog_max_candidates:
                    reason = "over_cap"
                else:
                    seen.add(key)
                    proposal.candidates.append(Proposed(text, source))
                    continue
                proposal.dropped.append(Dropped(text, f"{reason} ({source})"))
        return proposal
