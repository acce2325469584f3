import dataclasses

from catalog_samples import PRODUCTS

from services.core.catalog import Product
from services.rewriter.catalog_terms import CatalogTerms, catalog_fingerprint, keys, stem, words


def test_words_keep_spans_and_fold_case_and_apostrophes() -> None:
    text = "Men's  Drill/Driver 20V, ÅNGSTRÖM"
    found = words(text)
    assert [w.key for w in found] == ["mens", "drill", "driver", "20v", "ångström"]
    assert [text[w.start : w.end] for w in found] == ["Men's", "Drill", "Driver", "20V", "ÅNGSTRÖM"]
    assert keys(text) == [w.key for w in found]
    assert [w.is_content for w in words("pillow for the sofa")] == [True, False, False, True]


def test_stem_folds_plurals_but_not_model_numbers_or_short_words() -> None:
    assert [stem(k) for k in ["drills", "batteries", "boxes", "benches", "glass", "lbs", "20vs", "bus"]] == [
        "drill",
        "battery",
        "box",
        "bench",
        "glass",
        "lbs",
        "20vs",
        "bus",
    ]


def test_postings_document_frequencies_and_brands() -> None:
    terms = CatalogTerms(PRODUCTS)
    assert terms.size == len(PRODUCTS)
    assert terms.df("drill") == terms.df("drills") == 4  # titles, plus "Drills" in the category
    assert terms.df("tools") == 5  # category words count too
    assert terms.count_all(["cordless", "drill"]) == 3
    assert terms.count_all(["cordless", "zebra"]) == 0
    assert terms.count_all([]) == len(PRODUCTS)
    assert terms.known("drills") and not terms.known("zebra")
    assert terms.cooccur("cordless", "drill") and not terms.cooccur("cordless", "pillow")
    # Brand-field words, but not ordinary words that also appear in a brand.
    assert {"voltra", "loomhaven", "aquavell"} <= terms.brands
    assert "pillow" not in terms.brands


def test_fingerprint_follows_what_the_engine_reads() -> None:
    base = catalog_fingerprint(PRODUCTS)
    assert catalog_fingerprint(list(PRODUCTS)) == base
    changed = [*PRODUCTS[:-1], Product("K2", "Brushed Nickel Bathroom Faucet", category="Bath")]
    assert catalog_fingerprint(changed) != base
    described = [*PRODUCTS[:-1], dataclasses.replace(PRODUCTS[-1], description="new")]
    assert catalog_fingerprint(described) == base  # descriptions are not read
