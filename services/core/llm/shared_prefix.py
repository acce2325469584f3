"""Attention over a prompt prefix that every row of a batch shares, kept once instead of once per row.

Rows that continue the same prefix (system text, few-shot turns) need its keys and values, but not a copy
of them each: copying them into every row's cache, growing that cache by one token per step and reading
it back cost more time than the attention itself (a third of a 96-row batch's decode on CPU). Here each
row's cache holds only its own tokens (its prompt's tail, then what it generated); the prefix's keys and
values are passed to the model call as `shared_prefix` (one (keys, values) pair per layer, shaped
(kv_heads, prefix_tokens, head_dim)), and the attention scores of both parts share one softmax.

Without `shared_prefix` the model attends exactly as with PyTorch's scaled_dot_product_attention.
"""

from __future__ import annotations

from typing import Any

import torch

SHARED_PREFIX_ATTENTION = "tailsynth_shared_prefix"

SharedPrefix = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: (keys, values), (kv_heads, tokens, dim)


def register() -> str:
    """Make the attention known to transformers (idempotent); the name to load a model with."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface

    AttentionInterface.register(SHARED_PREFIX_ATTENTION, shared_prefix_attention)
    AttentionMaskInterface.register(SHARED_PREFIX_ATTENTION, ALL_MASK_ATTENTION_FUNCTIONS["sdpa"])
    return SHARED_PREFIX_ATTENTION


def own_tokens_mask(valid: torch.Tensor, queries: int) -> torch.Tensor:
    """The 4-D mask of the rows' own tokens: (rows, 1, queries, tokens), True where a query may attend.

    `valid` (rows, tokens) marks real tokens (0 for padding); the last `queries` tokens are the ones being
    run, each attending to itself and the tokens before it.
    """
    tokens = valid.shape[1]
    causal = torch.ones(queries, tokens, dtype=torch.bool, device=valid.device).tril(tokens - queries)
    return valid.bool()[:, None, None, :] & causal


def shared_prefix_attention(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """query (rows, heads, q, dim); key and value (rows, kv_heads, own tokens, dim); attention_mask from
    own_tokens_mask(). Returns (rows, q, heads, dim), as transformers' attention functions do."""
    prefix: SharedPrefix | None = kwargs.pop("shared_prefix", None)
    if prefix is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, scaling=scaling, dropout=dropout, **kwargs
        )
    if attention_mask is None or attention_mask.dtype != torch.bool:
        raise ValueError("shared-prefix attention needs the boolean mask of own_tokens_mask()")
    prefix_keys, prefix_values = prefix[module.layer_idx]
    rows, heads, queries, dim = query.shape
    kv_heads, prefix_tokens = prefix_keys.shape[0], prefix_keys.shape[1]
    groups = heads // kv_heads  # query heads h*groups .. (h+1)*groups-1 read key/value head h
    grouped = query.reshape(rows, kv_heads, groups * queries, dim)
    # The prefix part is one matrix product per key/value head over every row: its keys are read once.
    flat = rows * groups * queries
    by_head = grouped.transpose(0, 1).reshape(kv_heads, flat, dim)
    prefix_scores = (by_head @ prefix_keys.transpose(1, 2)).view(
        kv_heads, rows, groups * queries, prefix_tokens
    )
    own_scores = grouped @ key.transpose(2, 3)
    own_scores = own_scores.masked_fill(~attention_mask.repeat(1, 1, groups, 1), float("-inf"))
    scores = torch.cat([prefix_scores.transpose(0, 1), own_scores], dim=-1) * scaling
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    prefix_probs = probs[..., :prefix_tokens].transpose(0, 1).reshape(kv_heads, flat, prefix_tokens)
    output = probs[..., prefix_tokens:] @ value
    output += (prefix_probs @ prefix_values).view(kv_heads, rows, groups * queries, dim).transpose(0, 1)
    return output.view(rows, heads, queries, dim).transpose(1, 2).contiguous(), None
