"""Prompts are versioned by their content: an edit gives a new version, and so a new service version."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.core.errors import ConfigError, InvalidInput
from services.gen.synth.v1 import common_pb2, rewriter_pb2
from services.rewriter import prompts
from services.rewriter.config import RewriterSettings
from services.rewriter.engine import ProductInput
from services.rewriter.servicer import RewriterService


@pytest.fixture
def prompt_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for path in prompts.PROMPTS_DIR.glob("*.toml"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
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
    [
        'name = "x"',
        'name = "x"\nsystem = "s"\nuser = "{missing}"',
        "not toml [",
        'name = "x"\nsystem = "s"\ntask = "poetry"',
    ],
)
def test_a_malformed_prompt_is_a_config_error_at_load(prompt_dir: Path, body: str) -> None:
    (prompt_dir / "broken.toml").write_text(body)
    with pytest.raises(ConfigError, match="malformed"):
        prompts.load_prompt("broken")


def test_an_unknown_prompt_names_the_available_ones(prompt_dir: Path) -> None:
    with pytest.raises(ConfigError, match="rewrite_v1"):
        prompts.load_prompt("nope")


def test_every_product_prompt_is_loaded_and_versioned_in_the_service(prompt_dir: Path) -> None:
    settings = RewriterSettings(engines="hf")
    names = settings.prompt_names
    assert names[0] == "rewrite_v1" and len(names) == 5
    before = service_version()
    for name in names[1:]:
        template = prompts.load_prompt(name)
        assert template.task == "product" and template.version in before
        assert all(shot.startswith("Product: ") for shot, _ in template.shots)
    path = prompt_dir / "product_need_v1.toml"
    path.write_text(path.read_text().replace("plain words", "everyday words"))
    assert service_version() != before


def test_a_product_prompt_writes_for_the_product_text() -> None:
    product = ProductInput(
        title="Aquaflo 50 ft. Garden Hose", brand="Aquaflo", category="Outdoors", description="d" * 500
    )
    text = product.prompt_text()
    assert text.splitlines()[0] == "Product: Aquaflo 50 ft. Garden Hose"
    assert "Brand:" not in text  # the title names it
    assert "Category: Outdoors" in text and len(text.splitlines()[-1]) == len("Description: ") + 240
    messages = prompts.load_prompt("product_keywords_v1").messages(text)
    assert messages[-1] == {"role": "user", "content": text}


def test_the_servicer_refuses_an_unknown_prompt_and_a_product_the_prompt_does_not_take() -> None:
    service = RewriterService(RewriterSettings(engines="hf"))
    with pytest.raises(InvalidInput, match="unknown prompt 'nope'; available: product_attributes_v1, "):
        service._product(rewriter_pb2.RewriteRequest(query="drill", num_rewrites=1, prompt="nope"))
    with pytest.raises(InvalidInput, match="takes no product"):
        service._product(
            rewriter_pb2.RewriteRequest(
                query="drill", num_rewrites=1, product=common_pb2.Product(title="Drill")
            )
        )
    with pytest.raises(InvalidInput, match="give its title"):
        service._product(
            rewriter_pb2.RewriteRequest(
                num_rewrites=1, prompt="product_keywords_v1", product=common_pb2.Product()
            )
        )
    asked = rewriter_pb2.RewriteRequest(
        num_rewrites=1, prompt="product_need_v1", product=common_pb2.Product(title=" Drill\t", brand="Acme")
    )
    assert service._product(asked) == ProductInput(title="Drill", brand="Acme")


def test_a_rewriter_without_an_llm_refuses_product_prompts() -> None:
    demo = Path(__file__).resolve().parents[3] / "data" / "demo" / "catalog.csv"
    service = RewriterService(RewriterSettings(engines="catalog", catalog=demo))  # loads nothing yet
    asked = rewriter_pb2.RewriteRequest(
        num_rewrites=1, prompt="product_need_v1", product=common_pb2.Product(title="Drill")
    )
    with pytest.raises(InvalidInput, match="needs an LLM engine"):
        service._product(asked)
