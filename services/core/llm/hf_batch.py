"""Batched sampling for the transformers runtime: many prompts in one decode loop, over a shared prefix.

Prompts made from one template share a long prefix (system text, few-shot turns). Its keys and values are
computed once and kept; each batch starts from a copy of them, so only each prompt's own tail is prefilled
(once per prompt, left-padded after the prefix), and each of its n sample rows gets a copy of that. All
rows then decode together, one forward pass per token for the whole batch, and leave it as they finish
(end of sequence, the token budget, or their request's deadline), so the batch shrinks instead of
computing padding.

Each request samples from its own seeded generator: its texts do not depend on what else was in the batch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from services.core.llm.hf import Sampling

MIN_PREFIX_TOKENS = 8  # a shorter shared prefix is not worth keeping
# Top-p is computed among the most likely tokens, exactly: rows whose nucleus reaches past 256 candidates
# try 4096, then the whole vocabulary (sorting it for every row costs more than the forward pass).
NUCLEUS_CANDIDATES = (256, 4096)


@dataclass(frozen=True)
class PromptRequest:
    ids: list[int]  # the whole prompt, tokenized
    n: int  # samples wanted
    seed: int | None
    deadline: float | None  # time.monotonic() after which its rows stop; None = no limit


@dataclass(frozen=True)
class Sampled:
    tokens: list[list[int]]  # one list per sample, end-of-sequence tokens excluded


class PrefixCache:
    """Keys and values of the longest token prefix shared by recent prompts (one entry, batch size 1)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.ids: list[int] = []
        self.layers: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.last_prompt: list[int] = []

    def prepare(self, prompts: Sequence[list[int]]) -> int:
        """Make the cache hold a prefix of every prompt (each keeps at least one own token); its length."""
        limit = min(len(p) for p in prompts) - 1
        shared = _common_prefix([*prompts, self.ids]) if self.ids else 0
        if shared < MIN_PREFIX_TOKENS:
            # A new template: learn its prefix from this batch, or from the last prompt and this one.
            alone = len(prompts) == 1 and self.last_prompt
            shared = _common_prefix([*prompts, self.last_prompt] if alone else list(prompts))
        self.last_prompt = list(prompts[0])
        length = min(shared, limit)
        if length < MIN_PREFIX_TOKENS:
            return 0
        if length <= _common_prefix([prompts[0], self.ids]):
            self._truncate(length)
        else:
            self._compute(prompts[0][:length])
        return length

    def expanded(self, rows: int, length: int) -> Any:
        """A fresh cache for `rows` rows starting from the first `length` prefix tokens."""
        from transformers import DynamicCache

        cache = DynamicCache()
        for layer, (keys, values) in enumerate(self.layers if length else []):
            cache.update(
                keys[:, :, :length].expand(rows, -1, -1, -1).contiguous(),
                values[:, :, :length].expand(rows, -1, -1, -1).contiguous(),
                layer,
            )
        return cache

    def _truncate(self, length: int) -> None:
        self.ids = self.ids[:length]
        self.layers = [(k[:, :, :length], v[:, :, :length]) for k, v in self.layers]

    def _compute(self, ids: list[int]) -> None:
        from transformers import DynamicCache

        cache = DynamicCache()
        device = self.model.device
        self.model(input_ids=torch.tensor([ids], device=device), past_key_values=cache, use_cache=True)
        self.layers = [(layer.keys, layer.values) for layer in cache.layers]
        self.ids = list(ids)


def _common_prefix(sequences: Sequence[Sequence[int]]) -> int:
    first = sequences[0]
    length = min(len(s) for s in sequences)
    for i in range(length):
        token = first[i]
        if any(s[i] != token for s in sequences):
            return i
    return length


class BatchSampler:
    """Samples continuations of many prompts in one batch with one model (call under inference_mode)."""

    def __init__(self, model: Any, stop_ids: set[int], pad_id: int) -> None:
        self.model = model
        self.stop_ids = stop_ids
        self.pad_id = pad_id
        self.prefix = PrefixCache(model)

    def sample(self, requests: Sequence[PromptRequest], sampling: Sampling) -> list[Sampled]:
        """n sampled continuations of every request's prompt."""
        owner = [i for i, r in enumerate(requests) for _ in range(r.n)]  # the request of each row
        outputs = self._decode(requests, owner, sampling) if owner else []
        per_request: list[list[list[int]]] = [[] for _ in requests]
        for request, tokens in zip(owner, outputs, strict=True):
            per_request[request].append(tokens)
        return [Sampled(samples) for samples in per_request]

    def _decode(
        self, requests: Sequence[PromptRequest], owner: list[int], sampling: Sampling
    ) -> list[list[int]]:
        device = self.model.device
        generators = [_generator(r.seed) for r in requests]
        outputs: list[list[int]] = [[] for _ in owner]
        cache, logits, mask, next_position = self._prefill(requests, owner)
        present: list[int | None] = list(range(len(owner)))  # the row at each batch position; None: finished
        for step in range(sampling.max_new_tokens):
            live = [(index, row) for index, row in enumerate(present) if row is not None]
            positions = [index for index, _ in live]
            sampled = _sample(logits[positions], [owner[row] for _, row in live], generators, sampling)
            now = time.monotonic()
            for (index, row), token in zip(live, sampled.tolist(), strict=True):
                deadline = requests[owner[row]].deadline
                stopped = token in self.stop_ids
                if not stopped:
                    outputs[row].append(token)
                if (
                    stopped
                    or step + 1 == sampling.max_new_tokens
                    or (deadline is not None and now >= deadline)
                ):
                    present[index] = None
            keep = [index for index, row in enumerate(present) if row is not None]
            if not keep:
                break
            tokens = torch.full((len(present),), self.pad_id, dtype=torch.long, device=device)
            tokens[positions] = sampled
            if len(keep) * 4 <= len(present) * 3:  # dropping rows copies the whole cache: wait for a quarter
                selected = torch.tensor(keep, device=device)
                cache.batch_select_indices(selected)
                mask, next_position, tokens = mask[selected], next_position[selected], tokens[selected]
                present = [present[i] for i in keep]
            mask = torch.cat([mask, mask.new_ones((len(present), 1))], dim=1)
            logits = self.model(
                input_ids=tokens[:, None],
                attention_mask=mask,
                position_ids=next_position,
                past_key_values=cache,
            ).logits[:, -1]
            next_position = next_position + 1
        return outputs

    def _prefill(
        self, requests: Sequence[PromptRequest], owner: list[int]
    ) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each prompt's tail runs once after the shared prefix; every sample row then gets its own copy of
        its prompt's cache. Returns the cache, each row's next-token logits, attention mask, next position."""
        device, pad = self.model.device, self.pad_id
        prompted = sorted(set(owner))
        shared = self.prefix.prepare([requests[i].ids for i in prompted])
        tails = [requests[i].ids[shared:] for i in prompted]
        width = max(len(t) for t in tails)
        input_ids = torch.tensor([[pad] * (width - len(t)) + t for t in tails], device=device)
        mask = torch.tensor(
            [[1] * shared + [0] * (width - len(t)) + [1] * len(t) for t in tails], device=device
        )
        # Each row's positions continue from the prefix as if it ran alone (pads get position 0, masked out).
        positions = torch.tensor(
            [[0] * (width - len(t)) + list(range(shared, shared + len(t))) for t in tails], device=device
        )
        cache = self.prefix.expanded(len(prompted), shared)
        logits = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            logits_to_keep=1,
        ).logits[:, -1]
        rows = torch.tensor([prompted.index(i) for i in owner], device=device)
        cache.batch_select_indices(rows)
        return cache, logits[rows], mask[rows], positions[rows, -1:] + 1


def _generator(seed: int | None) -> torch.Generator:
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def _sample(
    logits: torch.Tensor, owners: list[int], generators: list[torch.Generator], sampling: Sampling
) -> torch.Tensor:
    """One token per row: temperature, then nucleus (top-p) sampling with the row's request's generator."""
    probs = torch.softmax(logits.float().cpu() / sampling.temperature, dim=-1)
    uniforms = torch.empty(len(owners))
    start = 0
    while start < len(owners):  # rows of one request are contiguous
        end = start
        while end < len(owners) and owners[end] == owners[start]:
            end += 1
        uniforms[start:end] = torch.rand(end - start, generator=generators[owners[start]])
        start = end
    tokens = torch.empty(len(owners), dtype=torch.long)
    rows = torch.arange(len(owners))
    for candidates in (*NUCLEUS_CANDIDATES, probs.shape[-1]):
        values, indices = probs[rows].topk(min(candidates, probs.shape[-1]), dim=-1)
        tokens[rows] = _pick(values, indices, uniforms[rows], sampling.top_p)
        rows = rows[values.sum(-1) < sampling.top_p]  # the nucleus reaches past these candidates
        if not len(rows):
            break
    return tokens.to(logits.device)


def _pick(values: torch.Tensor, indices: torch.Tensor, uniforms: torch.Tensor, top_p: float) -> torch.Tensor:
    """Inverse-CDF draw from the nucleus of probabilities sorted in descending order."""
    # A token is in the nucleus when the mass before it is below top_p (the most likely always is).
    kept = values.masked_fill(values.cumsum(-1) - values >= top_p, 0.0)
    cdf = kept.cumsum(-1)
    position = torch.searchsorted(cdf, (uniforms * cdf[:, -1])[:, None], right=True)
    return indices.gather(1, position.clamp(max=values.shape[-1] - 1))[:, 0]
