"""Train the rewriter's LLM on its own rewards: `synth train rewriter`.

Three stages, each with TRL's trainer, each starting from the model the previous one wrote:
- `sft`: rejection sampling, the store's best accepted rewrites per query as targets;
- `dpo`: the store's partial order of rewrites by reward (chosen/rejected pairs);
- `grpo`: online RL, each sampled rewrite list scored by the live retriever and judge through the
  pipeline (services/lab/rewriter/reward.py).

A run is named by its stage, data, base model and parameters; checkpoints (TRL's, with optimizer,
scheduler and RNG states) go to a work directory beside the output, so the same command after Ctrl-C
or a kill continues from the last one. The finished model is a Hugging Face directory the rewriter's
hf and vllm engines load (TAILSYNTH_REWRITER_MODEL_DIR), with tailsynth-model.json, renamed into place.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from services.core.assets import fingerprint, smollm2_hf_dir
from services.core.durable import publish, write_bytes
from services.core.errors import InvalidInput
from services.core.llm.model_dir import TRAINED_MANIFEST as MANIFEST
from services.core.llm.model_dir import check_causal_lm, trained_prompt
from services.lab.rewriter.data import (
    FORMATS,
    NEAR_COPIES,
    Format,
    NearCopies,
    StoreData,
    dev_split,
    load_store,
    preference_rows,
    prompt_rows,
    rows_sha256,
    sft_rows,
)
from services.lab.rewriter.reward import reward_services
from services.lab.rewriter.stages import (
    PRECISIONS,
    StageArgs,
    build_trainer,
    callbacks,
    close_reward,
    interrupts_stop,
    log_summary,
    resolve_precision,
    training_arguments,
)
from services.lab.training import existing_model, run_key, set_threads
from services.pipeline.config import PipelineSettings
from services.rewriter.config import RewriterSettings
from services.rewriter.prompts import PromptTemplate, load_prompt

log = logging.getLogger(__name__)

FORMAT = "tailsynth.rewriter.model/1"
RUN_FILE = "run.json"
STAGES = ("sft", "dpo", "grpo")
LEARNING_RATES = {"sft": 5e-5, "dpo": 5e-6, "grpo": 2e-6}
BETAS = {"sft": 0.0, "dpo": 0.1, "grpo": 0.0}


@dataclass(frozen=True)
class TrainConfig:
    stage: str = "sft"
    fmt: Format = "single"  # chosen on dev queries over "list" (make rewriter-experiment)
    seed: int = 13
    epochs: float = 1.0
    steps: int = 0  # sft/dpo optimizer steps; 0: the epochs decide
    grpo_steps: int = 20  # online RL is bounded by steps (each samples and scores a batch)
    batch_size: int = 8
    learning_rate: float = 0.0  # 0: the stage's default
    candidates: int = 3  # best rewrites per query (SFT targets; DPO list format)
    min_reward: float = 0.0
    near_copies: NearCopies = "drop"  # of SFT targets and DPO's chosen side; chosen on dev queries
    margin: float = 0.05
    pairs_per_query: int = 4
    beta: float = -1.0  # < 0: the stage's default
    max_length: int = 256
    num_generations: int = 4
    num_rewrites: int = 4
    top_k: int = 20
    dev_fraction: float = 0.0
    prompt: str = ""  # "": the prompt the base model was trained on, else the served one
    precision: str = "auto"
    checkpoint_every: int = 25  # not part of the run's name

    @property
    def lr(self) -> float:
        return self.learning_rate or LEARNING_RATES[self.stage]

    @property
    def total_steps(self) -> int:
        return self.grpo_steps if self.stage == "grpo" else self.steps

    @property
    def kl(self) -> float:
        return self.beta if self.beta >= 0 else BETAS[self.stage]

    def params(self) -> dict[str, Any]:
        fields = asdict(self)
        fields.pop("checkpoint_every")
        fields.pop("prompt")  # the run is named by the prompt it resolves to (its version)
        fields.pop("precision")  # and by the precision auto resolves to
        return fields | {"learning_rate": self.lr, "beta": self.kl}

    def check(self) -> None:
        problems = [
            f"{name} must be {rule}"
            for name, ok, rule in (
                ("--stage", self.stage in STAGES, f"one of {', '.join(STAGES)}"),
                ("--format", self.fmt in FORMATS, f"one of {', '.join(FORMATS)}"),
                ("--near-copies", self.near_copies in NEAR_COPIES, f"one of {', '.join(NEAR_COPIES)}"),
                ("--epochs", self.epochs > 0, "positive"),
                ("--steps", self.steps >= 0, "0 (the epochs decide) or more"),
                ("--grpo-steps", self.grpo_steps >= 1, "at least 1"),
                ("--batch-size", self.batch_size >= 1, "at least 1"),
                ("--lr", 0 <= self.learning_rate < 1, "in [0, 1)"),
                ("--candidates", 1 <= self.candidates <= 16, "in [1, 16]"),
                ("--margin", 0 <= self.margin <= 1, "in [0, 1]"),
                ("--pairs-per-query", self.pairs_per_query >= 1, "at least 1"),
                ("--max-length", 64 <= self.max_length <= 4096, "in [64, 4096]"),
                ("--num-generations", self.num_generations >= 2, "at least 2 (GRPO compares a group)"),
                (
                    "--batch-size (grpo)",
                    self.stage != "grpo" or self.batch_size % self.num_generations == 0,
                    "a multiple of --num-generations",
                ),
                ("--checkpoint-every", self.checkpoint_every >= 1, "at least 1"),
                ("--precision", self.precision in PRECISIONS, f"one of {', '.join(PRECISIONS)}"),
            )
            if not ok
        ]
        if problems:
            raise InvalidInput("; ".join(problems))


@dataclass(frozen=True)
class TrainResult:
    path: Path
    version: str
    steps: int
    done: int
    resumed_from: int
    manifest: dict[str, Any]
    interrupted: bool = False

    @property
    def finished(self) -> bool:
        return self.done >= self.steps and not self.interrupted


def base_model(base: Path | None, settings: RewriterSettings) -> Path:
    """The model to start from: `base`, else the served one (TAILSYNTH_REWRITER_MODEL_DIR or SmolLM2)."""
    path = base or settings.model_dir or smollm2_hf_dir(settings.models_dir)
    check_causal_lm(path)
    return path


def training_prompt(name: str, base: Path, settings: RewriterSettings) -> PromptTemplate:
    """`name`, else the prompt `base` was trained on, else the served one: the stages of a chain share
    one prompt, and serving follows the manifest (services/rewriter/config.py)."""
    prompt = load_prompt(name or trained_prompt(base) or settings.prompt)
    if prompt.task != "rewrite":
        raise InvalidInput(
            f"prompt {prompt.name} writes queries for a product; the rewriter trains on a rewrite prompt"
        )
    return prompt


def stage_rows(data: StoreData, config: TrainConfig, prompt: PromptTemplate) -> list[dict[str, Any]]:
    if config.stage == "sft":
        rows = sft_rows(data, prompt, config.fmt, config.candidates, config.min_reward, config.near_copies)
        if not rows:
            other = " that is not a near-copy of its query" if config.near_copies == "drop" else ""
            raise InvalidInput(
                f"{data.store}: no accepted rewrite with reward >= {config.min_reward}{other} to train on"
            )
        return rows
    if config.stage == "dpo":
        rows = preference_rows(
            data,
            prompt,
            config.fmt,
            config.candidates,
            config.margin,
            config.pairs_per_query,
            config.near_copies,
        )
        if not rows:
            raise InvalidInput(
                f"{data.store}: no preference pair with a reward margin >= {config.margin}; lower --margin "
                "or synthesize more queries"
            )
        return rows
    return prompt_rows(data, prompt)


def training_data(store: Path, config: TrainConfig) -> tuple[StoreData, list[str]]:
    """The store without its dev queries (returned too: settings are chosen on them)."""
    data = load_store(store)
    train_q, dev_q = dev_split([q.query for q in data.queries], config.dev_fraction, config.seed)
    if dev_q:
        keep = set(train_q)
        data = StoreData(data.store, data.records, data.skipped, [q for q in data.queries if q.query in keep])
    return data, dev_q


def _work_dir(target: Path, key: str, version: str) -> Path:
    work = target.parent / f".{target.name}.work"
    run_file = work / RUN_FILE
    if work.exists() and (not run_file.is_file() or json.loads(run_file.read_text()).get("key") != key):
        log.info("discarding %s: a checkpoint of other data or parameters", work)
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    if not run_file.is_file():
        write_bytes(run_file, json.dumps({"key": key, "version": version, "seconds": 0.0}).encode())
    return work


def train(
    store: Path,
    config: TrainConfig,
    settings: RewriterSettings,
    pipeline: PipelineSettings | None = None,
    base: Path | None = None,
    out: Path | None = None,
    threads: int = 0,
    progress: bool = True,
    stop_after: int = 0,
) -> TrainResult:
    """Train one stage (or continue it) and publish the model; with stop_after > 0 stop after that step
    with a checkpoint, unpublished (the same call without it continues)."""
    config.check()
    base = base_model(base, settings)
    base_id = f"{base.name}:{fingerprint(base)}"
    data, dev = training_data(store, config)
    prompt = training_prompt(config.prompt, base, settings)
    rows = stage_rows(data, config, prompt)
    data_sha = rows_sha256(rows)
    prompt_version = prompt.version
    sampling = {
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "max_new_tokens": settings.max_new_tokens,
    }
    # GRPO's reward is what the services answer: their versions (index, judge policy...) name the run too.
    services = reward_services(pipeline) if config.stage == "grpo" else None
    named = {"base": base_id, "prompt": prompt_version, "sampling": sampling, "services": services}
    from services.core.encoder import resolve_device

    device = resolve_device(settings.device)
    precision = resolve_precision(config.precision, device)
    if precision != "fp32":  # so fp32 runs keep the names they had before precision was a choice
        named["precision"] = precision
    key = run_key(data_sha, config.params() | named)
    version = f"rewriter-{config.stage}-{key}"
    target = out or settings.models_dir / "rewriter" / version
    if (manifest := existing_model(target, key, MANIFEST)) is not None:
        log.info("%s already holds this run's model; nothing to train", target)
        steps = int(manifest.get("steps", 0))
        return TrainResult(target, version, steps, steps, steps, manifest)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = _work_dir(target, key, version)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_utils import get_last_checkpoint

    set_threads(threads)
    torch.manual_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    reward = None
    if config.stage == "grpo":
        from services.lab.rewriter.reward import PipelineReward

        assert pipeline is not None
        reward = PipelineReward(
            pipeline,
            config.num_rewrites,
            config.top_k,
            settings.max_rewrite_words,
            settings.max_rewrite_chars,
        )
    bar, stopper = callbacks(progress, stop_after, config.stage)
    common = training_arguments(
        work,
        config.seed,
        config.batch_size,
        config.lr,
        config.epochs,
        config.total_steps,
        config.checkpoint_every,
        device,
        precision,
    )
    stage_args = StageArgs(
        config.stage, config.max_length, config.kl, config.num_generations, settings.max_new_tokens,
        settings.temperature, settings.top_p,
    )  # fmt: skip
    trainer = build_trainer(stage_args, common, model, tokenizer, rows, reward, [bar, stopper])
    last = get_last_checkpoint(str(work))
    resumed_from = int(Path(last).name.split("-")[-1]) if last else 0
    if last:
        log.info("resuming at step %d from %s", resumed_from, last)
    began = time.monotonic()
    try:
        with interrupts_stop(stopper):
            trainer.train(resume_from_checkpoint=last)
    finally:
        close_reward(trainer, reward)
        run = json.loads((work / RUN_FILE).read_text())
        run["seconds"] = float(run.get("seconds", 0.0)) + time.monotonic() - began
        write_bytes(work / RUN_FILE, json.dumps(run).encode())
    state = trainer.state
    if stopper.interrupted or state.global_step < state.max_steps:
        log.info("stopped at step %d of %d; checkpoint in %s", state.global_step, state.max_steps, work)
        return TrainResult(
            target, version, state.max_steps, state.global_step, resumed_from, {}, stopper.interrupted
        )

    import transformers
    import trl

    manifest = {
        "format": FORMAT,
        "version": version,
        "run_key": key,
        "stage": config.stage,
        "base_model": {"id": base_id, "path": str(base.resolve())},
        "prompt": prompt_version,
        "serving_sampling": sampling,
        "reward_services": services,
        "data": {
            "store": str(store),
            "sha256": data_sha,
            "records": data.records,
            "unreadable_records": data.skipped,
            "queries": len(data.queries),
            "dev_queries": len(dev),
            "rows": len(rows),
        },
        "parameters": config.params(),
        "seed": config.seed,
        "steps": state.max_steps,
        "resumed_from_step": resumed_from,
        "log": log_summary(state.log_history),
        "train_seconds": round(float(run["seconds"]), 1),
        "device": device,
        "precision": precision,
        "threads": torch.get_num_threads(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "library_versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "trl": trl.__version__,
        },
    }
    tmp = target.parent / f".{target.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.save_model(str(tmp))
    tokenizer.padding_side = "right"
    tokenizer.save_pretrained(str(tmp))
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    publish(tmp, target)
    shutil.rmtree(work, ignore_errors=True)
    log.info("model %s written to %s", version, target)
    return TrainResult(target, version, state.max_steps, state.max_steps, resumed_from, manifest)


def train_stages(
    store: Path,
    stages: list[str],
    config: TrainConfig,
    settings: RewriterSettings,
    pipeline: PipelineSettings | None = None,
    base: Path | None = None,
    out: Path | None = None,
    **kwargs: Any,
) -> list[TrainResult]:
    """Each stage from the previous one's model (the last one to `out`, if given); stops at the first
    stage that did not finish."""
    results: list[TrainResult] = []
    for number, stage in enumerate(stages, start=1):
        stage_config = TrainConfig(**(asdict(config) | {"stage": stage}))
        target = out if number == len(stages) else None
        result = train(store, stage_config, settings, pipeline, base, target, **kwargs)
        results.append(result)
        if not result.finished:
            break
        base = result.path
    return results
