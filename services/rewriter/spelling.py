"""Spelling correction against a vocabulary: SymSpell-style deletes index, Damerau-Levenshtein check.

Every vocabulary word contributes the strings made by deleting up to `max_distance` characters from
its first PREFIX characters. Two words within edit distance d share such a delete string, so a lookup
generates the token's own deletes, collects the words filed under them and verifies each with the
real (optimal string alignment) Damerau-Levenshtein distance, in which an adjacent transposition
costs 1. No per-token scan of the vocabulary.

Memory stays bounded: the index keeps no strings, only two parallel numpy arrays sorted by the delete
string's hash (int64 hash, int32 word number; 12 bytes per entry, at most 1 + 7 + 21 = 29 entries per
word with PREFIX 7 and distance 2). A hash collision only adds a candidate that the distance check
rejects, so answers are exact and do not depend on the hash seed.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations

import numpy as np

PREFIX = 7


def deletes(word: str, max_distance: int) -> set[str]:
    """The word's prefix and every string made by deleting up to max_distance of its characters."""
    head = word[:PREFIX]
    found = {head}
    for distance in range(1, min(max_distance, len(head) - 1) + 1):
        for dropped in combinations(range(len(head)), distance):
            found.add("".join(ch for i, ch in enumerate(head) if i not in dropped))
    return found


def osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (insert, delete, substitute, swap neighbours); limit + 1 when
    it exceeds limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    before: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, before[j - 2] + 1)
            current[j] = value
        if min(current) > limit:
            return limit + 1
        before, previous = previous, current
    return min(previous[-1], limit + 1)


class SpellIndex:
    def __init__(self, counts: Iterable[tuple[str, int]], max_distance: int) -> None:
        self.max_distance = max_distance
        self.words: list[str] = []
        self.counts: list[int] = []
        hashes: list[int] = []
        numbers: list[int] = []
        for word, count in sorted(counts):
            number = len(self.words)
            self.words.append(word)
            self.counts.append(count)
            for key in deletes(word, max_distance):
                hashes.append(hash(key))
                numbers.append(number)
        order = np.argsort(np.asarray(hashes, dtype=np.int64), kind="stable")
        self._hashes = np.asarray(hashes, dtype=np.int64)[order]
        self._numbers = np.asarray(numbers, dtype=np.int32)[order]

    @property
    def nbytes(self) -> int:
        return int(self._hashes.nbytes + self._numbers.nbytes)

    def lookup(self, token: str, max_distance: int) -> list[tuple[int, int, str]]:
        """(distance, -count, word) for every vocabulary word within max_distance, best first."""
        max_distance = min(max_distance, self.max_distance)
        probes = np.asarray([hash(key) for key in deletes(token, max_distance)], dtype=np.int64)
        left = np.searchsorted(self._hashes, probes, side="left")
        right = np.searchsorted(self._hashes, probes, side="right")
        numbers: set[int] = set()
        for lo, hi in zip(left.tolist(), right.tolist(), strict=True):
            if hi > lo:
                numbers.update(self._numbers[lo:hi].tolist())
        found = []
        for number in numbers:
            word = self.words[number]
            distance = osa_distance(token, word, max_distance)
            if distance <= max_distance:
                found.append((distance, -self.counts[number], word))
        return sorted(found)
