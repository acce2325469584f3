"""Fine-tune the retriever's encoder on the training store: `synth train retriever`.

The objective (services/lab/retriever/objectives.py) is `listwise` distillation of the teacher's scores
over each query's judged candidates by default, or `margin_mse`, or `mnrl` (MultipleNegativesRanking
over accepted pairs with a judge-rejected hard negative: every other product in the batch is a
negative; batches never repeat a query or a product text, sentence-transformers'
NoDuplicatesBatchSampler, since a query's second accepted product in its own batch would count as a
negative). With `refresh_every`, the candidate lists grow with what the model being trained retrieves
(services/lab/retriever/refresh.py). Under torchrun each process trains on its slice of every batch
(DDP). The run is seeded: batch order, candidates, dropout, data sample. Its name is a hash of the
training data, the base model and the parameters; checkpoints go to a work directory beside the
output, so the same command after Ctrl-C or a kill continues from the last one. The finished model (a
sentence-transformers directory the Encoder loads, with tailsynth-model.json) is renamed into place in
one step.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from services.core.assets import fingerprint, minilm_path
from services.core.catalog import Product
from services.core.durable import publish, write_bytes
from services.core.errors import ConfigError, InvalidInput
from services.lab.retriever.data import Example, TrainingData
from services.lab.retriever.distributed import World
from services.lab.retriever.lists import list_counts
from services.lab.retriever.objectives import LOSSES, Contrastive, Distillation, Objective
from services.lab.retriever.refresh import Refreshed, refresh, replay
from services.lab.retriever.teacher import Teacher
from services.lab.training import Checkpoint, Progress, existing_model, run_key, set_threads, subsample

log = logging.getLogger(__name__)

MANIFEST = "tailsynth-model.json"
FORMAT = "tailsynth.retriever.model/1"
RUN_FILE = "run.json"


@dataclass(frozen=True)
class TrainConfig:
    loss: str = "listwise"
    teacher: str = "cross_encoder"  # the judge engine whose scores are distilled
    seed: int = 13
    epochs: int = 1
    batch_size: int = 32  # queries (listwise, margin_mse) or pairs (mnrl) per step
    list_size: int = 8  # candidates per query and step: the teacher's best and others sampled
    student_temperature: float = 0.05
    teacher_temperature: float = 1.0
    contrastive_weight: float = 1.0  # distillation: weight of the in-batch MNRL term (objectives.py)
    learning_rate: float = 2e-5
    warmup_fraction: float = 0.1
    max_length: int = 64  # tokens per text while training; the saved model keeps the base's limit
    max_pairs: int = 0  # 0: every example
    hard_negatives: bool = True  # mnrl: a judge-rejected product per pair
    refresh_every: int = 0  # steps between negatives mined with the current weights (0: never)
    refresh_depth: int = 50  # products retrieved per query at a refresh
    lexical_depth: int = 0  # BM25's top products per query joining its list before training (0: none)
    checkpoint_every: int = 50  # steps; not part of the run's name

    @property
    def distills(self) -> bool:
        return self.loss != "mnrl"

    def params(self) -> dict[str, Any]:
        fields = asdict(self)
        unused = (
            ("hard_negatives", "max_pairs")
            if self.distills
            else ("teacher", "list_size", "student_temperature", "teacher_temperature", "contrastive_weight")
            + ("refresh_every", "refresh_depth", "lexical_depth")
        )
        for name in ("checkpoint_every", *unused):
            fields.pop(name)
        return fields

    def check(self) -> None:
        problems = [
            f"{name} must be {rule}"
            for name, ok, rule in (
                ("--loss", self.loss in LOSSES, f"one of {', '.join(LOSSES)}"),
                ("--epochs", self.epochs >= 1, "at least 1"),
                ("--batch-size", self.batch_size >= 2, "at least 2 (in-batch negatives)"),
                ("--list-size", 2 <= self.list_size <= 64, "in [2, 64]"),
                ("--student-temperature", 0 < self.student_temperature <= 10, "in (0, 10]"),
                ("--teacher-temperature", 0 < self.teacher_temperature <= 100, "in (0, 100]"),
                ("--contrastive-weight", 0 <= self.contrastive_weight <= 10, "in [0, 10]"),
                ("--lr", 0 < self.learning_rate < 1, "in (0, 1)"),
                ("--max-length", 8 <= self.max_length <= 512, "in [8, 512]"),
                ("--max-pairs", self.max_pairs >= 0, "0 (all) or more"),
                ("--refresh-every", self.refresh_every >= 0, "0 (never) or more"),
                ("--refresh-depth", 1 <= self.refresh_depth <= 1000, "in [1, 1000]"),
                ("--lexical-depth", 0 <= self.lexical_depth <= 1000, "in [0, 1000]"),
                ("--checkpoint-every", self.checkpoint_every >= 1, "at least 1"),
            )
            if not ok
        ]
        for name, value in (("--refresh-every", self.refresh_every), ("--lexical-depth", self.lexical_depth)):
            if value and not self.distills:
                problems.append(f"{name} needs a distillation loss (listwise or margin_mse)")
        if problems:
            raise InvalidInput("; ".join(problems))


@dataclass(frozen=True)
class TrainResult:
    path: Path
    version: str
    steps: int  # the run's total
    done: int  # steps completed so far
    resumed_from: int
    manifest: dict[str, Any]

    @property
    def finished(self) -> bool:
        return self.done == self.steps


class _Rows:
    """The columns of some examples, shaped as NoDuplicatesBatchSampler reads a dataset."""

    def __init__(self, examples: list[Example], triplets: bool) -> None:
        self.examples = examples
        self.column_names = ["anchor", "positive"] + (["negative"] if triplets else [])

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, str]:
        e = self.examples[index]
        return dict(zip(self.column_names, (e.query, e.positive, e.negative), strict=False))


def schedule(examples: list[Example], batch_size: int, epochs: int, seed: int) -> list[list[int]]:
    """Example indices of every step: per epoch, no-duplicate batches of triplets (with a negative) and
    of pairs (without; a batch has one shape), in a seeded order."""
    import torch
    from sentence_transformers.base.sampler import NoDuplicatesBatchSampler
    from transformers.utils import logging as hf_logging

    groups = [
        [i for i, e in enumerate(examples) if e.negative],
        [i for i, e in enumerate(examples) if not e.negative],
    ]
    batches: list[list[int]] = []
    hf_logging.set_verbosity_error()  # "only N of the expected batches": expected with few queries
    for epoch in range(epochs):
        per_epoch: list[list[int]] = []
        for triplets, group in zip((True, False), groups, strict=True):
            if not group:
                continue
            rows = _Rows([examples[i] for i in group], triplets)
            sampler = NoDuplicatesBatchSampler(
                rows, batch_size=batch_size, drop_last=False, generator=torch.Generator(), seed=seed
            )
            sampler.set_epoch(epoch)
            per_epoch.extend([group[i] for i in batch] for batch in sampler)
        order = np.random.default_rng(seed + epoch).permutation(len(per_epoch))
        batches.extend(per_epoch[int(i)] for i in order)
    return batches


def _check_base(base: Path) -> Path:
    if not (base / "modules.json").is_file() or not (base / "config.json").is_file():
        raise ConfigError(
            f"{base} is not a sentence-transformers model directory (no modules.json/config.json)"
        )
    return base


@dataclass
class Inputs:
    """What a run trains on, beyond the store's examples: the teacher-scored lists (distillation), the
    teacher and catalog (refreshes), and this process's place in a distributed run."""

    data: TrainingData
    teacher: Teacher | None = None
    products: list[Product] | None = None
    world: World = field(default_factory=World)


def objective(inputs: Inputs, config: TrainConfig) -> Objective:
    data = inputs.data
    if config.distills:
        if not data.lists:
            raise InvalidInput(f"no judged candidate lists to distil (loss {config.loss}) in {data.stores}")
        found = Distillation(
            config.loss,
            data.lists,
            config.list_size,
            config.batch_size,
            config.epochs,
            config.seed,
            label_scale=config.student_temperature / config.teacher_temperature,
        )
        if not found.steps:
            raise InvalidInput(
                f"no query has {config.list_size} judged candidates (--list-size); "
                f"{len(data.lists)} lists, the longest {max(len(x.candidates) for x in data.lists)}"
            )
        return found
    examples = subsample(data.examples, config.max_pairs, config.seed)
    if not config.hard_negatives:
        examples = [Example(e.query, e.positive, "", e.source, e.product_id) for e in examples]
    return Contrastive(examples, schedule(examples, config.batch_size, config.epochs, config.seed))


def data_sha256(plan: Objective, inputs: Inputs) -> str:
    """Names what the run trains on: the examples (mnrl) or the lists and their targets (distillation)."""
    if isinstance(plan, Contrastive):
        return TrainingData(inputs.data.stores, plan.examples).sha256
    digest = hashlib.sha256(inputs.data.sha256.encode())
    for lst in inputs.data.lists:
        items = [[c.product_id, c.text, round(c.target, 4)] for c in lst.ranked()]
        digest.update(json.dumps([lst.query, items], ensure_ascii=False).encode())
    if inputs.teacher is not None:
        digest.update(inputs.teacher.version.encode())
    return digest.hexdigest()


def train(
    data: TrainingData | Inputs,
    config: TrainConfig,
    models_dir: Path,
    out: Path | None = None,
    base: Path | None = None,
    threads: int = 0,
    progress: bool = True,
    max_steps: int = 0,
    on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train (or continue) and publish; with max_steps > 0 stop after that many steps of the run,
    checkpointed but unpublished (the same call without it continues)."""
    inputs = data if isinstance(data, Inputs) else Inputs(data)
    world = inputs.world
    config.check()
    if config.refresh_every and (inputs.teacher is None or not inputs.products):
        raise InvalidInput("--refresh-every needs the teacher and --catalog (the products to retrieve from)")
    base = _check_base(base or minilm_path())
    base_id = f"{base.name}:{fingerprint(base)}"
    plan = objective(inputs, config)
    sha = data_sha256(plan, inputs)
    key = run_key(sha, config.params() | {"base": base_id})
    version = f"retriever-{key}"
    target = out or models_dir / "retriever" / version
    if (manifest := existing_model(target, key, MANIFEST)) is not None:
        log.info("%s already holds this run's model; nothing to train", target)
        steps = int(manifest.get("steps", 0))
        return TrainResult(target, version, steps, steps, steps, manifest)
    work = target.parent / f".{target.name}.work"
    run_file = work / RUN_FILE
    if world.main:
        target.parent.mkdir(parents=True, exist_ok=True)
        if work.exists() and (not run_file.is_file() or json.loads(run_file.read_text()).get("key") != key):
            log.info("discarding %s: a checkpoint of other data or parameters", work)
            shutil.rmtree(work)
        work.mkdir(parents=True, exist_ok=True)
        write_bytes(run_file, json.dumps({"key": key, "version": version}).encode())
    world.barrier()

    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.optimization import get_linear_schedule_with_warmup

    from services.core.encoder import resolve_device

    set_threads(threads)
    torch.manual_seed(config.seed + world.rank)  # dropout differs per process, as in any DDP run
    device = resolve_device("auto")
    model = SentenceTransformer(str(base), device=device, local_files_only=True)
    serving_length = model.max_seq_length
    model.max_seq_length = min(config.max_length, serving_length)
    loss_fn = world.wrap(plan.loss(model, LossOptions(config, world.distributed)), device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, math.ceil(config.warmup_fraction * plan.steps), plan.steps
    )
    parts = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    checkpoint = Checkpoint(work)
    start, state = checkpoint.restore(parts)
    losses: list[float] = list(state.get("losses", []))
    seconds = float(state.get("seconds", 0.0))
    refreshes: list[Refreshed] = []
    if start:
        log.info("resuming at step %d of %d from %s", start, plan.steps, checkpoint.path)
        if isinstance(plan, Distillation) and inputs.products:
            refreshes = replay(plan.lists, inputs.products, work, start - 1)
            plan.refreshed()
    stop = min(plan.steps, max_steps) if max_steps > 0 else plan.steps

    model.train()
    bar = Progress(plan.steps, start, progress and world.main)
    began = time.monotonic()
    completed, saved, updating = start, start, False
    rng = torch.get_rng_state()  # as it was when the last completed step ended

    def save() -> None:
        nonlocal saved
        if world.main:
            extra = {"losses": losses, "seconds": seconds + time.monotonic() - began}
            checkpoint.save(completed, parts, extra, rng=rng)
        saved = completed

    try:
        for step in range(start, stop):
            if config.refresh_every and step and step % config.refresh_every == 0:
                refreshes.append(_refresh(plan, inputs, config, model, step, work, bar, progress))
            batch = plan.step(step)
            columns = [world.part(column) for column in batch.columns]
            labels = None
            if batch.labels is not None:
                labels = torch.tensor(batch.labels[world.rank :: world.size], device=device)
            loss = loss_fn([_on(device, model.preprocess(c)) for c in columns], labels)
            value = float(loss.item())
            if not math.isfinite(value):
                raise InvalidInput(f"training diverged at step {step + 1} (loss {value}); lower --lr")
            loss.backward()
            updating = True  # parameters change in place: no checkpoint of a half-updated model
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(value)
            completed, rng, updating = step + 1, torch.get_rng_state(), False
            bar.step(value)
            if completed < plan.steps and (completed % config.checkpoint_every == 0 or completed == stop):
                save()
            if on_step is not None:
                on_step(completed)
    except KeyboardInterrupt:
        # Ctrl-C between updates keeps every finished step (a kill keeps the last periodic checkpoint).
        if not updating and saved < completed < plan.steps:
            save()
            log.info("interrupted; saved the checkpoint of step %d in %s", completed, work)
        raise
    finally:
        bar.close()
    seconds += time.monotonic() - began
    world.barrier()
    if stop < plan.steps:
        log.info("stopped at step %d of %d; checkpoint in %s", stop, plan.steps, work)
        return TrainResult(target, version, plan.steps, stop, start, {})

    model.eval()
    model.max_seq_length = serving_length
    per_epoch = np.array_split(np.array(losses), config.epochs)
    manifest = {
        "format": FORMAT,
        "version": version,
        "run_key": key,
        "base_model": {"id": base_id, "path": str(base)},
        "data": {
            "stores": [str(store) for store in inputs.data.stores],
            "sha256": sha,
            **inputs.data.counts(),
            "trained_on": _trained_on(plan),
        }
        | _labels(inputs.data),
        "objective": _objective(plan, inputs, refreshes),
        "parameters": config.params(),
        "seed": config.seed,
        "steps": plan.steps,
        "resumed_from_step": start,
        "loss": {
            "first": losses[0] if losses else None,
            "final": float(np.mean(losses[-20:])) if losses else None,
            "per_epoch": [float(part.mean()) for part in per_epoch if part.size],
        },
        "train_seconds": round(seconds, 1),
        "steps_per_second": round(plan.steps / seconds, 4) if seconds else None,
        "device": device,
        "processes": world.size,
        "threads": torch.get_num_threads(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "library_versions": {
            "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__,
        },
    }
    if world.main:
        tmp = target.parent / f".{target.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save(str(tmp), create_model_card=False)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        publish(tmp, target)
        shutil.rmtree(work, ignore_errors=True)
        log.info("model %s written to %s", version, target)
    world.barrier()
    return TrainResult(target, version, plan.steps, plan.steps, start, manifest)


@dataclass(frozen=True)
class LossOptions:
    """What the loss modules read from the run: the temperatures and whether batches span processes."""

    config: TrainConfig
    distributed: bool

    def __getattr__(self, name: str) -> Any:
        return getattr(self.config, name)


def _refresh(
    plan: Objective,
    inputs: Inputs,
    config: TrainConfig,
    model: Any,
    step: int,
    work: Path,
    bar: Progress,
    progress: bool,
) -> Refreshed:
    """One refresh: mined by the main process, read back by the others."""
    assert isinstance(plan, Distillation) and inputs.teacher is not None and inputs.products is not None
    bar.bar.set_description(f"training (refreshing negatives at step {step})")
    if inputs.world.main:
        done = refresh(
            model, plan.lists, inputs.products, inputs.teacher, config.refresh_depth, step, work, progress
        )
    inputs.world.barrier()
    if not inputs.world.main:
        done = replay(plan.lists, inputs.products, work, step)[-1]
    plan.refreshed()
    bar.bar.set_description(f"training (refreshed {step // config.refresh_every}x, +{done.added})")
    return done


def _trained_on(plan: Objective) -> dict[str, Any]:
    if isinstance(plan, Contrastive):
        return {
            "examples": len(plan.examples),
            "hard_negatives": sum(bool(e.negative) for e in plan.examples),
        }
    assert isinstance(plan, Distillation)
    return {"lists": plan.usable} | {f"lists_{k}": v for k, v in list_counts(plan.lists).items()}


def _objective(plan: Objective, inputs: Inputs, refreshes: list[Refreshed]) -> dict[str, Any]:
    found: dict[str, Any] = {"loss": plan.name}
    if inputs.teacher is not None and isinstance(plan, Distillation):
        found["teacher"] = inputs.teacher.manifest()
    if refreshes:
        found["refreshes"] = [
            {"step": r.step, "added": r.added, "seconds": round(r.seconds, 1)} for r in refreshes
        ]
    return found


def _on(device: str, features: dict[str, Any]) -> dict[str, Any]:
    import torch

    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}


def _labels(data: TrainingData) -> dict[str, Any]:
    if data.labels is None:
        return {}
    labels = data.labels
    return {
        "labels": {
            **labels.provenance(),
            "skipped_rows": {kind: len(lines) for kind, lines in labels.problems.items()},
        }
    }
