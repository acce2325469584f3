from services.pipeline.ids import cache_key, pair_id


def test_pair_id_is_deterministic_and_ignores_case_and_spacing_of_the_query() -> None:
    assert pair_id("Cordless Drill", "P1") == pair_id("  cordless   drill ", "P1")
    assert len(pair_id("drill", "P1")) == 32


def test_pair_id_differs_by_query_and_by_product() -> None:
    assert pair_id("drill", "P1") != pair_id("drill", "P2")
    assert pair_id("drill", "P1") != pair_id("saw", "P1")
    # no ambiguity from naive concatenation
    assert pair_id("drill P", "1") != pair_id("drill", "P1")


def test_cache_key_depends_on_normalised_query_parameters_and_version() -> None:
    base = cache_key("Deck Over", 4, 20, "v1")
    assert base == cache_key(" deck  over ", 4, 20, "v1")
    assert base.startswith("tailsynth:result:")
    assert (
        len(
            {
                base,
                cache_key("deck over", 5, 20, "v1"),
                cache_key("deck over", 4, 21, "v1"),
                cache_key("deck over", 4, 20, "v2"),
                cache_key("deck overs", 4, 20, "v1"),
            }
        )
        == 5
    )
