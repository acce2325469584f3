"""Fixtures shared by every test tier: real servers on free ports, never fakes."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.core.redis_server import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[1]
DEMO_CATALOG = ROOT / "data" / "demo" / "catalog.csv"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis(redis_server: EmbeddedRedis) -> AsyncIterator[Redis]:
    """An async client of the session's server; tests keep apart by using their own keys."""
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
def rewriter_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2 converted to HF format once per session, for every system the tests start."""
    from services.core.assets import smollm2_hf_dir

    return smollm2_hf_dir(tmp_path_factory.mktemp("models"))
