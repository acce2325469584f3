"""synth train rewriter on a handful of store records with the real SmolLM2: SFT then DPO change what the
model writes, the rewriter service serves the result (real gRPC server) and names it, the pipeline
version changes with it, and a run stopped after a step and continued equals a straight run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from services.cli.main import main as synth_main
from services.cli.rewriter_commands import served_rewriter
from services.cli.system import LocalSystem
from services.gen.synth.v1 import common_pb2
from services.lab.rewriter.reward import PipelineReward, RewardStats
from services.pipeline.clients import RewriterClient
from services.pipeline.config import PipelineSettings
from services.pipeline.synthesize import SynthesisPipeline
from tests.unit.lab.rewriter.store_samples import write_store

pytestmark = pytest.mark.slow

QUERY = "cordless drill for deck screws"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rewriter_model_dir: Path) -> Path:
    monkeypatch.setenv("TAILSYNTH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("TAILSYNTH_REWRITER_MODEL_DIR", str(rewriter_model_dir))
    monkeypatch.setenv("TAILSYNTH_REWRITER_HEALTH_INTERVAL_S", "600")
    return write_store(tmp_path / "store")


def train(store: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    argv = ["train", "rewriter", "--store", str(store), "--batch-size", "2", "--threads", "2", "--quiet"]
    code = synth_main([*argv, *extra])
    return code, capsys.readouterr().out.strip()


async def ask(target: str) -> tuple[list[str], common_pb2.ServiceInfo, str]:
    """The served rewrites (seeded), Describe, and the pipeline version with this rewriter."""
    client = RewriterClient(target, 120)
    pipeline = SynthesisPipeline(PipelineSettings(rewriter_target=target))
    fixed = common_pb2.ServiceInfo(service="x", engine="x", version="same")

    async def same() -> common_pb2.ServiceInfo:
        return fixed

    # Only the rewriter differs between the two versions compared: the others answer one fixed Describe.
    pipeline.retriever.describe = same  # type: ignore[method-assign]
    pipeline.judge.describe = same  # type: ignore[method-assign]
    try:
        reply = await client.rewrite(QUERY, 4, seed=11)
        texts = [c.text for c in reply.candidates] + [d.text for d in reply.dropped]
        return texts, await client.describe(), await pipeline.version()
    finally:
        await client.close()
        await pipeline.close()


def test_sft_then_dpo_change_the_output_and_the_trained_model_is_served(
    env: Path, capsys: pytest.CaptureFixture[str], rewriter_model_dir: Path
) -> None:
    code, out = train(env, capsys, "--stages", "sft,dpo", "--steps", "3", "--lr", "3e-4")
    assert code == 0, out
    model = Path(out.splitlines()[-1])
    manifest = json.loads((model / "tailsynth-model.json").read_text())
    assert manifest["stage"] == "dpo" and manifest["steps"] == 3 and manifest["data"]["rows"] > 0
    sft = Path(manifest["base_model"]["path"])
    assert json.loads((sft / "tailsynth-model.json").read_text())["stage"] == "sft"
    assert len(manifest["log"]["loss_per_step"]) == 3 and manifest["prompt"].startswith("rewrite_v1@")
    # The same command again finds both models and trains nothing.
    assert train(env, capsys, "--stages", "sft,dpo", "--steps", "3", "--lr", "3e-4") == (0, str(model))

    with served_rewriter(str(model), "hf", "") as target:
        trained, info, trained_version = asyncio.run(ask(target))
    with served_rewriter(str(rewriter_model_dir), "hf", "") as target:
        base, base_info, base_version = asyncio.run(ask(target))
    assert info.details["hf_trained"] == f"{manifest['version']} (stage dpo)"
    assert manifest["prompt"] in info.version  # served with the prompt it was trained on
    assert info.details["hf_model"] == str(model.resolve())
    assert "hf_trained" not in base_info.details and info.version != base_info.version
    assert trained_version != base_version  # so every cache key changes too
    assert trained and trained != base  # same seed, same prompt: the weights made the difference


def test_a_stopped_and_continued_run_equals_a_straight_run(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from safetensors.torch import load_file

    args = ["--stages", "sft", "--steps", "2", "--checkpoint-every", "1", "--lr", "1e-4"]
    code, straight = train(env, capsys, *args, "--out", str(env.parent / "straight"))
    assert code == 0
    split = env.parent / "split"
    assert train(env, capsys, *args, "--out", str(split), "--max-steps", "1") == (0, "")
    assert not split.exists() and (env.parent / ".split.work").is_dir()
    code, resumed = train(env, capsys, *args, "--out", str(split))
    assert code == 0 and resumed == str(split)
    assert json.loads((split / "tailsynth-model.json").read_text())["resumed_from_step"] == 1
    a, b = load_file(Path(straight) / "model.safetensors"), load_file(split / "model.safetensors")
    assert a.keys() == b.keys()
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 1e-5, worst


async def test_grpo_rewards_come_from_the_live_pipeline(live_system: LocalSystem) -> None:
    env = live_system.env()
    settings = PipelineSettings(
        rewriter_target=env["TAILSYNTH_PIPELINE_REWRITER_TARGET"],
        retriever_target=env["TAILSYNTH_PIPELINE_RETRIEVER_TARGET"],
        judge_target=env["TAILSYNTH_PIPELINE_JUDGE_TARGET"],
    )
    reward = PipelineReward(settings, num_rewrites=4, top_k=20, max_words=12, max_chars=96)
    stats = RewardStats()
    try:
        scores = await reward.score(
            QUERY, [QUERY, "cordless drill driver\n<<>>", "cordless drill driver"], stats
        )
    finally:
        await reward.close()
    # A copy of the query and a duplicate earn nothing; garbage halves its sample's reward.
    assert scores[0] == 0.0 and scores[2] == 0.0
    assert 0.0 < scores[1] <= 0.5
    assert stats.means()["dropped"] == pytest.approx(3 / 4)


def test_grpo_trains_against_the_live_services(
    env: Path, capsys: pytest.CaptureFixture[str], live_system: LocalSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("REWRITER", "RETRIEVER", "JUDGE"):
        target = f"TAILSYNTH_PIPELINE_{name}_TARGET"
        monkeypatch.setenv(target, live_system.env()[target])
    code, out = train(env, capsys, "--stages", "grpo", "--grpo-steps", "2", "--batch-size", "4")
    assert code == 0, out
    manifest = json.loads((Path(out.splitlines()[-1]) / "tailsynth-model.json").read_text())
    assert manifest["stage"] == "grpo" and manifest["steps"] == 2
    log = manifest["log"]
    assert 0.0 <= log["reward"]["first"] <= 1.0 and "intent_pass" in log and "dropped" in log


def test_bf16_is_a_run_of_its_own(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from services.lab.rewriter.stages import cpu_has_bf16

    if not cpu_has_bf16():
        pytest.skip("this CPU has no bf16 instructions")
    args = ["--stages", "sft", "--steps", "1", "--lr", "1e-4"]
    code, fp32 = train(env, capsys, *args, "--precision", "fp32")
    assert code == 0
    code, bf16 = train(env, capsys, *args, "--precision", "bf16")
    assert code == 0 and bf16 != fp32  # not found as the fp32 run's model
    manifests = [json.loads((Path(m) / "tailsynth-model.json").read_text()) for m in (fp32, bf16)]
    assert [m["precision"] for m in manifests] == ["fp32", "bf16"]
    assert manifests[1]["log"]["loss_per_step"][0] > 0
