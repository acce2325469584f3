import pytest

from services.rewriter.spelling import SpellIndex, deletes, osa_distance


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("drill", "drill", 0),
        ("dril", "drill", 1),  # insertion
        ("dirll", "drill", 1),  # adjacent transposition
        ("kichin", "kitchen", 2),  # insertion + substitution
        ("cordless", "corded", 3),  # over the limit of 2: reported as 3
        ("ab", "abcdef", 3),
    ],
)
def test_optimal_string_alignment_distance(a: str, b: str, distance: int) -> None:
    assert osa_distance(a, b, 2) == min(distance, 3)
    assert osa_distance(b, a, 2) == min(distance, 3)


def test_deletes_cover_the_prefix_only() -> None:
    assert deletes("abc", 1) == {"abc", "bc", "ac", "ab"}
    long = deletes("abcdefghij", 2)
    assert "abcdefg" in long and "abcdefghij" not in long
    assert max(map(len, long)) == 7
    assert len(long) <= 1 + 7 + 21


def test_lookup_finds_close_words_best_first() -> None:
    index = SpellIndex([("drill", 40), ("grill", 3), ("drills", 2), ("pillow", 9), ("kitchen", 5)], 2)
    assert index.lookup("dril", 1) == [(1, -40, "drill")]
    assert [w for _, _, w in index.lookup("drlil", 2)] == ["drill", "grill", "drills"]
    assert index.lookup("kichin", 2) == [(2, -5, "kitchen")]
    assert index.lookup("kichin", 1) == []
    assert index.lookup("xqzvbnm", 2) == []
    assert index.nbytes > 0


def test_lookup_is_exact_beyond_the_indexed_prefix() -> None:
    index = SpellIndex([("stainless", 7), ("stainlessly", 1)], 2)
    # Typo after the 7-letter prefix: found through the prefix, verified on the whole word.
    assert index.lookup("stainlesss", 1) == [(1, -7, "stainless")]
    assert index.lookup("stainlezz", 1) == []
    assert index.lookup("stainlezz", 2) == [(2, -7, "stainless")]
