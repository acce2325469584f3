"""Batched sampling for the transformers runtime: many prompts in one decode loop, over a shared prefix.

Prompts made from one template share a long prefix (system text, few-shot turns). Its keys and values are
computed once and kept, and every row of a batch attends to that one copy (shared_prefix.py), so only each
prompt's own tail is prefilled (once per prompt, left-padded), and each of its n sample rows gets a copy
of that. All rows then decode together, one forward pass per token for the whole batch. Rows leave as they
finish (end of sequence, the token budget, their request's deadline), and new requests join between
steps (continuous batching), so under load the batch stays full instead of running out in waves.

Each request samples from its own seeded generator: its texts do not depend on what else was in the batch.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from services.core.llm.shared_prefix import SHARED_PREFIX_ATTENTION, SharedPrefix, own_tokens_mask

if TYPE_CHECKING:
    from services.core.llm.sampling import Sampling

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
    """Keys and values of the longest token prefix shared by recent prompts (one entry)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.ids: list[int] = []
        self.layers: SharedPrefix = []
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

    def shared(self, length: int) -> SharedPrefix:
        """Each layer's keys and values of the first `length` prefix tokens."""
        if length == 0:
            config = self.model.config
            dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
            empty = torch.empty(
                config.num_key_value_heads, 0, dim, dtype=self.model.dtype, device=self.model.device
            )
            return [(empty, empty)] * config.num_hidden_layers
        return [(k[:, :length].contiguous(), v[:, :length].contiguous()) for k, v in self.layers]

    def _truncate(self, length: int) -> None:
        self.ids = self.ids[:length]
        self.layers = [(k[:, :length], v[:, :length]) for k, v in self.layers]

    def _compute(self, ids: list[int]) -> None:
        cache = _cache(())
        self.model(
            input_ids=torch.tensor([ids], device=self.model.device), past_key_values=cache, use_cache=True
        )
        self.layers = [(keys[0], values[0]) for keys, values in _layers(cache)]
        self.ids = list(ids)


def _common_prefix(sequences: Sequence[Sequence[int]]) -> int:
    first = sequences[0]
    length = min(len(s) for s in sequences)
    for i in range(length):
        token = first[i]
        if any(s[i] != token for s in sequences):
            return i
    return length


@dataclass
class _Active:
    """An admitted request: what its rows have sampled so far."""

    request: PromptRequest
    generator: torch.Generator
    outputs: list[list[int]]  # per sample row
    live: int  # rows still decoding
    steps: int = 0  # tokens sampled by each of its rows
    cancelled: bool = False


class BatchSampler:
    """Samples continuations of many prompts with one model: one forward pass per token for every row.

    Requests join the running batch whenever they are admitted (continuous batching), as long as they
    continue its shared prefix; each step() samples one token for every live row and returns the requests
    whose last row ended. Call from one thread, under inference_mode.
    """

    def __init__(self, model: Any, stop_ids: set[int], pad_id: int) -> None:
        if model.config._attn_implementation != SHARED_PREFIX_ATTENTION:
            raise ValueError(f"load the model with attn_implementation={SHARED_PREFIX_ATTENTION!r}")
        self.model = model
        self.stop_ids = stop_ids
        self.pad_id = pad_id
        self.prefix = PrefixCache(model)
        self.clear()

    def clear(self) -> None:
        """Forget the running batch (after an error, or when its last row ended)."""
        self.active: dict[Hashable, _Active] = {}
        self.sampling: Sampling | None = None
        self.shared: SharedPrefix = []
        self.shared_ids: list[int] = []
        # Per batch position: (request key, sample index), None once that row ended. The rows' own cache
        # (their prompt tails and what they sampled), next-token logits, own-token mask and next position
        # are indexed the same way.
        self.rows: list[tuple[Hashable, int] | None] = []
        self.cache: Any = None
        self.logits = self.mask = self.next_position = torch.empty(0)

    @property
    def live_rows(self) -> int:
        return sum(a.live for a in self.active.values())

    def fits(self, ids: list[int]) -> bool:
        """Whether a prompt can join the running batch: it continues the batch's shared prefix."""
        shared = len(self.shared_ids)
        return not self.active or (len(ids) > shared and ids[:shared] == self.shared_ids)

    def admit(self, requests: Sequence[tuple[Hashable, PromptRequest]], sampling: Sampling) -> None:
        """Add requests (under keys not in use) to the batch: their prompt tails are prefilled now."""
        requests = [(key, r) for key, r in requests if r.n > 0]
        if not requests:
            return
        if self.active and sampling != self.sampling:
            raise ValueError("every request in a running batch samples with the same settings")
        if not all(self.fits(r.ids) for _, r in requests):
            raise ValueError("a prompt that does not continue the running batch's prefix waits for it to end")
        if not self.active:
            length = self.prefix.prepare([r.ids for _, r in requests])
            self.shared, self.shared_ids = self.prefix.shared(length), self.prefix.ids[:length]
            self.sampling = sampling
        for key, request in requests:
            outputs: list[list[int]] = [[] for _ in range(request.n)]
            self.active[key] = _Active(request, _generator(request.seed), outputs, request.n)
        self._join([(key, sample) for key, r in requests for sample in range(r.n)], [r for _, r in requests])

    def cancel(self, key: Hashable) -> None:
        """The request's rows end at the next step (which returns what they sampled)."""
        if key in self.active:
            self.active[key].cancelled = True

    def step(self) -> dict[Hashable, Sampled]:
        """Samples one token for every live row; the requests whose last row ended, by key."""
        if not self.active:
            return {}
        assert self.sampling is not None
        live = [(index, row) for index, row in enumerate(self.rows) if row is not None]
        positions = [index for index, _ in live]
        owners = [key for _, (key, _) in live]
        generators = {key: active.generator for key, active in self.active.items()}
        sampled = _sample(self.logits[positions], owners, generators, self.sampling)
        for active in self.active.values():
            active.steps += 1
        now, finished = time.monotonic(), {}
        for (index, (key, sample)), token in zip(live, sampled.tolist(), strict=True):
            active = self.active[key]
            stopped = token in self.stop_ids
            if not stopped:
                active.outputs[sample].append(token)
            deadline = active.request.deadline
            if (
                stopped
                or active.cancelled
                or active.steps >= self.sampling.max_new_tokens
                or (deadline is not None and now >= deadline)
            ):
                self.rows[index] = None
                active.live -= 1
                if not active.live:
                    finished[key] = Sampled(self.active.pop(key).outputs)
        if not self.active:
            self.clear()
            return finished
        tokens = torch.full((len(self.rows),), self.pad_id, dtype=torch.long, device=self.model.device)
        tokens[positions] = sampled
        live_count = len(self.rows) - self.rows.count(None)
        if live_count * 4 <= len(self.rows) * 3:  # dropping rows copies the whole cache: wait for a quarter
            tokens = tokens[self._drop_ended_rows()]
        self.mask = torch.cat([self.mask, self.mask.new_ones((len(self.rows), 1))], dim=1)
        self.logits = self.model(
            input_ids=tokens[:, None],
            attention_mask=own_tokens_mask(self.mask, 1),
            position_ids=self.next_position,
            past_key_values=self.cache,
            shared_prefix=self.shared,
        ).logits[:, -1]
        self.next_position = self.next_position + 1
        return finished

    def _join(self, new_rows: list[tuple[Hashable, int]], requests: list[PromptRequest]) -> None:
        """Prefill the requests' tails and append their rows to the batch (ended rows leave it now)."""
        rows: list[tuple[Hashable, int] | None] = list(new_rows)
        cache, logits, mask, next_position = self._prefill(requests, [key for key, _ in new_rows])
        if self.rows:
            keep = self._drop_ended_rows()
            width = max(self.mask.shape[1], mask.shape[1])
            self.cache = _cache(
                (
                    torch.cat([_pad_left(old_keys, width, 2), _pad_left(keys, width, 2)]),
                    torch.cat([_pad_left(old_values, width, 2), _pad_left(values, width, 2)]),
                )
                for (old_keys, old_values), (keys, values) in zip(
                    _layers(self.cache), _layers(cache), strict=True
                )
            )
            self.logits = torch.cat([self.logits[keep], logits])
            mask = torch.cat([_pad_left(self.mask, width, 1), _pad_left(mask, width, 1)])
            next_position = torch.cat([self.next_position, next_position])
            rows = [*self.rows, *rows]
        else:
            self.cache, self.logits = cache, logits
        self.rows, self.mask, self.next_position = rows, mask, next_position

    def _drop_ended_rows(self) -> torch.Tensor:
        """Remove ended rows from the batch, then the leading own-token columns no row uses any more;
        the kept rows' old positions."""
        keep = [index for index, row in enumerate(self.rows) if row is not None]
        selected = torch.tensor(keep, dtype=torch.long, device=self.model.device)
        if len(keep) < len(self.rows):
            self.rows = [self.rows[index] for index in keep]
            self.cache.batch_select_indices(selected)
            self.mask, self.next_position = self.mask[selected], self.next_position[selected]
        unused = int(self.mask.any(dim=0).int().argmax())  # the first column a row still uses
        if unused:
            self.mask = self.mask[:, unused:]
            self.cache = _cache((k[:, :, unused:], v[:, :, unused:]) for k, v in _layers(self.cache))
        return selected

    def _prefill(
        self, requests: Sequence[PromptRequest], owners: list[Hashable]
    ) -> tuple[Any, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each prompt's tail runs once after the shared prefix; each of its sample rows then gets its own
        copy of that cache. Returns the rows' cache, next-token logits, own-token mask (0 for padding) and
        next position."""
        device, pad, shared = self.model.device, self.pad_id, len(self.shared_ids)
        tails = [r.ids[shared:] for r in requests]
        width = max(len(t) for t in tails)
        input_ids = torch.tensor([[pad] * (width - len(t)) + t for t in tails], device=device)
        mask = torch.tensor([[0] * (width - len(t)) + [1] * len(t) for t in tails], device=device)
        # Each row's positions continue from the prefix as if it ran alone (pads get position 0, masked out).
        positions = torch.tensor(
            [[0] * (width - len(t)) + list(range(shared, shared + len(t))) for t in tails], device=device
        )
        cache = _cache(())
        logits = self.model(
            input_ids=input_ids,
            attention_mask=own_tokens_mask(mask, width),
            position_ids=positions,
            past_key_values=cache,
            shared_prefix=self.shared,
            logits_to_keep=1,
        ).logits[:, -1]
        prompt_of = {key: index for index, key in enumerate(dict.fromkeys(owners))}
        rows = torch.tensor([prompt_of[key] for key in owners], device=device)
        cache.batch_select_indices(rows)
        return cache, logits[rows], mask[rows], positions[rows, -1:] + 1


def _cache(layers: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> Any:
    from transformers import DynamicCache

    cache = DynamicCache()
    for index, (keys, values) in enumerate(layers):
        cache.update(keys, values, index)
    return cache


def _layers(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(layer.keys, layer.values) for layer in cache.layers]


def _pad_left(tensor: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    """Zeros before the tensor's entries along dim, up to `width` (masked-out keys and values, or mask)."""
    missing = width - tensor.shape[dim]
    if not missing:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


def _generator(seed: int | None) -> torch.Generator:
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def _sample(
    logits: torch.Tensor,
    owners: list[Hashable],
    generators: Mapping[Hashable, torch.Generator],
    sampling: Sampling,
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
