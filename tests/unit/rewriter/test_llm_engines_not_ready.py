"""The hf and vllm engines refuse work the same way before they are started and after they are closed."""

from __future__ import annotations

from typing import Any

import pytest

from services.core.errors import NotReady
from services.rewriter.config import RewriterSettings
from services.rewriter.engine import ENGINES, LLMEngine

MESSAGES = [{"role": "user", "content": "drill"}]


async def never_run(*_: Any) -> Any:
    raise AssertionError("no model work may start")


@pytest.mark.parametrize("name", ["hf", "vllm"])
async def test_generate_before_start_and_after_close_is_not_ready(name: str) -> None:
    engine = ENGINES.get(name)(RewriterSettings(), never_run)
    assert isinstance(engine, LLMEngine)
    with pytest.raises(NotReady, match=f"^{name} engine is not started$"):
        await engine.generate(MESSAGES, 2, 0, None)
    await engine.close()  # nothing was started: closing is harmless
    with pytest.raises(NotReady, match=f"^{name} engine is shutting down$"):
        await engine.generate(MESSAGES, 2, 0, None)
