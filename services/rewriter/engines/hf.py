"""Hugging Face transformers engine: SmolLM2-135M-Instruct by default, CPU or CUDA.

Concurrent requests share one running batch (continuous batching): a request joins it at the next
decode step (up to hf_max_batch_rows sample rows in all) and gets its texts as soon as its own rows end,
while the others keep decoding. Each step runs on the service's worker thread.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass, field

from prometheus_client import Histogram

from services.core.assets import smollm2_hf_dir
from services.core.errors import NotReady
from services.core.llm.hf import HFRuntime
from services.core.llm.hf_batch import PromptRequest
from services.core.llm.model_dir import check_causal_lm
from services.core.llm.sampling import Completions, Sampling
from services.rewriter.engine import Generation, LLMEngine

log = logging.getLogger(__name__)

STEP_ROWS = Histogram(
    "tailsynth_rewriter_hf_step_rows",
    "Sample rows in one decode step of the hf engine's running batch (new requests' included).",
    buckets=(1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 256, 512),
)
ADMISSION_WAIT = Histogram(
    "tailsynth_rewriter_hf_admission_wait_seconds",
    "Time an hf request waited before joining the running batch (a full batch, or one of another prompt "
    "template, makes it wait).",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


@dataclass
class _Submitted:
    key: int
    request: PromptRequest
    future: asyncio.Future[Completions]
    template: tuple[tuple[str, str], ...]  # every turn before the last: what the batch's prompts share
    submitted: float = field(default_factory=time.monotonic)


class HFEngine(LLMEngine):
    name = "hf"
    runtime: HFRuntime | None = None
    _task: asyncio.Task[None] | None = None

    def load(self) -> None:
        path = self.settings.model_dir or smollm2_hf_dir(self.settings.models_dir)
        check_causal_lm(path)
        self.runtime = HFRuntime(path, self.settings.device)
        self.model_path = path

    async def start(self) -> None:
        await super().start()
        s = self.settings
        self.sampling = Sampling(s.temperature, s.top_p, s.max_new_tokens)
        self._keys = itertools.count()
        self._waiting: deque[_Submitted] = deque()
        self._running: dict[int, _Submitted] = {}
        self._wakeup = asyncio.Event()
        self._task = asyncio.create_task(self._serve())

    async def close(self) -> None:
        """Refuse new requests; those already submitted finish first."""
        self.closed = True
        task, self._task = self._task, None
        if task is not None:
            self._wakeup.set()
            await task

    @property
    def version(self) -> str:
        return self.runtime.version if self.runtime else "unloaded"

    async def generate(
        self, messages: list[dict[str, str]], n: int, seed: int | None, max_time_s: float | None
    ) -> Generation:
        if self.runtime is None or self._task is None:
            raise self.not_ready()
        deadline = None if max_time_s is None else time.monotonic() + max_time_s
        if n <= 0:
            return Generation(texts=[], tokens=0)
        request = PromptRequest(self.runtime.prompt_ids(messages), n, seed, deadline)
        template = tuple((m["role"], m["content"]) for m in messages[:-1])
        submitted = _Submitted(
            next(self._keys), request, asyncio.get_running_loop().create_future(), template
        )
        self._waiting.append(submitted)
        self._wakeup.set()
        completions = await submitted.future  # cancelled: its rows end at the next step
        return Generation(texts=completions.texts, tokens=completions.tokens)

    async def _serve(self) -> None:
        """Admit waiting requests and run decode steps while there is work; settle requests as they end."""
        try:
            await self._decode_while_open()
        finally:  # normally nothing is left; after a cancelled loop (event loop shutdown) nobody may hang
            for submitted in [*self._waiting, *self._running.values()]:
                if not submitted.future.done():
                    submitted.future.set_exception(NotReady("hf engine stopped"))
            self._waiting.clear()
            self._running.clear()

    async def _decode_while_open(self) -> None:
        assert self.runtime is not None
        while not (self.closed and not self._waiting and not self._running):
            if not self._waiting and not self._running:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            admit = self._admissible()
            now = time.monotonic()
            for submitted in admit:
                ADMISSION_WAIT.observe(now - submitted.submitted)
            STEP_ROWS.observe(self.runtime.sampler.live_rows + sum(s.request.n for s in admit))
            cancel = [key for key, s in self._running.items() if s.future.done()]
            try:
                ended = await self.run_blocking(
                    self.runtime.advance, [(s.key, s.request) for s in admit], cancel, self.sampling
                )
            except Exception as error:  # the whole batch is lost: fail every request in it
                log.exception(
                    "hf decode step failed; failing the %d requests in the batch", len(self._running)
                )
                for submitted in self._running.values():
                    if not submitted.future.done():
                        submitted.future.set_exception(error)
                self._running.clear()
                continue
            for key, completions in ended.items():
                future = self._running.pop(key).future
                if not future.done():
                    future.set_result(completions)

    def _admissible(self) -> list[_Submitted]:
        """Waiting requests, oldest first, that fit the running batch now; they count as running."""
        assert self.runtime is not None
        sampler = self.runtime.sampler
        rows = sampler.live_rows  # no step is running now: the sampler is idle on the worker thread
        admitted: list[_Submitted] = []
        while self._waiting:
            submitted = self._waiting[0]
            if submitted.future.done():  # cancelled while waiting
                self._waiting.popleft()
                continue
            busy = bool(self._running or admitted)
            if busy and rows + submitted.request.n > self.settings.hf_max_batch_rows:
                break
            # A prompt of another template waits until the batch ends: the batch shares one prefix, and
            # prompts of two templates admitted together would share almost none of it for as long as the
            # batch runs. fits() is what keeps a joining prompt's tokens right.
            batch = next(iter(self._running.values()), None)
            if batch is not None and (
                submitted.template != batch.template or not sampler.fits(submitted.request.ids)
            ):
                break
            self._waiting.popleft()
            admitted.append(submitted)
            self._running[submitted.key] = submitted
            rows += submitted.request.n
        return admitted
