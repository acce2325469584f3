import math
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.core.catalog import Product, load_catalog
from services.core.errors import ConfigError
from services.retriever.config import RetrieverSettings
from services.retriever.shards import (
    Shard,
    all_shards,
    built_for,
    check_manifest,
    parse_shard,
    record,
    select,
    shard_of,
)

DEMO_CATALOG = Path(__file__).resolve().parents[3] / "data" / "demo" / "catalog.csv"


@pytest.fixture(scope="module")
def demo_ids() -> list[str]:
    return [p.id for p in load_catalog(DEMO_CATALOG)]


@pytest.mark.parametrize(
    ("text", "expected"), [("0/1", Shard(0, 1)), ("1/2", Shard(1, 2)), (" 6/7 ", Shard(6, 7))]
)
def test_parse_accepts_i_of_n(text: str, expected: Shard) -> None:
    assert parse_shard(text) == expected
    assert str(parse_shard(text)) == text.strip()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("3/2", "between 0 and 1"),
        ("2/2", "between 0 and 1"),
        ("0/0", "at least 1"),
        ("x", "i/N"),
        ("1/", "i/N"),
        ("-1/2", "i/N"),
        ("1.0/2", "i/N"),
        ("", "i/N"),
    ],
)
def test_parse_refuses_nonsense_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_shard(text)


def test_the_setting_defaults_to_the_whole_catalog_and_is_validated() -> None:
    assert RetrieverSettings().shard == "0/1"
    assert RetrieverSettings(shard="1/2").shard_spec == Shard(1, 2)
    with pytest.raises(ValidationError, match="between 0 and 1"):
        RetrieverSettings(shard="3/2")


def test_assignment_is_a_stable_hash_of_the_id() -> None:
    """Pinned values: the split must not change between processes, machines or Python versions."""
    assert [shard_of("DEMO-000001", n) for n in (1, 2, 7, 1000)] == [0, 0, 2, 828]
    assert [shard_of("sku-42", n) for n in (2, 7, 1000)] == [1, 6, 961]
    assert shard_of("é", 1000) == 424


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_every_product_lands_in_exactly_one_shard(demo_ids: list[str], count: int) -> None:
    products = [Product(id=i, title=i) for i in demo_ids]
    shards = [select(products, parse_shard(s)) for s in all_shards(count)]
    seen = Counter(p.id for shard in shards for p in shard)
    assert set(seen) == set(demo_ids)
    assert set(seen.values()) == {1}
    for shard in shards:  # catalog order is kept inside a shard
        assert [p.id for p in shard] == [i for i in demo_ids if i in {p.id for p in shard}]


@pytest.mark.parametrize("count", [2, 4, 8])
def test_shards_are_roughly_balanced(demo_ids: list[str], count: int) -> None:
    """Within 4 standard deviations of what a uniform random split gives (binomial counts)."""
    sizes = Counter(shard_of(i, count) for i in demo_ids)
    mean = len(demo_ids) / count
    spread = 4 * math.sqrt(mean * (1 - 1 / count))
    assert len(sizes) == count
    assert all(abs(size - mean) < spread for size in sizes.values()), (sizes, spread)


def test_an_empty_shard_is_an_error() -> None:
    products = [Product(id="DEMO-000001", title="t")]  # in shard 0 of 2
    assert select(products, Shard(0, 2)) == products
    with pytest.raises(ConfigError, match="shard 1/2 holds none of the catalog's 1 products"):
        select(products, Shard(1, 2))


def test_the_manifest_records_the_shard_and_another_shard_is_refused() -> None:
    manifest: dict[str, object] = {"version": "v1"}
    assert built_for(manifest) == "0/1"  # indexes from before sharding hold the whole catalog
    check_manifest(manifest, Shard(0, 1), "idx")
    with pytest.raises(
        ConfigError, match="holds shard 0/1 of the catalog but this retriever serves shard 1/2"
    ):
        check_manifest(manifest, Shard(1, 2), "idx")

    record(manifest, Shard(1, 2))
    assert built_for(manifest) == "1/2"
    check_manifest(manifest, Shard(1, 2), "idx")
    with pytest.raises(ConfigError, match="TAILSYNTH_RETRIEVER_SHARD=0/2 synth index build"):
        check_manifest(manifest, Shard(0, 2), "idx")
    with pytest.raises(ConfigError, match="holds shard 1/2"):
        check_manifest(manifest, Shard(0, 1), "idx")
