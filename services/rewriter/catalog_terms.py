"""The catalog as terms: tokenisation, light plural folding and an inverted index over products.

A product's document is its title, brand and category (the text the retriever embeds, without the
description). Text is cleaned and case-folded as services.core.text does; a word is a run of letters
and digits, apostrophes inside a word are dropped ("men's" -> "mens"). Matching uses a light stem
that folds English plurals ("drills" -> "drill", "batteries" -> "battery"), the same on both sides.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from services.core.catalog import Product

_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
_APOSTROPHES = str.maketrans("", "", "'\u2019")

# Function words of queries and titles; never content terms, never corrected, never relaxation targets.
STOPWORDS = frozenset(
    """a an the and or nor but for with without w of in on at to by from into onto over under per via
    x vs as than that which who whose what when where how is are be been being was were have has had
    do does can will would should could this these those it its i me my we our you your he she his
    her they them their all any each some such very too just also only so if not""".split()
)
# Units of measure: content words, but never spelling-corrected ("inches" is not a typo of "benches").
UNITS = frozenset(
    """inch inches feet foot yard yards pound pounds ounce ounces gallon gallons quart quarts pint
    pints liter liters litre litres meter meters metre metres gram grams watt watts volt volts amps
    amp btu""".split()
)
# Words after which a product query names attributes, not the product: "dresser by guilford".
ATTRIBUTE_MARKERS = frozenset("with without for by from".split())


@dataclass(frozen=True, slots=True)
class Word:
    """One word of a cleaned text: its span there and its lookup key."""

    text: str
    start: int
    end: int
    key: str  # case-folded, apostrophes removed

    @property
    def has_digit(self) -> bool:
        return any(ch.isdigit() for ch in self.key)

    @property
    def is_content(self) -> bool:
        return self.key not in STOPWORDS


def words(text: str) -> list[Word]:
    """The words of an already cleaned text, with spans into it."""
    return [
        Word(m.group(), m.start(), m.end(), m.group().casefold().translate(_APOSTROPHES))
        for m in _WORD.finditer(text)
    ]


def keys(text: str) -> list[str]:
    """The lookup keys of a cleaned text's words (what words() gives, without the spans)."""
    return [found.casefold().translate(_APOSTROPHES) for found in _WORD.findall(text)]


def stem(key: str) -> str:
    """Fold English plurals; keys with digits (model numbers, sizes) stay as they are."""
    if len(key) <= 3 or not key.isalpha():
        return key
    if key.endswith("ies") and len(key) > 4:
        return key[:-3] + "y"
    if key.endswith(("sses", "ches", "shes", "xes", "zes")):
        return key[:-2]
    if key.endswith("s") and not key.endswith(("ss", "us", "is")):
        return key[:-1]
    return key


def product_document(product: Product) -> str:
    return " ".join(part for part in (product.title, product.brand, product.category) if part)


def catalog_fingerprint(products: Iterable[Product]) -> str:
    """sha256 over what the engine reads of each product, in catalog order."""
    digest = hashlib.sha256()
    for p in products:
        digest.update("\x1f".join((p.id, p.title, p.brand, p.category)).encode())
        digest.update(b"\x1e")
    return digest.hexdigest()


class CatalogTerms:
    """Document frequencies (surface words and stems), stem -> product rows postings, brand stems."""

    def __init__(self, products: list[Product]) -> None:
        self.size = len(products)
        surface: Counter[str] = Counter()
        in_brand: Counter[str] = Counter()
        postings: dict[str, set[int]] = {}
        stems: dict[str, str] = {}
        # Catalog fields are already cleaned (load_catalog); stems are computed once per word.
        for row, product in enumerate(products):
            found = set(keys(product_document(product)))
            surface.update(found)
            for key in {stems.get(k) or stems.setdefault(k, stem(k)) for k in found}:
                postings.setdefault(key, set()).add(row)
            if product.brand:
                in_brand.update({stems.get(k) or stem(k) for k in keys(product.brand)})
        self.surface_df: dict[str, int] = dict(surface)
        self.postings: dict[str, frozenset[int]] = {k: frozenset(v) for k, v in postings.items()}
        # Stems found mostly in the brand field ("fernhollow", not the "pine" of "Halvard & Pine").
        self.brands = frozenset(k for k, n in in_brand.items() if 2 * n >= len(self.postings.get(k, ())))

    def df(self, key: str) -> int:
        """Products whose document holds the key's stem."""
        found = self.postings.get(stem(key))
        return len(found) if found is not None else 0

    def known(self, key: str) -> bool:
        return key in self.surface_df or stem(key) in self.postings

    def cooccur(self, a: str, b: str) -> bool:
        """Some product holds both stems."""
        return not self.postings.get(a, frozenset()).isdisjoint(self.postings.get(b, frozenset()))

    def count_all(self, stems: Iterable[str]) -> int:
        """Products whose document holds every stem."""
        sets = sorted((self.postings.get(s, frozenset()) for s in stems), key=len)
        if not sets:
            return self.size
        if not sets[0]:
            return 0
        return len(sets[0].intersection(*sets[1:]))
