"""OpenAI-compatible engine: any server with /v1/completions or /v1/chat/completions (vLLM, TGI, llama.cpp,
OpenAI itself) over httpx, with retries, backoff and a concurrency limit.

Connect errors, timeouts, 429, 5xx and unreadable replies are retried with exponential backoff and jitter
(Retry-After honoured); other 4xx fail at once. Failures raise OpenAIError with a short message; the
servicer reports it as that engine's failure. The API key goes only into the Authorization header.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

from services.core.errors import ConfigError
from services.rewriter.config import RewriterSettings
from services.rewriter.engine import BlockingRunner, Generation, LLMEngine
from services.rewriter.prompts import messages_as_text

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 10.0
MAX_RETRY_AFTER_S = 60.0


class OpenAIError(RuntimeError):
    """The server could not give an answer; the message is short and safe to show."""


class RetryableError(Exception):
    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


def is_retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def backoff_s(attempt: int, base_s: float, rng: random.Random | None = None) -> float:
    """Delay before retry number `attempt` (0-based): base * 2^attempt capped, with equal jitter."""
    ceiling = min(MAX_BACKOFF_S, base_s * 2**attempt)
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date), capped; None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    delay = when.timestamp() - (time.time() if now is None else now)
    return min(max(delay, 0.0), MAX_RETRY_AFTER_S)


def next_delay_s(error: RetryableError, attempt: int, base_s: float) -> float:
    """The server's Retry-After when it gave one, else exponential backoff with jitter."""
    if error.retry_after_s is not None:
        return error.retry_after_s
    return backoff_s(attempt, base_s)


@dataclass(frozen=True)
class Reply:
    texts: list[str]
    tokens: int


def parse_reply(payload: Any, api: str) -> Reply:
    """Texts of every choice (fewer than asked is fine) and the generated token count from `usage`."""
    if not isinstance(payload, dict) or not isinstance(payload.get("choices"), list):
        raise ValueError("no choices in the reply")
    texts = []
    for choice in payload["choices"]:
        text = choice.get("text") if api == "completions" else (choice.get("message") or {}).get("content")
        if isinstance(text, str):
            texts.append(text)
    if payload["choices"] and not texts:
        raise ValueError("choices hold no text")
    usage = payload.get("usage") or {}
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    return Reply(texts, tokens if isinstance(tokens, int) else 0)


class OpenAIEngine(LLMEngine):
    name = "openai"
    client: httpx.AsyncClient | None = None

    def __init__(self, settings: RewriterSettings, run_blocking: BlockingRunner) -> None:
        super().__init__(settings, run_blocking)
        if not settings.openai_base_url:
            raise ConfigError("the openai engine needs TAILSYNTH_REWRITER_OPENAI_BASE_URL")
        if not settings.openai_model:
            raise ConfigError("the openai engine needs TAILSYNTH_REWRITER_OPENAI_MODEL")
        self.base_url = settings.openai_base_url.rstrip("/")
        self.model = settings.openai_model
        self.api = settings.openai_api
        self.path = "/completions" if self.api == "completions" else "/chat/completions"
        self.limit = asyncio.Semaphore(settings.openai_max_concurrency)

    def load(self) -> None:
        """Nothing to load: the model lives on the server."""

    async def start(self) -> None:
        headers = {"Accept": "application/json"}
        if self.settings.openai_api_key is not None:
            headers["Authorization"] = f"Bearer {self.settings.openai_api_key.get_secret_value()}"
        limits = httpx.Limits(max_connections=self.settings.openai_max_concurrency)
        self.client = httpx.AsyncClient(base_url=self.base_url, headers=headers, limits=limits)
        log.info("openai engine: %s %s, model %s", self.api, self.base_url + self.path, self.model)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    @property
    def version(self) -> str:
        return f"{self.model}@{self.api}"

    def _body(self, messages: list[dict[str, str]], n: int, seed: int | None) -> dict[str, Any]:
        s = self.settings
        body: dict[str, Any] = {
            "model": self.model,
            "n": n,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "max_tokens": s.max_new_tokens,
        }
        if seed is not None:
            body["seed"] = seed
        if self.api == "completions":
            body["prompt"] = messages_as_text(messages)
            body["stop"] = ["\n"]
        else:
            body["messages"] = messages
        return body

    async def generate(
        self, messages: list[dict[str, str]], n: int, seed: int | None, max_time_s: float | None
    ) -> Generation:
        reply = await self.request(self._body(messages, n, seed), max_time_s)
        return Generation(texts=reply.texts, tokens=reply.tokens)

    async def request(self, body: dict[str, Any], max_time_s: float | None = None) -> Reply:
        """POST with retries; raise OpenAIError when the server cannot answer in the attempts allowed."""
        give_up_at = None if max_time_s is None else time.monotonic() + max_time_s
        attempts = self.settings.openai_retries + 1
        for attempt in range(attempts):
            try:
                return await self._attempt(body, give_up_at)
            except RetryableError as error:
                tried = attempt + 1
                if tried == attempts:
                    raise OpenAIError(f"openai: {error.reason} after {tried} attempts") from None
                delay = next_delay_s(error, attempt, self.settings.openai_backoff_s)
                if give_up_at is not None and time.monotonic() + delay >= give_up_at:
                    raise OpenAIError(
                        f"openai: {error.reason} after {tried} attempts (no time left to retry)"
                    ) from None
                log.warning("openai: %s; retry %d in %.2fs", error.reason, tried, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _attempt(self, body: dict[str, Any], give_up_at: float | None) -> Reply:
        if self.client is None:
            raise OpenAIError("openai: engine not started")
        timeout = self.settings.openai_timeout_s
        if give_up_at is not None:
            timeout = max(min(timeout, give_up_at - time.monotonic()), 0.01)
        async with self.limit:
            try:
                response = await self.client.post(self.path, json=body, timeout=timeout)
            except httpx.TimeoutException:
                raise RetryableError("timed out") from None
            except httpx.TransportError as error:
                raise RetryableError(f"cannot reach {self.base_url} ({type(error).__name__})") from None
        status = response.status_code
        if is_retryable_status(status):
            raise RetryableError(f"HTTP {status}", retry_after_s(response.headers.get("retry-after")))
        if status >= 400:
            raise OpenAIError(f"openai: HTTP {status}: {_error_detail(response)}")
        try:
            return parse_reply(response.json(), self.api)
        except ValueError as error:  # JSONDecodeError is a ValueError
            raise RetryableError(f"unreadable reply ({str(error)[:80]})") from None


def _error_detail(response: httpx.Response) -> str:
    """The server's own message for a refused request, kept short."""
    text = response.text
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        message = error.get("message") if isinstance(error, dict) else error or payload.get("detail")
        text = str(message) if message else text
    return " ".join(text.split())[:200] or response.reason_phrase
