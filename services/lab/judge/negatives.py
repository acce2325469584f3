"""Hard negatives for the business judge from what the pipeline retrieved: for each labelled query, the
products its syntheses judged and rejected and no human labelled. They are what the judge meets when it
scores retrieval candidates, and labels alone (the shop's own search results, mostly relevant) rarely
show it such pairs. Products the synthesis accepted are left out: an unlabelled product is unknown,
not irrelevant, and one the judges accepted is too likely a false negative.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from services.core.text import clean, normalize_query
from services.lab.labels import LabelledPair
from services.lab.store_files import read_rows

GRADE = 0.0
LABEL = "mined"


def mine_negatives(
    stores: Sequence[Path],
    pairs: Sequence[LabelledPair],
    texts: dict[str, str],
    per_query: int,
    seed: int,
) -> list[LabelledPair]:
    """Up to per_query rejected, unlabelled products for every query of `pairs`, a seeded sample."""
    labelled: dict[str, set[str]] = {}
    spelling: dict[str, str] = {}
    for pair in pairs:
        nq = normalize_query(pair.query)
        labelled.setdefault(nq, set()).update({pair.product, pair.text})
        spelling.setdefault(nq, pair.query)
    rejected: dict[str, dict[str, str]] = {}
    for store in stores:
        for path in sorted(store.glob("rewrites-*.parquet")):
            for row in read_rows(path, ("query", "judged"), ("query",)):
                nq = normalize_query(str(row.get("query") or ""))
                if nq not in labelled or not row.get("judged"):
                    continue
                try:
                    items = json.loads(str(row["judged"]))
                except ValueError:
                    continue
                for item in items if isinstance(items, list) else []:
                    product = clean(str(item.get("product_id") or ""))
                    text = texts.get(product) or clean(str(item.get("title") or ""))
                    if item.get("accepted") or not product or not text or {product, text} & labelled[nq]:
                        continue
                    rejected.setdefault(nq, {})[product] = text
    rng = np.random.default_rng(seed)
    mined = []
    for nq in sorted(rejected):
        products = sorted(rejected[nq])
        for index in sorted(rng.permutation(len(products))[:per_query]):
            product = products[int(index)]
            mined.append(LabelledPair(0, spelling[nq], product, rejected[nq][product], LABEL, GRADE, False))
    return mined
