"""Fine-tune the retriever's encoder on the training store: `synth train retriever`.

MultipleNegativesRankingLoss over (query, positive[, hard negative]) batches: every other product in
the batch is a negative for a query, and a judge-rejected product for the same query, where the store
has one, is a harder one. Batches never repeat a query or a product text (sentence-transformers'
NoDuplicatesBatchSampler), since a query's second accepted product in its own batch would count as a
negative. The run is seeded: batch order (fixed for every step before the first), dropout, data
sample. Its name is a hash of the examples, the base model and the parameters; checkpoints go to a
work directory beside the output, so the same command after Ctrl-C or a kill continues from the last
one. The finished model (a sentence-transformers directory the Encoder loads, with
tailsynth-model.json) is renamed into place in one step.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from services.core.assets import fingerprint, minilm_path
from services.core.durable import publish, write_bytes
from services.core.errors import ConfigError, InvalidInput
from services.lab.retriever.data import Example, TrainingData
from services.lab.training import Checkpoint, Progress, run_key, set_threads, subsample

log = logging.getLogger(__name__)

MANIFEST = "tailsynth-model.json"
FORMAT = "tailsynth.retriever.model/1"
RUN_FILE = "run.json"


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 13
    epochs: int = 1
    batch_size: int = 64
    learning_rate: float = 2e-5
    warmup_fraction: float = 0.1
    max_length: int = 64  # tokens per text while training; the saved model keeps the base's limit
    max_pairs: int = 0  # 0: every example
    hard_negatives: bool = True
    checkpoint_every: int = 50  # steps; not part of the run's name

    def params(self) -> dict[str, Any]:
        fields = asdict(self)
        fields.pop("checkpoint_every")
        return fields

    def check(self) -> None:
        problems = [
            f"{name} must be {rule}"
            for name, ok, rule in (
                ("--epochs", self.epochs >= 1, "at least 1"),
                ("--batch-size", self.batch_size >= 2, "at least 2 (in-batch negatives)"),
                ("--lr", 0 < self.learning_rate < 1, "in (0, 1)"),
                ("--max-length", 8 <= self.max_length <= 512, "in [8, 512]"),
                ("--max-pairs", self.max_pairs >= 0, "0 (all) or more"),
                ("--checkpoint-every", self.checkpoint_every >= 1, "at least 1"),
            )
            if not ok
        ]
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


def _existing(target: Path, key: str) -> dict[str, Any] | None:
    """The manifest of a model this run already produced at target; an error if target is anything else."""
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        return None  # an empty directory is replaced by the model
    try:
        manifest: dict[str, Any] = json.loads((target / MANIFEST).read_text())
    except (OSError, ValueError):
        manifest = {}
    if manifest.get("run_key") != key:
        raise InvalidInput(
            f"{target} already exists and holds another model; remove it or pass another --out"
        )
    return manifest


def train(
    data: TrainingData,
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
    config.check()
    base = _check_base(base or minilm_path())
    base_id = f"{base.name}:{fingerprint(base)}"
    examples = subsample(data.examples, config.max_pairs, config.seed)
    if not config.hard_negatives:
        examples = [Example(e.query, e.positive, "", e.source) for e in examples]
    sample = TrainingData(data.store, examples)
    key = run_key(sample.sha256, config.params() | {"base": base_id})
    version = f"retriever-{key}"
    target = out or models_dir / "retriever" / version
    if (manifest := _existing(target, key)) is not None:
        log.info("%s already holds this run's model; nothing to train", target)
        steps = int(manifest.get("steps", 0))
        return TrainResult(target, version, steps, steps, steps, manifest)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = target.parent / f".{target.name}.work"
    run_file = work / RUN_FILE
    if work.exists() and (not run_file.is_file() or json.loads(run_file.read_text()).get("key") != key):
        log.info("discarding %s: a checkpoint of other data or parameters", work)
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    write_bytes(run_file, json.dumps({"key": key, "version": version}).encode())

    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers.optimization import get_linear_schedule_with_warmup

    from services.core.encoder import resolve_device

    set_threads(threads)
    torch.manual_seed(config.seed)
    device = resolve_device("auto")
    batches = schedule(examples, config.batch_size, config.epochs, config.seed)
    model = SentenceTransformer(str(base), device=device, local_files_only=True)
    serving_length = model.max_seq_length
    model.max_seq_length = min(config.max_length, serving_length)
    loss_fn = MultipleNegativesRankingLoss(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, math.ceil(config.warmup_fraction * len(batches)), len(batches)
    )
    parts = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    checkpoint = Checkpoint(work)
    start, state = checkpoint.restore(parts)
    losses: list[float] = list(state.get("losses", []))
    seconds = float(state.get("seconds", 0.0))
    if start:
        log.info("resuming at step %d of %d from %s", start, len(batches), checkpoint.path)
    stop = min(len(batches), max_steps) if max_steps > 0 else len(batches)

    model.train()
    bar = Progress(len(batches), start, progress)
    began = time.monotonic()
    completed, saved, updating = start, start, False
    rng = torch.get_rng_state()  # as it was when the last completed step ended

    def save() -> None:
        nonlocal saved
        extra = {"losses": losses, "seconds": seconds + time.monotonic() - began}
        checkpoint.save(completed, parts, extra, rng=rng)
        saved = completed

    try:
        for step in range(start, stop):
            chunk = [examples[i] for i in batches[step]]
            columns = [[e.query for e in chunk], [e.positive for e in chunk]]
            if chunk[0].negative:
                columns.append([e.negative for e in chunk])
            loss = loss_fn([_on(device, model.preprocess(c)) for c in columns], None)
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
            if completed < len(batches) and (completed % config.checkpoint_every == 0 or completed == stop):
                save()
            if on_step is not None:
                on_step(completed)
    except KeyboardInterrupt:
        # Ctrl-C between updates keeps every finished step (a kill keeps the last periodic checkpoint).
        if not updating and saved < completed < len(batches):
            save()
            log.info("interrupted; saved the checkpoint of step %d in %s", completed, work)
        raise
    finally:
        bar.close()
    seconds += time.monotonic() - began
    if stop < len(batches):
        log.info("stopped at step %d of %d; checkpoint in %s", stop, len(batches), work)
        return TrainResult(target, version, len(batches), stop, start, {})

    model.eval()
    model.max_seq_length = serving_length
    per_epoch = np.array_split(np.array(losses), config.epochs)
    manifest = {
        "format": FORMAT,
        "version": version,
        "run_key": key,
        "base_model": {"id": base_id, "path": str(base)},
        "data": {
            "store": str(data.store),
            "sha256": sample.sha256,
            **data.counts(),
            "trained_on": {
                "examples": len(examples),
                "hard_negatives": sum(bool(e.negative) for e in examples),
            },
        }
        | _labels(data),
        "parameters": config.params(),
        "seed": config.seed,
        "steps": len(batches),
        "resumed_from_step": start,
        "loss": {
            "first": losses[0] if losses else None,
            "final": float(np.mean(losses[-20:])) if losses else None,
            "per_epoch": [float(part.mean()) for part in per_epoch if part.size],
        },
        "train_seconds": round(seconds, 1),
        "steps_per_second": round(len(batches) / seconds, 4) if seconds else None,
        "pairs_per_second": round(sum(map(len, batches)) / seconds, 2) if seconds else None,
        "device": device,
        "threads": torch.get_num_threads(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "library_versions": {
            "torch": torch.__version__,
            "sentence_transformers": sentence_transformers.__version__,
        },
    }
    tmp = target.parent / f".{target.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp), create_model_card=False)
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    publish(tmp, target)
    shutil.rmtree(work, ignore_errors=True)
    log.info("model %s written to %s", version, target)
    return TrainResult(target, version, len(batches), len(batches), start, manifest)


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
