"""Text rules shared by the gateway, the pipeline and the services."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
_CONTROL = {"Cc", "Cf", "Cs", "Co", "Cn"}


def clean(text: str) -> str:
    """NFKC, control characters removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(" " if unicodedata.category(ch) in _CONTROL else ch for ch in text)
    return _SPACES.sub(" ", text).strip()


def normalize_query(text: str) -> str:
    """The identity of a query for caching and pair ids: cleaned and case-folded."""
    return clean(text).casefold()


def product_text(title: str, brand: str = "", category: str = "") -> str:
    """The text that is embedded and judged: title, then brand and category as context."""
    parts = [title]
    if brand and brand.casefold() not in title.casefold():
        parts.append(f"brand: {brand}")
    if category:
        parts.append(f"category: {category}")
    return ". ".join(parts)
