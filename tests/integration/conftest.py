"""One running system shared by the integration modules that only call its API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.cli.system import LocalSystem, Ports

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def live_system(tmp_path_factory: pytest.TempPathFactory, rewriter_model_dir: Path) -> Iterator[LocalSystem]:
    """The whole system with real parts (no queue workers: nothing here queues work, and fuzzed queue
    requests must not keep the CPU busy). Batches are capped at 4 queries to bound the fuzzer's work."""
    env = {k: v for k, v in os.environ.items() if k != "TAILSYNTH_REDIS_URL"}
    local = LocalSystem(
        state_dir=tmp_path_factory.mktemp("state"),
        catalog=ROOT / "data" / "demo" / "catalog.csv",
        ports=Ports.free(),
        workers=0,
        base_env=env
        | {
            "TAILSYNTH_REWRITER_MODEL_DIR": str(rewriter_model_dir),
            "TAILSYNTH_GATEWAY_BATCH_MAX_QUERIES": "4",
            "TAILSYNTH_LOG_FORMAT": "json",
        },
    )
    local.start()
    yield local
    local.stop()
