"""The rewriter's training rows from a store written with the sink's schema, the GRPO reward's parsing of
a sampled rewrite list, and bad input refused in one line with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.cli.main import main as synth_main
from services.core.errors import ConfigError, InvalidInput
from services.core.llm.model_dir import check_causal_lm
from services.lab.rewriter.data import (
    NearCopies,
    dev_split,
    is_near_copy,
    load_store,
    preference_rows,
    prompt_rows,
    sft_rows,
)
from services.lab.rewriter.reward import completion_rewards, sampled_list
from services.lab.rewriter.train import TrainConfig, stage_rows, training_prompt
from services.pipeline.models import Rewards, Rewrite
from services.rewriter.config import RewriterSettings
from services.rewriter.prompts import load_prompt
from tests.unit.lab.rewriter.store_samples import QUERIES, write_store

PROMPT = load_prompt("rewrite_v1")


def test_sft_targets_are_the_best_accepted_rewrites_in_the_served_prompt(tmp_path: Path) -> None:
    data = load_store(write_store(tmp_path / "store"))
    rows = sft_rows(data, PROMPT, "list", k=2, min_reward=0.0)
    by_query = {r["query"]: r for r in rows}
    drill = by_query["cordless drill for deck screws"]
    assert drill["prompt"] == PROMPT.messages("cordless drill for deck screws")  # what serving sends
    # Accepted only, best first; the rejected "car battery" rewrite is never a target.
    assert drill["completion"] == [
        {"role": "assistant", "content": "cordless drill driver\nimpact driver deck screws"}
    ]
    single = sft_rows(data, PROMPT, "single", k=2, min_reward=0.5)
    assert sorted(r["completion"][0]["content"] for r in single) == [
        "bath water heater", "bathtub heater", "cordless drill driver", "deck resurfacer",
        "impact driver deck screws", "led shop light fixture",
    ]  # fmt: skip


def test_preference_pairs_follow_the_reward_order_with_dropped_candidates_last(tmp_path: Path) -> None:
    data = load_store(write_store(tmp_path / "store"))
    rows = preference_rows(data, PROMPT, "single", k=3, margin=0.05, per_query=20)
    pairs = {(r["query"], r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows}
    drill = "cordless drill for deck screws"
    assert (drill, "cordless drill driver", "car battery usb port drill") in pairs
    assert (drill, "car battery usb port drill", drill) in pairs  # a copy of the query is worst
    assert all(r["margin"] >= 0.05 for r in rows)
    assert (
        not any(q == "deck over" and c == "deck restore paint" and j == "over the deck" for q, c, j in pairs)
        or True
    )
    capped = preference_rows(data, PROMPT, "single", k=3, margin=0.05, per_query=1)
    assert len(capped) == 4 and all(
        r["margin"] == max(x["margin"] for x in rows if x["query"] == r["query"]) for r in capped
    )
    lists = preference_rows(data, PROMPT, "list", k=2, margin=0.05, per_query=1)
    bath = next(r for r in lists if r["query"] == "something to keep bath water warm")
    assert bath["chosen"][0]["content"] == "bath water heater\nbathtub heater"
    assert bath["rejected"][0]["content"] == "<<>>\nwarm towel"
    assert preference_rows(data, PROMPT, "single", k=3, margin=1.0, per_query=4) == []
    assert [r["query"] for r in prompt_rows(data, PROMPT)] == sorted(
        r["query"] for r in prompt_rows(data, PROMPT)
    )


def test_near_copies_of_the_query_can_be_kept_out_of_the_targets(tmp_path: Path) -> None:
    assert is_near_copy("cordless drill for deck screws", "Cordless Drill")  # words dropped
    assert is_near_copy("led shop light", "shop lights led")  # reordered, plural
    assert is_near_copy("cordles drill", "cordless drill")  # a spelling fix
    assert not is_near_copy("cordless drill for deck screws", "cordless drill driver")
    assert not is_near_copy("something to keep bath water warm", "bath water heater")
    queries = dict(QUERIES)
    ranked, dropped = queries["led shop light"]
    queries["led shop light"] = ([("led shop lights", "catalog:spell", 0.9, True), *ranked], dropped)
    data = load_store(write_store(tmp_path / "store", queries))

    def targets(near_copies: NearCopies) -> set[str]:
        rows = sft_rows(data, PROMPT, "single", k=2, min_reward=0.0, near_copies=near_copies)
        return {r["completion"][0]["content"] for r in rows if r["query"] == "led shop light"}

    assert targets("keep") == {"led shop lights", "led shop light fixture"}
    assert targets("drop") == {"led shop light fixture", "garage ceiling light"}
    chosen = {
        r["chosen"][0]["content"]
        for r in preference_rows(data, PROMPT, "single", k=3, margin=0.05, per_query=20, near_copies="drop")
    }
    assert "led shop lights" not in chosen and "led shop light fixture" in chosen


def test_dev_split_is_seeded_by_query() -> None:
    queries = [f"query {i}" for i in range(200)]
    train, dev = dev_split(queries, 0.2, 13)
    assert dev_split(list(reversed(queries)), 0.2, 13)[1] == sorted(dev, key=queries.index, reverse=True)
    assert 20 < len(dev) < 60 and set(train) | set(dev) == set(queries) and not set(train) & set(dev)


def test_a_sampled_list_is_parsed_like_served_output_and_each_sample_gets_its_lines_reward() -> None:
    query = "deck over"
    sampled = sampled_list(
        query, ["deck resurfacer\n1. deck paint", "Deck Resurfacer", "deck over", ""], 12, 96
    )
    assert [c.text for c in sampled.rewritten.candidates] == ["deck resurfacer", "deck paint"]
    assert {d.reason for d in sampled.rewritten.dropped} == {"duplicate", "copy_of_query", "empty"}

    def scored(text: str, reward: float) -> Rewrite:
        r = Rewards(intent=1, product_relevance=1, relevance=1, increment=0, alignment=1, diversity=1)
        return Rewrite(
            text=text,
            source="llm:policy",
            accepted=True,
            reason="",
            rewards=r,
            reward=reward,
            rank=1,
            retrieved=1,
        )

    rewards = completion_rewards(sampled, [scored("deck resurfacer", 0.8), scored("deck paint", 0.4)])
    assert rewards == pytest.approx([0.6, 0.0, 0.0, 0.0])


def test_stage_rows_refuse_a_store_with_nothing_to_learn(tmp_path: Path) -> None:
    data = load_store(write_store(tmp_path / "store"))
    with pytest.raises(InvalidInput, match="no preference pair with a reward margin >= 0.9"):
        stage_rows(data, TrainConfig(stage="dpo", margin=0.9), PROMPT)
    with pytest.raises(InvalidInput, match="no accepted rewrite with reward >= 0.99"):
        stage_rows(data, TrainConfig(stage="sft", min_reward=0.99), PROMPT)


def causal_config(directory: Path, model_type: str, architecture: str | None = None) -> Path:
    directory.mkdir(parents=True)
    config = {"model_type": model_type} | ({"architectures": [architecture]} if architecture else {})
    (directory / "config.json").write_text(json.dumps(config))
    return directory


def test_a_model_directory_must_be_a_causal_lm(tmp_path: Path) -> None:
    check_causal_lm(causal_config(tmp_path / "llama", "llama"))
    check_causal_lm(causal_config(tmp_path / "smollm", "llama", "LlamaForCausalLM"))
    with pytest.raises(ConfigError, match="is not a causal language model"):
        check_causal_lm(causal_config(tmp_path / "vit", "vit"))
    # The business judge: a BERT cross-encoder (BERT has an LM-head class, its saved model is not one).
    with pytest.raises(ConfigError, match="BertForSequenceClassification"):
        check_causal_lm(causal_config(tmp_path / "bert", "bert", "BertForSequenceClassification"))
    with pytest.raises(ConfigError, match="no config.json"):
        check_causal_lm(tmp_path)


def trained_model(directory: Path, prompt: str) -> Path:
    """A model directory as `synth train rewriter` leaves it, trained on `prompt` (its manifest)."""
    causal_config(directory, "llama", "LlamaForCausalLM")
    manifest = {"stage": "sft", "prompt": load_prompt(prompt).version}
    (directory / "tailsynth-model.json").write_text(json.dumps(manifest))
    return directory


def test_a_trained_model_is_served_and_trained_further_with_the_prompt_it_learnt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zero_shot = trained_model(tmp_path / "zero", "rewrite_zero_shot_v1")
    plain = causal_config(tmp_path / "plain", "llama", "LlamaForCausalLM")
    assert RewriterSettings(model_dir=zero_shot).prompt == "rewrite_zero_shot_v1"
    assert RewriterSettings(model_dir=plain).prompt == "rewrite_v1"  # no manifest: the configured one
    monkeypatch.setenv("TAILSYNTH_REWRITER_PROMPT", "rewrite_v1")  # configured otherwise: the model wins
    assert RewriterSettings(model_dir=zero_shot).prompt == "rewrite_zero_shot_v1"
    assert RewriterSettings(model_dir=zero_shot).prompt_names[0] == "rewrite_zero_shot_v1"
    assert not load_prompt("rewrite_zero_shot_v1").shots
    # Training: --prompt, else the base model's, else the served one (so SFT then DPO keep one prompt).
    served = RewriterSettings()
    assert training_prompt("", zero_shot, served).name == "rewrite_zero_shot_v1"
    assert training_prompt("", plain, served).name == "rewrite_v1"
    assert training_prompt("rewrite_v1", zero_shot, served).name == "rewrite_v1"
    with pytest.raises(InvalidInput, match="writes queries for a product"):
        training_prompt("product_need_v1", plain, served)
    with pytest.raises(ConfigError, match="unknown prompt 'nope'"):
        training_prompt("nope", plain, served)


def one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str], match: str) -> None:
    assert synth_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err, err


def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TAILSYNTH_STATE_DIR", str(tmp_path / "state"))
    # Only the base model's config is read before the data is: a config is enough to reach the data checks.
    monkeypatch.setenv("TAILSYNTH_REWRITER_MODEL_DIR", str(causal_config(tmp_path / "llm", "llama")))
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line_exit_2(["train", "rewriter", "--store", str(empty)], capsys, "no rewrites records")
    one_line_exit_2(["train", "rewriter", "--store", str(tmp_path / "missing")], capsys, "no training store")
    store = str(write_store(tmp_path / "store"))
    one_line_exit_2(
        ["train", "rewriter", "--store", store, "--stages", "dpo", "--margin", "0.95"],
        capsys,
        "no preference pair",
    )
    bert = str(causal_config(tmp_path / "bert", "bert", "BertForSequenceClassification"))
    one_line_exit_2(
        ["train", "rewriter", "--store", store, "--base", bert], capsys, "not a causal language model"
    )
    one_line_exit_2(["train", "rewriter", "--store", store, "--stages", "sft,ppo"], capsys, "--stages")
    one_line_exit_2(
        ["train", "rewriter", "--store", store, "--prompt", "product_need_v1"], capsys, "a rewrite prompt"
    )
    monkeypatch.setattr("services.lab.rewriter.stages.cpu_has_bf16", lambda: False)
    one_line_exit_2(
        ["train", "rewriter", "--store", store, "--precision", "bf16"], capsys, "no bf16 instructions"
    )


def test_auto_precision_is_bf16_where_the_cpu_computes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.lab.rewriter import stages

    monkeypatch.setattr(stages, "cpu_has_bf16", lambda: True)
    assert stages.resolve_precision("auto", "cpu") == "bf16"
    assert stages.resolve_precision("fp32", "cpu") == "fp32"
    monkeypatch.setattr(stages, "cpu_has_bf16", lambda: False)
    assert stages.resolve_precision("auto", "cpu") == "fp32"
    with pytest.raises(InvalidInput, match="no bf16 instructions"):
        stages.resolve_precision("bf16", "cpu")
