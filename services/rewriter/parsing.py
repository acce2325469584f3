"""Turn raw model outputs into clean, distinct rewrite candidates; never raise on garbage.

Each raw output may hold one rewrite or a list of them. Anything unusable is dropped with a reason:
empty, copy_of_query (copy_of_title for a product prompt), too_long, not_text, duplicate.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from services.core.text import clean, normalize_query

_LIST_MARKER = re.compile(r"^\s*(?:\(?\d{1,2}[.):\]]|[-*\u2022>#]+)\s*")
_LABEL = re.compile(
    r"^\s*(?:rewrite|rewritten query|query|search query|search|answer|output)\s*\d*\s*[:=-]\s*", re.I
)
_QUOTES = "\"'`\u201c\u201d\u2018\u2019\u00ab\u00bb*_"
_URLISH = re.compile(r"https?://|www\.|[<>{}\[\]|\\]")


@dataclass(frozen=True, slots=True)
class Parsed:
    text: str


@dataclass(frozen=True, slots=True)
class Dropped:
    text: str
    reason: str


def _strip_decoration(line: str) -> str:
    for _ in range(3):  # "1. Query: "foo"" needs several passes
        stripped = _LIST_MARKER.sub("", line)
        stripped = _LABEL.sub("", stripped)
        stripped = stripped.strip().strip(_QUOTES).strip().rstrip(".,;:!").strip()
        if stripped == line:
            break
        line = stripped
    return line


def _is_text(candidate: str) -> bool:
    """Mostly letters, digits and ordinary punctuation; no URLs, markup or stray symbols."""
    if _URLISH.search(candidate):
        return False
    letters = sum(ch.isalpha() for ch in candidate)
    odd = sum(unicodedata.category(ch)[0] in {"S", "C"} for ch in candidate)
    return letters >= max(2, len(candidate) // 2) and odd <= 2


def _candidate_lines(raw: str) -> list[str]:
    lines = [line for line in raw.replace("\r", "\n").split("\n") if line.strip()]
    return lines or [raw]


def parse_candidates(
    raw_outputs: list[str],
    query: str,
    max_words: int = 12,
    max_chars: int = 96,
    copy_reason: str = "copy_of_query",
) -> tuple[list[Parsed], list[Dropped]]:
    """Usable candidates and the dropped ones; a copy of `query` (for a product prompt, the product's
    title) is dropped as copy_reason."""
    kept: list[Parsed] = []
    dropped: list[Dropped] = []
    seen = {normalize_query(query)}
    seen_kept: set[str] = set()
    for raw in raw_outputs:
        if not isinstance(raw, str):
            dropped.append(Dropped(repr(raw)[:max_chars], "not_text"))
            continue
        for line in _candidate_lines(raw):
            shown = clean(line)[: max_chars * 2]
            text = _strip_decoration(clean(line))
            key = normalize_query(text)
            if not text:
                reason = "empty"
            elif len(text) > max_chars or len(text.split()) > max_words:
                reason = "too_long"
            elif not _is_text(text):
                reason = "not_text"
            elif key in seen_kept:
                reason = "duplicate"
            elif key in seen:
                reason = copy_reason
            else:
                seen_kept.add(key)
                kept.append(Parsed(text))
                continue
            dropped.append(Dropped(shown, reason))
    return kept, dropped
