"""Prompts are versioned by their content: an edit gives a new version, and so a new service version."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.core.errors import ConfigError
from services.rewriter import prompts
from services.rewriter.config import RewriterSettings
from services.rewriter.servicer import RewriterService


@pytest.fixture
def prompt_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "rewrite_v1.toml").write_bytes((prompts.PROMPTS_DIR / "rewrite_v1.toml").read_bytes())
    monkeypatch.setattr(prompts, "PROMPTS_DIR", tmp_path)
    prompts.load_prompt.cache_clear()
    yield tmp_path
    prompts.load_prompt.cache_clear()


def service_version() -> str:
    prompts.load_prompt.cache_clear()
    return RewriterService(RewriterSettings(engines="hf")).version  # hf loads nothing until start()


def test_editing_the_prompt_changes_its_version_and_the_services(prompt_dir: Path) -> None:
    before, service_before = prompts.load_prompt("rewrite_v1").version, service_version()
    path = prompt_dir / "rewrite_v1.toml"
    path.write_text(path.read_text().replace("Use product words.", "Use the words on product pages."))
    service_after = service_version()  # clears the cache: the file is read again
    after = prompts.load_prompt("rewrite_v1").version
    assert before.startswith("rewrite_v1@") and after.startswith("rewrite_v1@") and before != after
    assert before in service_before and after in service_after


def test_the_chat_turns_carry_the_shots_and_the_query(prompt_dir: Path) -> None:
    template = prompts.load_prompt("rewrite_v1")
    messages = template.messages("deck over")
    assert messages[0]["role"] == "system" and messages[-1] == {"role": "user", "content": "deck over"}
    assert len(messages) == 2 + 2 * len(template.shots)
    assert "deck over" in template.text("deck over")


@pytest.mark.parametrize(
    "body",
    ['name = "x"', 'name = "x"\nsystem = "s"\nuser = "{missing}"', "not toml ["],
)
def test_a_malformed_prompt_is_a_config_error_at_load(prompt_dir: Path, body: str) -> None:
    (prompt_dir / "broken.toml").write_text(body)
    with pytest.raises(ConfigError, match="malformed"):
        prompts.load_prompt("broken")


def test_an_unknown_prompt_names_the_available_ones(prompt_dir: Path) -> None:
    with pytest.raises(ConfigError, match="rewrite_v1"):
        prompts.load_prompt("nope")
