"""Fan-out over retriever shards: the targets setting and the merge of the shards' hit lists (no services)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.pipeline.clients import RetrieverClient, ShardedRetriever, merge_hits, retriever_client
from services.pipeline.config import PipelineSettings
from services.pipeline.domain import Hit


def hit(pid: str, score: float) -> Hit:
    return Hit(product_id=pid, title=f"title {pid}", text=pid, score=score)


def ids(hits: list[Hit]) -> list[str]:
    return [h.product_id for h in hits]


def test_merge_orders_by_score_across_shards() -> None:
    shard0 = [hit("a", 0.9), hit("c", 0.5), hit("e", 0.1)]
    shard1 = [hit("b", 0.7), hit("d", 0.3)]
    assert ids(merge_hits([shard0, shard1], 10)) == ["a", "b", "c", "d", "e"]
    assert ids(merge_hits([shard1, shard0], 10)) == ["a", "b", "c", "d", "e"]


def test_merge_breaks_ties_by_product_id_whatever_the_shard_order() -> None:
    shard0 = [hit("z", 0.5), hit("m", 0.5)]
    shard1 = [hit("b", 0.5), hit("x", 0.8)]
    expected = ["x", "b", "m", "z"]
    assert ids(merge_hits([shard0, shard1], 4)) == expected
    assert ids(merge_hits([shard1, shard0], 4)) == expected


def test_merge_keeps_one_hit_per_product_with_its_best_score() -> None:
    # A product in two shards (e.g. while a catalog is being re-sharded) counts once.
    merged = merge_hits([[hit("a", 0.4), hit("b", 0.6)], [hit("a", 0.8)]], 10)
    assert ids(merged) == ["a", "b"]
    assert merged[0].score == 0.8


def test_merge_truncates_to_top_k_after_ordering() -> None:
    shard0 = [hit(f"s0-{i}", 1 - i / 10) for i in range(5)]
    shard1 = [hit(f"s1-{i}", 0.95 - i / 10) for i in range(5)]
    merged = merge_hits([shard0, shard1], 3)
    assert ids(merged) == ["s0-0", "s1-0", "s0-1"]
    assert merge_hits([[], []], 3) == []


async def test_one_target_is_a_plain_client_and_the_default_is_unchanged() -> None:
    settings = PipelineSettings()
    assert settings.retriever_target == "127.0.0.1:50052"
    assert settings.retriever_targets == ["127.0.0.1:50052"]
    assert type(retriever_client(settings.retriever_targets, 1.0)) is RetrieverClient


async def test_several_targets_fan_out_in_order() -> None:
    settings = PipelineSettings(retriever_target=" shard-0:50052, shard-1:50052 ,shard-2:6000")
    assert settings.retriever_targets == ["shard-0:50052", "shard-1:50052", "shard-2:6000"]
    client = retriever_client(settings.retriever_targets, 1.0)
    assert isinstance(client, ShardedRetriever)
    assert [shard.target for shard in client.shards] == settings.retriever_targets
    await client.close()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a:1,,b:2", "expected host:port"),
        ("a:1,", "expected host:port"),
        ("retriever", "expected host:port"),
        ("a:1,a:1", "listed twice"),
    ],
)
def test_bad_target_lists_are_refused(value: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PipelineSettings(retriever_target=value)
