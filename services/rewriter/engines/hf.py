"""Hugging Face transformers engine: SmolLM2-135M-Instruct by default, CPU or CUDA."""

from __future__ import annotations

import logging
from typing import Any

from services.core.assets import fingerprint, smollm2_hf_dir
from services.core.encoder import resolve_device
from services.rewriter.engine import Generation, LLMEngine

log = logging.getLogger(__name__)


class HFEngine(LLMEngine):
    name = "hf"
    model: Any = None
    tokenizer: Any = None
    _version = "unloaded"

    def load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = self.settings.model_dir or smollm2_hf_dir(self.settings.models_dir)
        self.device = resolve_device(self.settings.device)
        dtype = torch.float16 if self.device == "cuda" else torch.float32
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype).to(self.device).eval()
        self._version = f"{path.name}:{fingerprint(path)}"
        log.info("rewriter model %s on %s", self._version, self.device)

    @property
    def version(self) -> str:
        return self._version

    async def generate(
        self, messages: list[dict[str, str]], n: int, seed: int | None, max_time_s: float | None
    ) -> Generation:
        # One generate() at a time on the service's worker thread: HF has no cross-request batching.
        result: Generation = await self.run_blocking(self._generate, messages, n, seed, max_time_s)
        return result

    def _generate(
        self, messages: list[dict[str, str]], n: int, seed: int | None, max_time_s: float | None
    ) -> Generation:
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
                temperature=self.settings.temperature,
                top_p=self.settings.top_p,
                max_new_tokens=self.settings.max_new_tokens,
                num_return_sequences=n,
                pad_token_id=self.tokenizer.eos_token_id,
                max_time=max_time_s,
            )
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        generated = int((new_tokens != self.tokenizer.eos_token_id).sum())
        return Generation(texts=list(texts), tokens=generated)
