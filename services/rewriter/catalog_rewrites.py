"""Catalog-grounded rewrites of one query: relaxation, spelling correction, pseudo-relevance feedback.

Pure functions over CatalogTerms; each returns its candidates best first (possibly none). A query's
content terms are its words that are not stopwords, as plural-folded stems; a term "matches" a
product when the product's title, brand or category holds it.

relax: a query of 3 to MAX_RELAX_TERMS content terms that fewer than `min_matches` products match as
  a whole is over-specified. Terms are dropped one at a time, the least informative first: the term
  whose removal lets the most products match the remaining terms; ties go to the term rarer in the
  catalog (a word the catalog lacks goes first), then to the earlier one. The head term is kept: the
  last content word before the first attribute marker (with, without, for, by, from), else the last
  content word ("dresser" in "black 5 drawer dresser by guilford"), when the catalog knows it.
  Dropping stops once `min_matches` products match, and never goes below 2 content terms. The
  candidate is the query without the dropped words (and without stopwords left dangling), in the
  original order, proposed only if it matches more products than the query did.
spell: a word is corrected when the catalog does not know it (neither the word nor its plural-folded
  stem), or when it is very rare (at most RARE_DF products) while a word one edit away is RARE_RATIO
  times as frequent. The replacement is the vocabulary word at the smallest Damerau-Levenshtein
  (optimal string alignment) distance, at most 1 for words of 4-5 letters and `max_distance` from 6;
  then one that shares a product with the query's other known words; then the most frequent; then
  alphabetical. When the query has other known words the replacement must share a product with one
  of them; a distance-2 replacement must keep the first letter and not merely add or cut a suffix
  ("zipper"/"zippered"). Words with digits (sizes, model numbers), units, stopwords and words under
  4 letters stay; only the first MAX_SPELL_WORDS content words are checked.
prf: the query's own terms (or their spelling corrections) that some top title contains, plus the
  terms found in at least 40% of the top titles and in at least 2 of them (unless only one title
  came), brand names excepted (the candidate describes the product, not one maker), scored by that
  count times the catalog IDF, ln((N+1)/(df+1)); at most `max_words` words, ordered by their mean
  relative position in the titles and spelled as the titles spell them most often. Nothing when no
  title contains a query term (off-topic results).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass

from services.core.text import normalize_query
from services.rewriter.catalog_terms import (
    ATTRIBUTE_MARKERS,
    STOPWORDS,
    UNITS,
    CatalogTerms,
    Word,
    keys,
    stem,
    words,
)
from services.rewriter.spelling import SpellIndex

MIN_TERMS = 2  # relaxation never leaves fewer content terms
MAX_RELAX_TERMS = 8  # longer queries are not relaxed (bounds the work per query)
MAX_SPELL_WORDS = 12  # words checked for typos at most (bounds the work per query)
RARE_DF = 2
RARE_RATIO = 50
PRF_SUPPORT = 0.4  # share of the top titles an expansion term must appear in
MAX_WORDS_SCANNED = 64  # words of a query or title considered at most


@dataclass(frozen=True)
class CatalogKnobs:
    per_kind: int = 1
    min_matches: int = 2
    max_distance: int = 2
    prf_titles: int = 5
    max_words: int = 6


def _content(text: str) -> list[Word]:
    return [w for w in words(text)[:MAX_WORDS_SCANNED] if w.is_content]


def _distinct(query: str, texts: list[str], limit: int) -> list[str]:
    seen = {normalize_query(query)}
    out = []
    for text in texts:
        key = normalize_query(text)
        if key and key not in seen:
            seen.add(key)
            out.append(text)
    return out[:limit]


# relaxation


def head_term(query: str) -> str | None:
    """The stem of the word naming the product: the last content word before the first attribute
    marker, else the last content word."""
    head = None
    for word in words(query)[:MAX_WORDS_SCANNED]:
        if word.key in ATTRIBUTE_MARKERS and head is not None:
            break
        if word.is_content:
            head = stem(word.key)
    return head


def _without(query: str, dropped: set[str]) -> str:
    """The query's whitespace-separated chunks minus those whose content terms were all dropped; a run
    of chunks without content ("and a", "with") stays only between two content chunks that stay."""
    chunks = query.split(" ")
    stays: list[bool | None] = []  # None: no content
    for chunk in chunks:
        stems = {stem(w.key) for w in words(chunk) if w.is_content}
        stays.append(not stems <= dropped if stems else None)
    after: list[bool] = []  # whether the next content chunk stays, from the right
    last = False
    for flag in reversed(stays):
        after.append(last)
        last = flag if flag is not None else last
    after.reverse()
    kept, before = [], False
    for chunk, flag, next_stays in zip(chunks, stays, after, strict=True):
        if flag if flag is not None else (before and next_stays):
            kept.append(chunk)
        before = flag if flag is not None else before
    return " ".join(kept)


def relax(terms: CatalogTerms, query: str, knobs: CatalogKnobs) -> list[str]:
    ordered = list(dict.fromkeys(stem(w.key) for w in _content(query)))
    if not MIN_TERMS < len(ordered) <= MAX_RELAX_TERMS:
        return []
    start = terms.count_all(ordered)
    if start >= knobs.min_matches:
        return []
    head = head_term(query)
    keep = head if head is not None and terms.df(head) > 0 else None
    current = list(ordered)
    options: list[tuple[int, int, int, str]] = []
    while len(current) > MIN_TERMS:
        # (-matches without the term, its df, its position, term): the first one is dropped.
        options = sorted(
            (-terms.count_all(t for t in current if t != term), terms.df(term), i, term)
            for i, term in enumerate(current)
            if term != keep
        )
        current.remove(options[0][3])
        if -options[0][0] >= knobs.min_matches:
            break
    # The chosen relaxation first, then the other terms that could have gone at the last step.
    earlier = set(ordered) - set(current) - {options[0][3]}
    texts = [_without(query, earlier | {term}) for matches, _, _, term in options if -matches > start]
    return _distinct(query, texts, knobs.per_kind)


# spelling


def _shares_product(terms: CatalogTerms, word: str, context: set[str]) -> bool:
    return any(terms.cooccur(stem(word), other) for other in context)


def _corrections(
    terms: CatalogTerms, index: SpellIndex, word: Word, context: set[str], max_distance: int
) -> list[str]:
    key = word.key
    if not word.is_content or key in UNITS or len(key) < 4 or not key.isalpha():
        return []
    if terms.known(key):
        df = terms.df(key)
        if df > RARE_DF:
            return []
        found = [(d, neg, w) for d, neg, w in index.lookup(key, 1) if d == 1 and -neg >= RARE_RATIO * df]
    else:
        found = index.lookup(key, min(1 if len(key) <= 5 else 2, max_distance))
    options = []
    for distance, neg_df, option in found:
        if stem(option) == stem(key):
            continue
        if distance == 2 and (option[0] != key[0] or option.startswith(key) or key.startswith(option)):
            continue  # a new first letter: rarely a typo; a suffix added or cut: another form of the word
        shared = _shares_product(terms, option, context)
        if context and not shared:
            continue
        options.append((distance, not shared, neg_df, option))
    return [option for *_, option in sorted(options)]


def _cased(original: str, replacement: str) -> str:
    if len(original) > 1 and original.isupper():
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def spell(terms: CatalogTerms, index: SpellIndex, query: str, knobs: CatalogKnobs) -> list[str]:
    found = [w for w in words(query) if w.is_content][:MAX_SPELL_WORDS]
    known = {stem(w.key) for w in found if terms.known(w.key)}
    fixes = []
    for word in found:
        context = known - {stem(word.key)}
        if options := _corrections(terms, index, word, context, knobs.max_distance):
            fixes.append((word, options))
    if not fixes:
        return []
    texts = []
    for rank in range(knobs.per_kind):
        if rank and not any(len(options) > rank for _, options in fixes):
            break
        text, end = [], 0
        for word, options in fixes:
            text += [query[end : word.start], _cased(word.text, options[min(rank, len(options) - 1)])]
            end = word.end
        texts.append("".join([*text, query[end:]]))
    return _distinct(query, texts, knobs.per_kind)


# pseudo-relevance feedback


def prf(
    terms: CatalogTerms, query: str, feedback: tuple[str, ...], knobs: CatalogKnobs, corrected: str = ""
) -> list[str]:
    """`corrected`: the query with its typos fixed, whose words the titles may confirm as well."""
    # The servicer cleaned the titles (services.core.text.clean).
    titles = [title for title in feedback[: knobs.prf_titles] if title.strip()]
    if not titles:
        return []
    support: Counter[str] = Counter()  # stem -> titles holding it
    positions: defaultdict[str, list[float]] = defaultdict(list)  # first relative position per title
    spelled: Counter[tuple[str, str]] = Counter()  # (stem, word as written) -> times seen
    stems: dict[str, str] = {}
    for title in titles:
        content = [k for k in keys(title)[:MAX_WORDS_SCANNED] if k not in STOPWORDS]
        seen: set[str] = set()
        for i, key in enumerate(content):
            term = stems.get(key) or stems.setdefault(key, stem(key))
            spelled[term, key] += 1
            if term not in seen:
                seen.add(term)
                positions[term].append(i / len(content))
        support.update(seen)
    query_terms = list(dict.fromkeys(stem(w.key) for w in _content(f"{query} {corrected}")))
    confirmed = [t for t in query_terms if support[t]]
    if not confirmed:
        return []  # no title holds a query word: the top products are off-topic
    needed = max(min(2, len(titles)), math.ceil(PRF_SUPPORT * len(titles)))
    size = max(terms.size, 1)

    def idf(term: str) -> float:
        return math.log((size + 1) / (min(terms.df(term), size) + 1))

    expansions = sorted(
        (-count * weight, term)
        for term, count in support.items()
        if count >= needed
        and term not in query_terms
        and term not in terms.brands
        and any(c.isalpha() for c in term)
        and (weight := idf(term)) > 0
    )
    # Each term as the titles spell it most often (the first seen on ties).
    surface: dict[str, str] = {}
    for (term, key), _ in sorted(spelled.items(), key=lambda item: -item[1]):
        surface.setdefault(term, key)
    texts = []
    for length in range(knobs.max_words, MIN_TERMS - 1, -2):
        chosen = confirmed[:length] + [term for _, term in expansions[: max(length - len(confirmed), 0)]]
        chosen.sort(key=lambda term: (sum(positions[term]) / len(positions[term]), term))
        texts.append(" ".join(surface[term] for term in chosen))
        if len(texts) >= knobs.per_kind:
            break
    return _distinct(query, texts, knobs.per_kind)
