"""Hugging Face transformers runtime: one causal LM on CPU (fp32) or CUDA (fp16)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from services.core.assets import fingerprint
from services.core.encoder import resolve_device

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sampling:
    temperature: float
    top_p: float
    max_new_tokens: int


@dataclass(frozen=True)
class Completions:
    texts: list[str]
    tokens: int  # generated tokens, end-of-sequence tokens not counted


class HFRuntime:
    """Loads the model once; generate() and label_logprobs() are blocking (run them on a worker thread)."""

    def __init__(self, path: Path, device: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = resolve_device(device)
        dtype = torch.float16 if self.device == "cuda" else torch.float32
        self.tokenizer: Any = AutoTokenizer.from_pretrained(str(path))
        self.model: Any = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype).to(self.device).eval()
        self.version = f"{path.name}:{fingerprint(path)}"
        log.info("model %s on %s", self.version, self.device)

    def generate(
        self,
        messages: list[dict[str, str]],
        n: int,
        seed: int | None,
        sampling: Sampling,
        max_time_s: float | None,
    ) -> Completions:
        """n sampled completions of one chat conversation."""
        import torch

        inputs = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.device)
        if seed is not None:
            torch.manual_seed(seed)
        with torch.inference_mode():
            output = self.model.generate(
                **inputs,
                do_sample=True,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_new_tokens=sampling.max_new_tokens,
                num_return_sequences=n,
                pad_token_id=self.tokenizer.eos_token_id,
                max_time=max_time_s,
            )
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        generated = int((new_tokens != self.tokenizer.eos_token_id).sum())
        return Completions(texts=list(texts), tokens=generated)

    def label_logprobs(self, prompts: list[str], token_ids: list[int], batch_size: int) -> np.ndarray:
        """log P(next token = each label) for each prompt: shape (len(prompts), len(token_ids)).

        One forward pass per batch over left-padded prompts (the last position is each prompt's own end);
        only that position's logits are computed. Log-probabilities are over the whole vocabulary.
        """
        import torch

        pad = self.tokenizer.pad_token_id
        pad = self.tokenizer.eos_token_id if pad is None else pad
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
