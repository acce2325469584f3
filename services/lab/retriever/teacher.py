"""The teacher whose scores the retriever distils: a judge engine (the business cross-encoder by default)
run in this process, with every score kept in an on-disk cache.

Scores are the engine's calibrated relevance in [0, 1], exactly what the judge service returns for the
pair, so a score the store recorded during synthesis and one computed here are interchangeable when the
engine version is the same. The cache (SQLite, keyed by engine version, query and text) makes a re-run,
a resumed run and a later run with the same teacher free; a new engine version misses by construction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from services.core.errors import ConfigError, InvalidInput
from services.judge.config import JudgeSettings
from services.judge.engine import ENGINES, JudgeEngine, PairKind

log = logging.getLogger(__name__)

CHUNK = 2048  # pairs scored (and cached) at a time
EPSILON = 1e-4  # probabilities are clipped to [EPSILON, 1 - EPSILON] before the logit


def logit(probabilities: np.ndarray) -> np.ndarray:
    """The log-odds of calibrated scores: affine in the cross-encoder's raw logit (its calibration is
    Platt's), so margins and softmaxes over them behave like the teacher's own logits."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), EPSILON, 1 - EPSILON)
    return np.log(p / (1 - p)).astype(np.float32)


class ScoreStore:
    """(engine version, query, text) -> score, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, score REAL NOT NULL)")

    @staticmethod
    def key(version: str, query: str, text: str) -> str:
        return hashlib.sha256(json.dumps([version, query, text]).encode()).hexdigest()

    def get(self, keys: Sequence[str]) -> dict[str, float]:
        found: dict[str, float] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = self.db.execute(f"SELECT key, score FROM scores WHERE key IN ({marks})", chunk)
            found.update(rows.fetchall())
        return found

    def put(self, items: dict[str, float]) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?)", items.items())

    def close(self) -> None:
        self.db.close()


class Teacher:
    """One judge engine scoring query-product pairs, cached."""

    def __init__(self, engine: str, settings: JudgeSettings, cache: Path) -> None:
        cls = ENGINES.get(engine)
        if PairKind.QUERY_PRODUCT not in cls.kinds:
            raise InvalidInput(f"teacher {engine!r} does not judge query-product pairs")
        self.name = engine
        self.engine: JudgeEngine = cls(settings)
        try:
            self.engine.load()
        except ConfigError as error:
            raise InvalidInput(f"teacher {engine}: {error}") from None
        self.version = self.engine.version
        self.store = ScoreStore(cache)
        self.scored = 0  # pairs the engine scored in this process (the rest came from the cache)

    def scores(self, pairs: Sequence[tuple[str, str]], progress: bool = False) -> np.ndarray:
        """Calibrated scores of (query, text) pairs, in order; only pairs the cache lacks are scored."""
        from tqdm import tqdm

        keys = [ScoreStore.key(self.version, q, t) for q, t in pairs]
        known = self.store.get(keys)
        missing = [i for i, key in enumerate(keys) if key not in known]
        bar = tqdm(
            total=len(missing),
            desc=f"teacher {self.name}",
            unit="pair",
            file=sys.stderr,
            disable=not progress or not missing,
        )
        for start in range(0, len(missing), CHUNK):
            chunk = missing[start : start + CHUNK]
            batch = [(pairs[i][0], pairs[i][1], PairKind.QUERY_PRODUCT) for i in chunk]
            scored = self.engine.score(batch)
            bad = [s for s in scored if not math.isfinite(s) or not 0 <= s <= 1]
            if bad:
                raise InvalidInput(f"teacher {self.name} returned scores outside [0, 1]: {bad[:3]}")
            fresh = {keys[i]: float(s) for i, s in zip(chunk, scored, strict=True)}
            self.store.put(fresh)
            known.update(fresh)
            self.scored += len(chunk)
            bar.update(len(chunk))
        bar.close()
        return np.array([known[key] for key in keys], dtype=np.float32)

    def check_catalog(self, catalog: dict[str, str] | None) -> None:
        """Refuse a teacher trained on labels joined to another catalog than the one training reads."""
        trained = self.engine.provenance().get("catalog")
        if trained and catalog and trained.get("sha256") != catalog.get("sha256"):
            raise InvalidInput(
                f"teacher {self.name} ({self.version}) was trained on catalog {trained.get('file')} "
                f"(sha256 {str(trained.get('sha256'))[:12]}), not on {catalog.get('file')} "
                f"({str(catalog.get('sha256'))[:12]}); train a judge on this catalog's labels"
            )

    def manifest(self) -> dict[str, object]:
        return {"engine": self.name, "version": self.version, "scored_here": self.scored}

    def close(self) -> None:
        self.engine.close()
        self.store.close()
