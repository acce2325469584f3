from services.rewriter.parsing import parse_candidates

QUERY = "cordless drill for deck screws"


def texts(raw: list[str], query: str = QUERY) -> list[str]:
    return [c.text for c in parse_candidates(raw, query)[0]]


def reasons(raw: list[str], query: str = QUERY) -> list[str]:
    return [d.reason for d in parse_candidates(raw, query)[1]]


def test_numbering_bullets_labels_and_quotes_are_stripped() -> None:
    raw = ['1. "impact driver kit"', "2) deck screw gun", "- Query: 'drill driver'", "* **battery drill**"]
    assert texts(raw) == ["impact driver kit", "deck screw gun", "drill driver", "battery drill"]


def test_one_output_with_several_lines_gives_several_candidates() -> None:
    assert texts(["drill driver\n\n  \nscrew gun\n"]) == ["drill driver", "screw gun"]


def test_copies_of_the_query_are_dropped_whatever_the_case_and_spacing() -> None:
    assert texts(["Cordless  Drill for Deck Screws", "cordless drill for deck screws."]) == []
    assert reasons(["Cordless  Drill for Deck Screws"]) == ["copy_of_query"]


def test_duplicates_are_dropped_after_the_first() -> None:
    kept, dropped = parse_candidates(["drill driver", "1. Drill Driver", "drill driver!"], QUERY)
    assert [c.text for c in kept] == ["drill driver"]
    assert [d.reason for d in dropped] == ["duplicate", "duplicate"]


def test_empty_overlong_and_non_text_outputs_are_dropped_with_reasons() -> None:
    raw = ["", "   ", "word " * 40, "x" * 500, "https://example.com/drill", "{}[]<>|||", "12345 678"]
    kept, dropped = parse_candidates(raw, QUERY)
    assert kept == []
    assert [d.reason for d in dropped] == [
        "empty",
        "empty",
        "too_long",
        "too_long",
        "not_text",
        "not_text",
        "not_text",
    ]


def test_non_string_and_control_characters_never_crash() -> None:
    kept, dropped = parse_candidates([None, 42, "drill\x00 driver\x07", "\ud800bad surrogate"], QUERY)  # type: ignore[list-item]
    assert "drill driver" in [c.text for c in kept]
    assert [d.reason for d in dropped][:2] == ["not_text", "not_text"]


def test_dropped_text_is_bounded_for_responses() -> None:
    _, dropped = parse_candidates(["y" * 5000], QUERY, max_chars=96)
    assert len(dropped[0].text) <= 192
