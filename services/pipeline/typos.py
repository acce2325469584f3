"""Misspelled queries made from correct ones, the way people mistype on a keyboard.

One word of four or more letters gets one edit: a letter left out, doubled, swapped with its neighbour,
or replaced by a key next to it on a QWERTY keyboard (the four kinds of typing errors Damerau counted
as most of them). The draw is seeded by the text, so the same query always gets the same typo.
"""

from __future__ import annotations

import hashlib
import random

ALGORITHM = "typos-v1"
MIN_WORD = 4
_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_ROWS):
    for _c, _key in enumerate(_row):
        near = [_row[i] for i in (_c - 1, _c + 1) if 0 <= i < len(_row)]
        # The rows are staggered: the row above holds the keys at c and c + 1, the row below c - 1 and c.
        for other, columns in ((_r - 1, (_c, _c + 1)), (_r + 1, (_c - 1, _c))):
            if 0 <= other < len(_ROWS):
                near += [_ROWS[other][i] for i in columns if 0 <= i < len(_ROWS[other])]
        NEIGHBOURS[_key] = "".join(near)


def _edits(word: str, rng: random.Random) -> str:
    """The word with one typo; the first letter stays (people rarely mistype it)."""
    i = rng.randrange(1, len(word))
    kind = rng.choice(("drop", "double", "swap", "neighbour"))
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    if kind == "swap" and i < len(word) - 1 and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    near = NEIGHBOURS.get(word[i].lower(), "")
    if not near:
        return word[:i] + word[i + 1 :]
    key = rng.choice(near)
    return word[:i] + (key.upper() if word[i].isupper() else key) + word[i + 1 :]


def misspell(text: str) -> str | None:
    """The text with one realistic typo, or None when no word is long enough (all short or numbers)."""
    words = text.split(" ")
    eligible = [i for i, w in enumerate(words) if len(w) >= MIN_WORD and w.isalpha() and w.isascii()]
    if not eligible:
        return None
    rng = random.Random(hashlib.sha256(text.encode()).digest())
    index = rng.choice(eligible)
    words[index] = _edits(words[index], rng)
    misspelled = " ".join(words)
    return misspelled if misspelled.casefold() != text.casefold() else None
