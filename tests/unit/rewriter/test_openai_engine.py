"""OpenAI engine: backoff, Retry-After, reply parsing, settings validation and the text prompt."""

from __future__ import annotations

import email.utils
import random

import pytest
from pydantic import ValidationError

from services.core.errors import ConfigError
from services.rewriter.config import RewriterSettings
from services.rewriter.engines.openai import (
    MAX_BACKOFF_S,
    MAX_RETRY_AFTER_S,
    OpenAIEngine,
    RetryableError,
    backoff_s,
    is_retryable_status,
    next_delay_s,
    parse_reply,
    retry_after_s,
)
from services.rewriter.prompts import load_prompt


async def _no_blocking(fn, *args):  # type: ignore[no-untyped-def]
    return fn(*args)


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    rng = random.Random(7)
    for attempt in range(8):
        ceiling = min(MAX_BACKOFF_S, 0.5 * 2**attempt)
        delays = [backoff_s(attempt, 0.5, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), attempt
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not a constant
    assert backoff_s(30, 0.5, rng) <= MAX_BACKOFF_S


def test_retry_after_seconds_and_http_date() -> None:
    assert retry_after_s("3") == 3.0
    assert retry_after_s(" 0 ") == 0.0
    assert retry_after_s("100000") == MAX_RETRY_AFTER_S
    now = 1_800_000_000.0
    assert retry_after_s(email.utils.formatdate(now + 5, usegmt=True), now=now) == pytest.approx(5.0)
    assert retry_after_s(email.utils.formatdate(now - 50, usegmt=True), now=now) == 0.0
    for bad in (None, "", "soon", "-1", "1.5e3"):
        assert retry_after_s(bad) is None, bad


def test_retry_after_wins_over_backoff() -> None:
    assert next_delay_s(RetryableError("HTTP 429", retry_after_s=2.0), attempt=0, base_s=0.1) == 2.0
    delay = next_delay_s(RetryableError("HTTP 503"), attempt=2, base_s=0.1)
    assert 0.2 <= delay <= 0.4


def test_retryable_statuses() -> None:
    assert [s for s in (200, 400, 401, 404, 408, 422, 429, 500, 502, 503, 504) if is_retryable_status(s)] == [
        429,
        500,
        502,
        503,
        504,
    ]


def test_parse_reply_chat_completions_and_usage() -> None:
    chat = {
        "choices": [{"message": {"content": "cordless drill"}}, {"message": {"content": "power drill"}}],
        "usage": {"prompt_tokens": 90, "completion_tokens": 7},
    }
    assert parse_reply(chat, "chat").texts == ["cordless drill", "power drill"]
    assert parse_reply(chat, "chat").tokens == 7
    completion = {"choices": [{"text": " drill driver"}]}  # no usage: zero tokens, not an error
    reply = parse_reply(completion, "completions")
    assert (reply.texts, reply.tokens) == ([" drill driver"], 0)
    assert parse_reply({"choices": []}, "chat").texts == []  # fewer choices than asked: use what came


@pytest.mark.parametrize(
    "payload", [[], "x", {"choices": "no"}, {"data": []}, {"choices": [{"message": {"content": None}}]}]
)
def test_parse_reply_refuses_garbage(payload: object) -> None:
    with pytest.raises(ValueError):
        parse_reply(payload, "chat")


@pytest.mark.parametrize(
    "url", ["localhost:8000", "ftp://host/v1", "http://", "http://host:99999/v1", "http://h/v1?x=1"]
)
def test_bad_base_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ValidationError, match="openai_base_url"):
        RewriterSettings(openai_base_url=url)


def test_engine_needs_url_and_model_and_hides_the_key() -> None:
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL"):
        OpenAIEngine(RewriterSettings(engines="openai"), _no_blocking)
    with pytest.raises(ConfigError, match="OPENAI_MODEL"):
        OpenAIEngine(RewriterSettings(openai_base_url="http://127.0.0.1:1/v1"), _no_blocking)
    settings = RewriterSettings(
        openai_base_url="http://127.0.0.1:1/v1/", openai_model="m", openai_api_key="sk-secret-value"
    )
    assert settings.openai_base_url == "http://127.0.0.1:1/v1"
    assert "sk-secret-value" not in repr(settings) and "sk-secret-value" not in str(settings.model_dump())
    assert OpenAIEngine(settings, _no_blocking).version == "m@chat"


def test_text_prompt_ends_with_an_open_rewrite() -> None:
    text = load_prompt("rewrite_v1").text("cordless drill")
    assert text.startswith("You help an online shop")
    assert "Query: cheap wireless mouse for laptop\nRewrite: wireless computer mouse\n" in text
    assert text.endswith("Query: cordless drill\nRewrite:")
