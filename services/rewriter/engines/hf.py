"""Hugging Face transformers engine: SmolLM2-135M-Instruct by default, CPU or CUDA.

Concurrent requests are batched: those that arrive while a batch is decoding form the next one (up to
hf_max_batch_rows sample rows), decoded together over the prompt's cached shared prefix.
"""

from __future__ import annotations

import time

from services.core.assets import smollm2_hf_dir
from services.core.batcher import Batcher
from services.core.llm.hf import Completions, Conversation, HFRuntime, Sampling
from services.rewriter.engine import Generation, LLMEngine


class HFEngine(LLMEngine):
    name = "hf"
    runtime: HFRuntime | None = None
    batcher: Batcher[Conversation, Completions] | None = None

    def load(self) -> None:
        path = self.settings.model_dir or smollm2_hf_dir(self.settings.models_dir)
        self.runtime = HFRuntime(path, self.settings.device)

    async def start(self) -> None:
        await super().start()
        self.batcher = Batcher(
            self._generate_many,
            self.run_blocking,
            max_weight=self.settings.hf_max_batch_rows,
            max_wait_s=0.0,  # no waiting for company: requests queue up while the previous batch decodes
            weight=lambda conversation: conversation.n,
        )

    async def close(self) -> None:
        if self.batcher is not None:
            await self.batcher.close()

    @property
    def version(self) -> str:
        return self.runtime.version if self.runtime else "unloaded"

    async def generate(
        self, messages: list[dict[str, str]], n: int, seed: int | None, max_time_s: float | None
    ) -> Generation:
        if self.batcher is None:
            raise RuntimeError("hf engine is not started")
        deadline = None if max_time_s is None else time.monotonic() + max_time_s
        completions = await self.batcher.submit(Conversation(messages, n, seed, deadline))
        return Generation(texts=completions.texts, tokens=completions.tokens)

    def _generate_many(self, conversations: list[Conversation]) -> list[Completions]:
        assert self.runtime is not None, "load() first"
        s = self.settings
        return self.runtime.generate_many(conversations, Sampling(s.temperature, s.top_p, s.max_new_tokens))
