"""Hugging Face transformers runtime: one causal LM on CPU (fp32) or CUDA (fp16)."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from services.core.assets import fingerprint
from services.core.encoder import resolve_device
from services.core.llm.sampling import Completions, Sampling

if TYPE_CHECKING:
    from services.core.llm.hf_batch import PromptRequest, Sampled

log = logging.getLogger(__name__)

SMALL_BATCH_ROWS = 12  # sample rows decoded on one CPU thread (measured: as fast as two, 6 rows)


class HFRuntime:
    """Loads the model once; advance() and label_logprobs() are blocking (run them on a worker thread)."""

    def __init__(self, path: Path, device: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from services.core.llm import shared_prefix
        from services.core.llm.hf_batch import BatchSampler

        self.device = resolve_device(device)
        dtype = torch.float16 if self.device == "cuda" else torch.float32
        self.tokenizer: Any = AutoTokenizer.from_pretrained(str(path))
        self.model: Any = (
            AutoModelForCausalLM.from_pretrained(
                str(path), dtype=dtype, attn_implementation=shared_prefix.register()
            )
            .to(self.device)
            .eval()
        )
        self.version = f"{path.name}:{fingerprint(path)}"
        eos = self.model.generation_config.eos_token_id
        stop_ids = {self.tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None}
        pad = self.tokenizer.pad_token_id
        self.pad_id: int = self.tokenizer.eos_token_id if pad is None else pad
        self.sampler = BatchSampler(self.model, stop_ids, self.pad_id)
        log.info("model %s on %s", self.version, self.device)

    def advance(
        self,
        admit: Sequence[tuple[Hashable, PromptRequest]],
        cancel: Iterable[Hashable],
        sampling: Sampling,
    ) -> dict[Hashable, Completions]:
        """One step of the running batch: admit new requests (their prompts must fit(), see BatchSampler),
        end cancelled ones, sample one token for every row. The completions of requests that ended, by key.
        On an error the batch is dropped: its requests are lost and the caller must fail them."""
        try:
            for key in cancel:
                self.sampler.cancel(key)
            with self._decoding(self.sampler.live_rows + sum(r.n for _, r in admit)):
                self.sampler.admit(admit, sampling)
                sampled = self.sampler.step()
        except BaseException:
            self.sampler.clear()
            raise
        return {key: self._completions(s) for key, s in sampled.items()}

    @contextmanager
    def _decoding(self, rows: int) -> Iterator[None]:
        import torch

        # A few rows are too little work to split: a second thread adds nothing and takes the core from the
        # other services. Many rows do use every core. The count is process-wide: put it back afterwards.
        threads = torch.get_num_threads()
        if self.device == "cpu" and rows <= SMALL_BATCH_ROWS:
            torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                yield
        finally:
            torch.set_num_threads(threads)

    def _completions(self, sampled: Sampled) -> Completions:
        return Completions(
            texts=self.tokenizer.batch_decode(sampled.tokens, skip_special_tokens=True),
            tokens=sum(len(t) for t in sampled.tokens),
        )

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        encoded = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)
        return list(encoded["input_ids"])

    def label_logprobs(self, prompts: list[str], token_ids: list[int], batch_size: int) -> np.ndarray:
        """log P(next token = each label) for each prompt: shape (len(prompts), len(token_ids)).

        One forward pass per batch over left-padded prompts (the last position is each prompt's own end);
        only that position's logits are computed. Log-probabilities are over the whole vocabulary.
        """
        import torch

        pad = self.pad_id
        rows = []
        for start in range(0, len(prompts), batch_size):
            batch = [
                self.tokenizer.encode(p, add_special_tokens=False)
                for p in prompts[start : start + batch_size]
            ]
            width = max(len(ids) for ids in batch)
            input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch])
            mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch])
            # Positions count from each prompt's first real token, as if it ran alone.
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                logits = self.model(
                    input_ids=input_ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    position_ids=positions.to(self.device),
                    logits_to_keep=1,
                ).logits[:, -1, :]
                logprobs = torch.log_softmax(logits.float(), dim=-1)[:, token_ids]
            rows.append(logprobs.cpu().numpy())
        return np.concatenate(rows).astype(np.float64)
