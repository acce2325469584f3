"""Shared-prefix attention gives what PyTorch's own attention gives over each row's full keys and values."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from services.core.llm.shared_prefix import own_tokens_mask, shared_prefix_attention

ROWS, HEADS, KV_HEADS, DIM, LAYER = 3, 6, 2, 8, 1
SCALE = DIM**-0.5


def module() -> SimpleNamespace:
    return SimpleNamespace(layer_idx=LAYER, num_key_value_groups=HEADS // KV_HEADS, is_causal=True)


def reference(
    query: torch.Tensor,
    prefix: tuple[torch.Tensor, torch.Tensor],
    own: tuple[torch.Tensor, torch.Tensor],
    valid: torch.Tensor,
) -> torch.Tensor:
    """Every row's own copy of the prefix, then PyTorch's scaled_dot_product_attention."""
    queries, prefix_tokens = query.shape[2], prefix[0].shape[1]
    keys, values = (
        torch.cat([p.expand(ROWS, -1, -1, -1), o], dim=2).repeat_interleave(HEADS // KV_HEADS, dim=1)
        for p, o in zip(prefix, own, strict=True)
    )
    full_valid = torch.cat([torch.ones(ROWS, prefix_tokens, dtype=torch.long), valid], dim=1)
    mask = own_tokens_mask(full_valid, queries)
    output = torch.nn.functional.scaled_dot_product_attention(query, keys, values, mask, scale=SCALE)
    return output.transpose(1, 2)


@pytest.mark.parametrize("prefix_tokens", [0, 5])
@pytest.mark.parametrize("queries", [1, 4])
def test_matches_attention_over_each_rows_own_copy_of_the_prefix(prefix_tokens: int, queries: int) -> None:
    generator = torch.Generator().manual_seed(prefix_tokens * 10 + queries)
    own_tokens = 6

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator)

    query = randn(ROWS, HEADS, queries, DIM)
    prefix = randn(KV_HEADS, prefix_tokens, DIM), randn(KV_HEADS, prefix_tokens, DIM)
    own = randn(ROWS, KV_HEADS, own_tokens, DIM), randn(ROWS, KV_HEADS, own_tokens, DIM)
    valid = torch.ones(ROWS, own_tokens, dtype=torch.long)
    valid[1, :2] = 0  # left padding
    shared = [(torch.empty(0), torch.empty(0))] * LAYER + [prefix]  # the module's layer is read

    output, weights = shared_prefix_attention(
        module(), query, *own, own_tokens_mask(valid, queries), SCALE, shared_prefix=shared
    )

    assert weights is None
    assert output.shape == (ROWS, queries, HEADS, DIM)
    torch.testing.assert_close(output, reference(query, prefix, own, valid))


def test_the_prefix_changes_the_output() -> None:
    query, keys, values = torch.randn(ROWS, HEADS, 1, DIM), *torch.randn(2, ROWS, KV_HEADS, 3, DIM)
    mask = own_tokens_mask(torch.ones(ROWS, 3), 1)
    outputs = [
        shared_prefix_attention(module(), query, keys, values, mask, SCALE, shared_prefix=[p] * 2)[0]
        for p in [(torch.empty(KV_HEADS, 0, DIM),) * 2, tuple(torch.randn(2, KV_HEADS, 4, DIM))]
    ]
    assert not torch.allclose(*outputs)


def test_without_a_shared_prefix_it_is_pytorchs_attention() -> None:
    query, keys, values = torch.randn(ROWS, HEADS, 4, DIM), *torch.randn(2, ROWS, KV_HEADS, 4, DIM)
    output, _ = shared_prefix_attention(module(), query, keys, values, None, SCALE)
    expected = torch.nn.functional.scaled_dot_product_attention(
        query,
        keys.repeat_interleave(3, dim=1),
        values.repeat_interleave(3, dim=1),
        is_causal=True,
        scale=SCALE,
    )
    torch.testing.assert_close(output, expected.transpose(1, 2))


def test_a_float_mask_is_refused() -> None:
    query, keys, values = torch.randn(ROWS, HEADS, 1, DIM), *torch.randn(2, ROWS, KV_HEADS, 2, DIM)
    prefix = [(torch.randn(KV_HEADS, 2, DIM), torch.randn(KV_HEADS, 2, DIM))] * 2
    with pytest.raises(ValueError, match="boolean mask"):
        shared_prefix_attention(
            module(), query, keys, values, torch.zeros(ROWS, 1, 1, 2), SCALE, shared_prefix=prefix
        )


def test_the_own_tokens_mask_is_causal_over_the_last_queries_and_skips_padding() -> None:
    mask = own_tokens_mask(torch.tensor([[0, 1, 1, 1]]), 2)
    assert mask.tolist() == [[[[False, True, True, False], [False, True, True, True]]]]
