"""Batched sampling on the real SmolLM2 model: same tokens as transformers' own generate(), seeds that do
not depend on the batch, the shared prompt prefix, deadlines, and continuous batching in the engine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from services.core.errors import NotReady
from services.core.llm.hf import HFRuntime
from services.core.llm.hf_batch import PromptRequest
from services.core.llm.sampling import Completions, Sampling
from services.rewriter.config import RewriterSettings
from services.rewriter.engines.hf import ADMISSION_WAIT, STEP_ROWS, HFEngine
from services.rewriter.prompts import load_prompt

GREEDY = Sampling(temperature=1e-4, top_p=1.0, max_new_tokens=10)  # softmax at 1e-4 is the argmax
SAMPLED = Sampling(temperature=0.9, top_p=0.95, max_new_tokens=16)
QUERIES = ["salon chair", "something to keep a toddler's bath water warm", "deck over"]


@pytest.fixture(scope="module")
def runtime(rewriter_model_dir: Path) -> HFRuntime:
    return HFRuntime(rewriter_model_dir, "cpu")


@dataclass(frozen=True)
class Conversation:
    messages: list[dict[str, str]]
    n: int
    seed: int | None
    deadline: float | None


def generate(runtime: HFRuntime, conversations: list[Conversation], sampling: Sampling) -> list[Completions]:
    """The conversations admitted together into an idle batch, stepped until every one has ended."""
    assert not runtime.sampler.active
    admit = [
        (i, PromptRequest(runtime.prompt_ids(c.messages), c.n, c.seed, c.deadline))
        for i, c in enumerate(conversations)
    ]
    ended = runtime.advance(admit, [], sampling)
    while runtime.sampler.active:
        ended |= runtime.advance([], [], sampling)
    return [ended.get(i, Completions([], 0)) for i in range(len(conversations))]


def messages(query: str, system: str | None = None) -> list[dict[str, str]]:
    turns = load_prompt("rewrite_v1").messages(query)
    if system is not None:
        turns[0] = {"role": "system", "content": system}
    return turns


def reference(runtime: HFRuntime, turns: list[dict[str, str]], max_new_tokens: int) -> str:
    """transformers' own greedy generate() on the prompt alone."""
    ids = torch.tensor([runtime.prompt_ids(turns)])
    with torch.inference_mode():
        out = runtime.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            pad_token_id=runtime.pad_id,
        )
    text: str = runtime.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
    return text


def test_a_batch_of_prompts_of_different_lengths_decodes_like_each_prompt_alone(runtime: HFRuntime) -> None:
    expected = [reference(runtime, messages(q), GREEDY.max_new_tokens) for q in QUERIES]
    for _ in range(2):  # the first call learns the shared prefix, the second reuses it
        batch = generate(runtime, [Conversation(messages(q), 2, None, None) for q in QUERIES], GREEDY)
        assert [c.texts for c in batch] == [[text, text] for text in expected]
    assert len(runtime.sampler.prefix.ids) >= 60  # the system text and the few-shot turns
    assert all(
        runtime.prompt_ids(messages(q))[: len(runtime.sampler.prefix.ids)] == runtime.sampler.prefix.ids
        for q in QUERIES
    )


def test_a_new_template_gets_its_own_prefix_and_the_same_tokens(runtime: HFRuntime) -> None:
    generate(runtime, [Conversation(messages(q), 1, None, None) for q in QUERIES], GREEDY)
    system = "You rewrite shop search queries into short product names. Reply with the query only."
    other = [messages(q, system) for q in QUERIES[:2]]
    batch = generate(runtime, [Conversation(m, 1, None, None) for m in other], GREEDY)
    assert [c.texts[0] for c in batch] == [reference(runtime, m, GREEDY.max_new_tokens) for m in other]
    assert runtime.prompt_ids(other[0])[: len(runtime.sampler.prefix.ids)] == runtime.sampler.prefix.ids


def test_a_seeded_request_samples_the_same_texts_alone_or_in_a_batch(runtime: HFRuntime) -> None:
    target = Conversation(messages("cordless drill"), 4, 7, None)
    alone = generate(runtime, [target], SAMPLED)[0]
    others = [Conversation(messages(q), 3, 100 + i, None) for i, q in enumerate(QUERIES)]
    batched = generate(runtime, [others[0], target, *others[1:]], SAMPLED)
    assert batched[1] == alone
    assert len(alone.texts) == 4 and alone.tokens > 0
    assert [len(c.texts) for c in batched] == [3, 4, 3, 3]


def test_a_passed_deadline_stops_its_own_rows_only(runtime: HFRuntime) -> None:
    late = Conversation(messages("salon chair"), 3, 1, time.monotonic() - 1)
    on_time = Conversation(messages("salon chair"), 3, 1, None)
    late_result, on_time_result = generate(runtime, [late, on_time], GREEDY)
    assert late_result.tokens <= 3  # one token a row at most: what was sampled before the check
    assert on_time_result.tokens > 3
    assert on_time_result.texts == [reference(runtime, messages("salon chair"), GREEDY.max_new_tokens)] * 3


def test_a_request_for_no_samples_gets_none(runtime: HFRuntime) -> None:
    nothing, some = generate(
        runtime,
        [Conversation(messages("rug"), 0, None, None), Conversation(messages("lamp"), 2, 3, None)],
        SAMPLED,
    )
    assert nothing.texts == [] and nothing.tokens == 0
    assert len(some.texts) == 2


def count_of(family: Any) -> float:
    return float(next(s.value for s in family.samples if s.name.endswith("_count")))


def count(histogram: Any) -> float:
    return count_of(histogram.collect()[0])


async def run_on_a_thread(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


@pytest.fixture
async def engine(
    runtime: HFRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[HFEngine, list[tuple[int, int]]]]:
    """A started engine on the shared runtime (16 rows at most), and a record of its steps: (requests
    admitted, rows already decoding) for each."""
    steps: list[tuple[int, int]] = []
    advance = runtime.advance

    def recording(admit: Any, cancel: Any, sampling: Sampling) -> Any:
        steps.append((len(admit), runtime.sampler.live_rows))
        return advance(admit, cancel, sampling)

    monkeypatch.setattr(runtime, "advance", recording)
    settings = RewriterSettings(
        state_dir=tmp_path, hf_max_batch_rows=16, max_new_tokens=SAMPLED.max_new_tokens
    )
    hf = HFEngine(settings, run_on_a_thread)
    monkeypatch.setattr(hf, "load", lambda: None)
    hf.runtime = runtime
    await hf.start()
    yield hf, steps
    await hf.close()


async def test_requests_join_the_running_batch_and_sample_as_they_would_alone(
    runtime: HFRuntime, engine: tuple[HFEngine, list[tuple[int, int]]]
) -> None:
    hf, steps = engine
    queries = QUERIES * 2
    waits, rows = ADMISSION_WAIT.collect()[0], STEP_ROWS.collect()[0]
    results = await asyncio.gather(*(hf.generate(messages(q), 4, i, None) for i, q in enumerate(queries)))

    assert count(ADMISSION_WAIT) - count_of(waits) == 6
    assert count(STEP_ROWS) - count_of(rows) == len(steps)

    assert steps[0] == (4, 0)  # 16 rows hold four requests of 4 samples
    assert sum(admitted for admitted, _ in steps) == 6
    assert any(admitted and running for admitted, running in steps)  # joined rows still decoding
    assert max(admitted * 4 + running for admitted, running in steps) <= 16
    sampling = Sampling(hf.settings.temperature, hf.settings.top_p, hf.settings.max_new_tokens)
    for i, (query, result) in enumerate(zip(queries, results, strict=True)):
        alone = generate(runtime, [Conversation(messages(query), 4, i, None)], sampling)[0]
        assert (result.texts, result.tokens) == (alone.texts, alone.tokens)


async def test_a_prompt_of_another_template_waits_for_the_batch_and_decodes_right(
    runtime: HFRuntime, engine: tuple[HFEngine, list[tuple[int, int]]]
) -> None:
    hf, steps = engine
    system = "You rewrite shop search queries into short product names. Reply with the query only."
    generate(runtime, [Conversation(messages("lamp"), 1, None, None)] * 2, GREEDY)  # learn rewrite_v1
    steps.clear()  # those steps went around the engine
    first = asyncio.create_task(hf.generate(messages("salon chair"), 2, 1, None))
    while not steps:
        await asyncio.sleep(0.01)
    other = await hf.generate(messages("deck over", system), 1, 2, None)
    await first
    assert steps[0] == (1, 0)
    assert (1, 0) in steps[1:]  # the other template started a batch of its own, after the first ended
    sampling = Sampling(hf.settings.temperature, hf.settings.top_p, hf.settings.max_new_tokens)
    alone = generate(runtime, [Conversation(messages("deck over", system), 1, 2, None)], sampling)[0]
    assert other.texts == alone.texts and other.tokens == alone.tokens > 0


async def test_prompts_of_two_templates_arriving_together_get_a_batch_each(
    runtime: HFRuntime, engine: tuple[HFEngine, list[tuple[int, int]]]
) -> None:
    """A rewrite and a product prompt at an idle engine: the first starts the batch alone (sharing its
    template's prefix), the other waits for it; each samples what it would alone."""
    hf, steps = engine
    product = load_prompt("product_keywords_v1").messages("Product: Aquaflo 50 ft. Garden Hose")
    rewrite = messages("garden hose")
    results = await asyncio.gather(hf.generate(rewrite, 2, 3, None), hf.generate(product, 2, 4, None))
    assert steps[0] == (1, 0)  # the product prompt did not join the rewrite's batch
    assert steps.count((1, 0)) == 2 and sum(admitted for admitted, _ in steps) == 2
    sampling = Sampling(hf.settings.temperature, hf.settings.top_p, hf.settings.max_new_tokens)
    for turns, seed, result in ((rewrite, 3, results[0]), (product, 4, results[1])):
        alone = generate(runtime, [Conversation(turns, 2, seed, None)], sampling)[0]
        assert (result.texts, result.tokens) == (alone.texts, alone.tokens)
    # The same template still joins a running batch.
    steps.clear()
    more = [messages(q) for q in QUERIES[:2]]
    await asyncio.gather(*(hf.generate(m, 2, i, None) for i, m in enumerate(more)))
    assert steps[0] == (2, 0)


async def test_a_cancelled_request_leaves_the_batch_and_the_others_finish(
    engine: tuple[HFEngine, list[tuple[int, int]]],
) -> None:
    hf, steps = engine
    cancelled = asyncio.create_task(hf.generate(messages("salon chair"), 4, 1, None))
    kept = asyncio.create_task(hf.generate(messages("deck over"), 4, 2, None))
    while not steps:
        await asyncio.sleep(0.01)
    cancelled.cancel()
    result = await kept
    assert len(result.texts) == 4
    assert cancelled.cancelled()
    assert not hf._running and not hf._waiting and hf.runtime and not hf.runtime.sampler.active


async def test_a_failed_step_fails_its_batch_and_the_engine_serves_on(
    runtime: HFRuntime, engine: tuple[HFEngine, list[tuple[int, int]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    hf, _ = engine
    advance = runtime.advance
    failures = iter([RuntimeError("out of memory")])

    def failing_once(admit: Any, cancel: Any, sampling: Sampling) -> Any:
        result = advance(admit, cancel, sampling)
        failure = next(failures, None)
        if failure is not None:
            runtime.sampler.clear()  # what advance() does when it fails
            raise failure
        return result

    monkeypatch.setattr(runtime, "advance", failing_once)
    with pytest.raises(RuntimeError, match="out of memory"):
        await hf.generate(messages("salon chair"), 2, 1, None)
    after = await hf.generate(messages("deck over"), 2, 2, None)
    assert len(after.texts) == 2


async def test_a_closed_engine_finishes_what_it_has_and_refuses_more(
    engine: tuple[HFEngine, list[tuple[int, int]]],
) -> None:
    hf, _ = engine
    running = asyncio.create_task(hf.generate(messages("salon chair"), 2, 1, None))
    await asyncio.sleep(0)
    await hf.close()
    assert len((await running).texts) == 2
    with pytest.raises(NotReady):
        await hf.generate(messages("deck over"), 1, None, None)
