"""Deterministic identifiers: the same query and product always give the same pair id."""

from __future__ import annotations

import hashlib
import json

from services.core.text import normalize_query


def pair_id(query: str, product_id: str) -> str:
    payload = json.dumps([normalize_query(query), product_id], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def cache_key(query: str, num_rewrites: int, top_k: int, pipeline_version: str, origin: str = "") -> str:
    fields: dict[str, object] = {
        "q": normalize_query(query),
        "n": num_rewrites,
        "k": top_k,
        "v": pipeline_version,
    }
    if origin not in ("", "query"):  # a logged query keeps the key it always had
        fields["o"] = origin
    payload = json.dumps(fields, sort_keys=True, ensure_ascii=False)
    return "tailsynth:result:" + hashlib.sha256(payload.encode()).hexdigest()
