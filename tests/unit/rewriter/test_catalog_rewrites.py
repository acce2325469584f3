import pytest
from catalog_samples import DRILL_TITLES, PRODUCTS

from services.core.catalog import Product
from services.rewriter.catalog_rewrites import CatalogKnobs, head_term, prf, relax, spell
from services.rewriter.catalog_terms import CatalogTerms, words
from services.rewriter.spelling import SpellIndex

TERMS = CatalogTerms(PRODUCTS)
SPELLING = SpellIndex(((w, df) for w, df in TERMS.surface_df.items() if len(w) >= 3 and w.isalpha()), 2)
KNOBS = CatalogKnobs()


def content_words(text: str) -> int:
    return sum(w.is_content for w in words(text))


# relaxation


def test_over_specified_query_drops_the_term_that_recovers_most_products() -> None:
    # All four words together: only the velvet pillow. Without "velvet": two pillows; without
    # "turquoise" or "throw": still one.
    assert TERMS.count_all(["turquoise", "velvet", "throw", "pillow"]) == 1
    assert relax(TERMS, "turquoise velvet throw pillow", KNOBS) == ["turquoise throw pillow"]


def test_a_word_the_catalog_lacks_goes_first_with_its_dangling_stopword() -> None:
    assert relax(TERMS, "cordless drill for zombies", KNOBS) == ["cordless drill"]
    assert relax(TERMS, "velvet turquoise pillow zebra", KNOBS) == ["turquoise pillow"]


def test_well_matched_short_or_hopeless_queries_are_left_alone() -> None:
    assert relax(TERMS, "voltra cordless drill", KNOBS) == []  # two products match
    assert relax(TERMS, "velvet zebra", KNOBS) == []  # two content terms: nothing to drop
    assert relax(TERMS, "zebra giraffe lion", KNOBS) == []  # no relaxation matches anything
    assert relax(TERMS, "", KNOBS) == []


def test_relaxation_never_goes_below_two_content_terms() -> None:
    strict = CatalogKnobs(min_matches=10)  # unreachable: relax as far as allowed
    (relaxed,) = relax(TERMS, "turquoise velvet throw pillow", strict)
    assert content_words(relaxed) == 2
    assert "pillow" in relaxed  # the head noun is kept


def test_the_head_noun_is_kept_even_when_dropping_it_recovers_more() -> None:
    assert head_term("black 5 drawer dresser by guilford") == "dresser"
    assert head_term("cordless drills") == "drill"
    titles = [
        "Black Oak Dresser",
        "White Oak Dresser",
        "Black Oak Desk",
        "Black Oak Bookcase",
        "Black Oak Bed",
    ]
    terms = CatalogTerms([Product(str(i), title) for i, title in enumerate(titles)])
    # Dropping "dresser" would let the most products match ("black oak": 4), but it names the product.
    assert terms.count_all(["black", "oak"]) > terms.count_all(["oak", "dresser"]) >= 2
    assert relax(terms, "black oak dresser by guilford", KNOBS) == ["oak dresser"]
    # Without an attribute marker the head is the last word: here unknown, so not protected.
    assert relax(terms, "black oak dresser guilford", KNOBS) == ["black oak"]


def test_alternatives_come_after_the_best_relaxation() -> None:
    # "zebra" goes first; then "kit" (3 products match the rest), then the runners-up (1 each).
    found = relax(TERMS, "cordless drill kit zebra", CatalogKnobs(per_kind=3))
    assert found == ["cordless drill", "drill kit", "cordless kit"]
    assert relax(TERMS, "cordless drill kit zebra", KNOBS) == found[:1]
    # Alternatives that match no more products than the query are not offered.
    assert relax(TERMS, "turquoise velvet throw pillow", CatalogKnobs(per_kind=3)) == [
        "turquoise throw pillow"
    ]


# spelling


@pytest.mark.parametrize(
    ("query", "fixed"),
    [
        ("cordles dril", "cordless drill"),  # one deletion each
        ("cordless dirll", "cordless drill"),  # transposition
        ("kichin faucet", "kitchen faucet"),  # distance 2
        ("stainles stel faucet", "stainless steel faucet"),
        ("Cordles Dril", "Cordless Drill"),  # case kept
        ("dril 20v", "drill 20v"),  # the model number untouched
        ("pilow", "pillow"),
    ],
)
def test_typos_are_corrected_against_the_catalog(query: str, fixed: str) -> None:
    assert spell(TERMS, SPELLING, query, KNOBS) == [fixed]


@pytest.mark.parametrize(
    "query",
    [
        "cordless drill",
        "cordless drills",  # plural of a catalog word
        "pillow 20 inches",  # unit
        "drill 7.5 amp",
        "xqzvbnm",  # gibberish: nothing within distance 2
        "pillow cordles",  # the only correction never shares a product with "pillow"
    ],
)
def test_correct_words_numbers_and_gibberish_are_left_alone(query: str) -> None:
    assert spell(TERMS, SPELLING, query, KNOBS) == []


def test_short_words_allow_one_edit_only() -> None:
    # "pilwo" is 2 edits from "pillow" (5 letters: distance 1 at most); "pillwo" (6) may take 2.
    assert spell(TERMS, SPELLING, "pilwo", KNOBS) == []
    assert spell(TERMS, SPELLING, "pilwlo", KNOBS) == ["pillow"]
    assert spell(TERMS, SPELLING, "pilwlo", CatalogKnobs(max_distance=1)) == []


def test_a_rare_catalog_word_next_to_a_frequent_one_is_corrected() -> None:
    bits = [Product(f"B{i}", f"Drill Bit Set {i}") for i in range(5)]
    drills = [Product(f"D{i}", f"Cordless Drill {i}") for i in range(100)]
    typo = Product("X", "Dril Bit Set")  # a typo in the catalog itself
    terms = CatalogTerms([*bits, *drills, typo])
    index = SpellIndex(terms.surface_df.items(), 2)
    assert terms.known("dril")
    assert spell(terms, index, "dril bit", KNOBS) == ["drill bit"]
    few = CatalogTerms([*bits, *drills[:10], typo])  # "drill" only 15x as frequent: left alone
    assert spell(few, SpellIndex(few.surface_df.items(), 2), "dril bit", KNOBS) == []


# pseudo-relevance feedback


def test_prf_builds_a_product_style_query_from_the_top_titles() -> None:
    (candidate,) = prf(TERMS, "drill", DRILL_TITLES, KNOBS)
    assert candidate == "cordless drill"  # in all three titles, before "drill"; brands left out
    assert prf(TERMS, "drill zebra", DRILL_TITLES, KNOBS) == ["cordless drill"]  # unconfirmed word goes


def test_prf_adds_terms_most_titles_share_and_keeps_within_the_word_limit() -> None:
    titles = ("Velvet Throw Pillow, Turquoise", "Cotton Throw Pillow, Turquoise", "Linen Throw Pillow, Gray")
    (candidate,) = prf(TERMS, "pillow", titles, KNOBS)
    assert candidate.split() == ["throw", "pillow", "turquoise"]
    (short,) = prf(TERMS, "pillow", titles, CatalogKnobs(max_words=2))
    assert short.split() == ["throw", "pillow"]


def test_prf_needs_feedback_that_confirms_the_query() -> None:
    assert prf(TERMS, "drill", (), KNOBS) == []
    assert prf(TERMS, "drill", ("", "   "), KNOBS) == []
    assert prf(TERMS, "turquoise", DRILL_TITLES, KNOBS) == []  # off-topic titles
    assert prf(TERMS, "dril", DRILL_TITLES, KNOBS, corrected="drill") == ["cordless drill"]
    assert prf(TERMS, "cordless drill", DRILL_TITLES, KNOBS) == []  # nothing to add: same as the query


# garbage


GARBAGE = [
    "🔥🔥🔥 drill 🔥",
    "🙂",
    "x" * 500,
    " ".join(["cordles"] * 100),
    "беспроводная дрель",
    "電動ドリル 充電式",
    "!!! ??? ...",
    "a" * 3 + " " + "9" * 40,
    "drill\u200b\u0301 pillow",
]


@pytest.mark.parametrize("query", GARBAGE)
def test_garbage_never_raises(query: str) -> None:
    feedback = ("", "🙂", "беспроводная дрель Voltra", "x" * 600, *DRILL_TITLES)
    for per_kind in (1, 3):
        knobs = CatalogKnobs(per_kind=per_kind)
        for found in (
            relax(TERMS, query, knobs),
            spell(TERMS, SPELLING, query, knobs),
            prf(TERMS, query, feedback, knobs),
        ):
            assert isinstance(found, list) and len(found) <= per_kind
            assert all(text.strip() and text != query for text in found)
