"""Batched sampling on the real SmolLM2 model: same tokens as transformers' own generate(), seeds that do
not depend on the batch, the shared prompt prefix, deadlines, and cross-request batching in the engine."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from services.core.llm.hf import Conversation, HFRuntime, Sampling
from services.rewriter.config import RewriterSettings
from services.rewriter.engines.hf import HFEngine
from services.rewriter.prompts import load_prompt

GREEDY = Sampling(temperature=1e-4, top_p=1.0, max_new_tokens=10)  # softmax at 1e-4 is the argmax
SAMPLED = Sampling(temperature=0.9, top_p=0.95, max_new_tokens=16)
QUERIES = ["salon chair", "something to keep a toddler's bath water warm", "deck over"]


@pytest.fixture(scope="module")
def runtime(rewriter_model_dir: Path) -> HFRuntime:
    return HFRuntime(rewriter_model_dir, "cpu")


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
        batch = runtime.generate_many([Conversation(messages(q), 2, None, None) for q in QUERIES], GREEDY)
        assert [c.texts for c in batch] == [[text, text] for text in expected]
    assert len(runtime.sampler.prefix.ids) >= 60  # the system text and the few-shot turns
    assert all(
        runtime.prompt_ids(messages(q))[: len(runtime.sampler.prefix.ids)] == runtime.sampler.prefix.ids
        for q in QUERIES
    )


def test_a_new_template_gets_its_own_prefix_and_the_same_tokens(runtime: HFRuntime) -> None:
    runtime.generate_many([Conversation(messages(q), 1, None, None) for q in QUERIES], GREEDY)
    system = "You rewrite shop search queries into short product names. Reply with the query only."
    other = [messages(q, system) for q in QUERIES[:2]]
    batch = runtime.generate_many([Conversation(m, 1, None, None) for m in other], GREEDY)
    assert [c.texts[0] for c in batch] == [reference(runtime, m, GREEDY.max_new_tokens) for m in other]
    assert runtime.prompt_ids(other[0])[: len(runtime.sampler.prefix.ids)] == runtime.sampler.prefix.ids


def test_a_seeded_request_samples_the_same_texts_alone_or_in_a_batch(runtime: HFRuntime) -> None:
    target = Conversation(messages("cordless drill"), 4, 7, None)
    alone = runtime.generate_many([target], SAMPLED)[0]
    others = [Conversation(messages(q), 3, 100 + i, None) for i, q in enumerate(QUERIES)]
    batched = runtime.generate_many([others[0], target, *others[1:]], SAMPLED)
    assert batched[1] == alone
    assert len(alone.texts) == 4 and alone.tokens > 0
    assert [len(c.texts) for c in batched] == [3, 4, 3, 3]


def test_a_passed_deadline_stops_its_own_rows_only(runtime: HFRuntime) -> None:
    late = Conversation(messages("salon chair"), 3, 1, time.monotonic() - 1)
    on_time = Conversation(messages("salon chair"), 3, 1, None)
    late_result, on_time_result = runtime.generate_many([late, on_time], GREEDY)
    assert late_result.tokens <= 3  # one token a row at most: what was sampled before the check
    assert on_time_result.tokens > 3
    assert on_time_result.texts == [reference(runtime, messages("salon chair"), GREEDY.max_new_tokens)] * 3


def test_a_request_for_no_samples_gets_none(runtime: HFRuntime) -> None:
    nothing, some = runtime.generate_many(
        [Conversation(messages("rug"), 0, None, None), Conversation(messages("lamp"), 2, 3, None)], SAMPLED
    )
    assert nothing.texts == [] and nothing.tokens == 0
    assert len(some.texts) == 2


async def test_concurrent_requests_share_a_batch_in_the_engine(
    runtime: HFRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def run_blocking(fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    sizes: list[int] = []
    generate_many = runtime.generate_many

    def recording(conversations: list[Conversation], sampling: Sampling) -> list[Any]:
        sizes.append(len(conversations))
        return generate_many(conversations, sampling)

    monkeypatch.setattr(runtime, "generate_many", recording)
    engine = HFEngine(RewriterSettings(state_dir=tmp_path, hf_max_batch_rows=16), run_blocking)
    monkeypatch.setattr(engine, "load", lambda: None)
    engine.runtime = runtime
    await engine.start()
    try:
        calls = [engine.generate(messages(q), 4, i, None) for i, q in enumerate(QUERIES * 2)]
        results = await asyncio.gather(*calls)
    finally:
        await engine.close()
    assert [len(r.texts) for r in results] == [4] * 6
    # All six are queued before the first batch leaves: 16 rows hold four requests of 4 samples.
    assert sizes == [4, 2]
