"""Hugging Face transformers engine: SmolLM2-135M-Instruct by default, CPU or CUDA."""

from __future__ import annotations

from services.core.assets import smollm2_hf_dir
from services.core.llm.hf import HFRuntime, Sampling
from services.rewriter.engine import Generation, LLMEngine


class HFEngine(LLMEngine):
    name = "hf"
    runtime: HFRuntime | None = None

    def load(self) -> None:
        path = self.settings.model_dir or smollm2_hf_dir(self.settings.models_dir)
        self.runtime = HFRuntime(path, self.settings.device)

    @property
    def version(self) -> str:
        return self.runtime.version if self.runtime else "unloaded"

    async def generate(
        self, messages: list[dict[str, str]], n: int, seed: int | None, max_time_s: float | None
    ) -> Generation:
        # One generate() at a time on the service's worker thread: HF has no cross-request batching.
        result: Generation = await self.run_blocking(self._generate, messages, n, seed, max_time_s)
        return result

    def _generate(
        self, messages: list[dict[str, str]], n: int, seed: int | None, max_time_s: float | None
    ) -> Generation:
        assert self.runtime is not None, "load() first"
        s = self.settings
        sampling = Sampling(s.temperature, s.top_p, s.max_new_tokens)
        completions = self.runtime.generate(messages, n, seed, sampling, max_time_s)
        return Generation(texts=completions.texts, tokens=completions.tokens)
