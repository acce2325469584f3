"""Fine-tune the business judge: MiniLM (the bundled weights) with a one-logit head on graded labels.

The loss is binary cross-entropy against the grade in [0, 1], so sigmoid(logit) orders pairs by
expected relevance. The queries are split three ways, each query on one side: evaluation (held out,
`eval_fraction`), calibration (`calibration_fraction` of the rest, where a Platt fit maps logits to
P(relevant); never trained on, so the evaluation queries are used for nothing but the report) and
training, optionally with hard negatives the pipeline retrieved for the training queries
(services/lab/judge/negatives.py). Training is
seeded (weights of the new head, dropout, batch order) and checkpoints every N steps into a work
directory keyed by the data and the hyper-parameters, so an interrupted run continues with --resume.
The finished model is published as <models>/judge/<version>/ and CURRENT is flipped atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from services.core.assets import fingerprint, minilm_path
from services.core.durable import publish, write_bytes
from services.core.errors import InvalidInput
from services.judge.engines.cross_encoder import CURRENT, MANIFEST, predict_logits
from services.lab.judge.negatives import mine_negatives
from services.lab.labels import LabelledPair, LabelSet, split_by_query
from services.lab.ranking import finite_json, fit_platt, summary
from services.lab.training import Checkpoint, Progress, set_threads, subsample
from services.lab.training import run_key as training_run_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 13
    epochs: int = 2
    batch_size: int = 32
    max_length: int = 64
    learning_rate: float = 4e-5
    warmup_fraction: float = 0.1
    max_pairs: int = 0  # 0 = every training pair; else a seeded sample
    eval_fraction: float = 0.3
    calibration_fraction: float = 0.1  # of the queries left after the evaluation split
    negatives_per_query: int = 3  # mined from the stores, when given
    checkpoint_every: int = 50

    def run_key(self, data_sha256: str) -> str:
        """Names the work directory: the same data and hyper-parameters resume the same run."""
        fields = asdict(self)
        fields.pop("checkpoint_every")
        return training_run_key(data_sha256, fields)


@dataclass(frozen=True)
class TrainResult:
    version: str
    path: Path
    steps: int
    resumed_from: int
    manifest: dict[str, Any]


def batch_order(n: int, batch_size: int, epochs: int, seed: int) -> list[np.ndarray]:
    """Index batches for every step, fixed by the seed (a resumed run sees the same batches)."""
    batches: list[np.ndarray] = []
    for epoch in range(epochs):
        order = np.random.default_rng(seed + epoch).permutation(n)
        batches.extend(order[i : i + batch_size] for i in range(0, n, batch_size))
    return batches


def split_pairs(
    labels: LabelSet, config: TrainConfig
) -> tuple[list[LabelledPair], list[LabelledPair], list[LabelledPair]]:
    """(training, calibration, evaluation) pairs, split by query."""
    rest, held = split_by_query(labels.pairs, config.eval_fraction, config.seed)
    fit, calibration = split_by_query(rest, config.calibration_fraction, config.seed + 1)
    return fit, calibration, held


def train(
    labels: LabelSet,
    models_dir: Path,
    config: TrainConfig,
    resume: bool = False,
    progress: bool = True,
    threads: int = 0,
    on_step: Callable[[int], None] | None = None,
    negatives: Sequence[Path] = (),
    texts: dict[str, str] | None = None,
) -> TrainResult:
    """Train, publish and return the new version. `on_step(step)` runs after each step (and its
    checkpoint, if one was due). `negatives`: training stores to mine hard negatives from; `texts`:
    catalog text by product id (what the judge reads)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers import logging as hf_logging
    from transformers.optimization import get_linear_schedule_with_warmup

    train_pairs, calibration_pairs, eval_pairs = split_pairs(labels, config)
    train_pairs = subsample(train_pairs, config.max_pairs, config.seed)
    if not train_pairs:
        raise InvalidInput("no training pairs left after the query split; lower --eval-fraction")
    mined: list[LabelledPair] = []
    if negatives:
        mined = mine_negatives(negatives, train_pairs, texts or {}, config.negatives_per_query, config.seed)
        log.info("%d hard negatives mined from %s", len(mined), ", ".join(map(str, negatives)))
        train_pairs = train_pairs + mined
    root = models_dir / "judge"
    key = config.run_key(_data_sha256(labels, mined))
    work = root / ".work" / key
    checkpoint = Checkpoint(work)
    if not resume and work.exists():
        log.info("discarding the earlier checkpoint of this run (pass --resume to continue it)")
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)

    set_threads(threads)
    base = minilm_path()
    torch.manual_seed(config.seed)
    hf_logging.set_verbosity_error()  # "classifier weights newly initialized" is the point here
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForSequenceClassification.from_pretrained(str(base), num_labels=1)
    batches = batch_order(len(train_pairs), config.batch_size, config.epochs, config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, math.ceil(config.warmup_fraction * len(batches)), len(batches)
    )
    parts = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    start = 0
    if resume:
        start, _ = checkpoint.restore(parts)
        if start:
            log.info("resuming at step %d of %d from %s", start, len(batches), checkpoint.path)
        else:
            log.info("no checkpoint for this data and these settings; starting at step 0")

    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    bar = Progress(len(batches), start, progress)
    began = time.monotonic()
    for step in range(start, len(batches)):
        chunk = [train_pairs[int(i)] for i in batches[step]]
        encoded = tokenizer(
            [p.query for p in chunk],
            [p.text for p in chunk],
            truncation=True,
            max_length=config.max_length,
            padding=True,
            return_tensors="pt",
        )
        targets = torch.tensor([p.grade for p in chunk], dtype=torch.float32)
        loss = loss_fn(model(**encoded).logits.squeeze(-1), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        bar.step(loss.item())
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == len(batches):
            checkpoint.save(step + 1, parts)
        if on_step is not None:
            on_step(step + 1)
    bar.close()
    steps_run = len(batches) - start
    seconds_per_step = (time.monotonic() - began) / steps_run if steps_run else float("nan")

    model.eval()
    manifest: dict[str, Any] = {
        "base_model": f"{base.name}:{fingerprint(base)}",
        "data": {
            **labels.provenance(),
            "train_pairs": len(train_pairs),
            "mined_negatives": len(mined),
            "negatives_from": [str(store) for store in negatives],
            "calibration_pairs": len(calibration_pairs),
            "eval_pairs": len(eval_pairs),
            "eval_queries": len({p.query for p in eval_pairs}),
        },
        **{k: v for k, v in asdict(config).items() if k != "checkpoint_every"},
        "steps": len(batches),
        "resumed_from_step": start,
        "seconds_per_step": seconds_per_step,
    }
    slope, intercept = 1.0, 0.0
    if calibration_pairs:
        logits = predict_logits(
            model, tokenizer, [(p.query, p.text) for p in calibration_pairs], config.max_length, 128
        )
        slope, intercept = fit_platt(logits, np.array([p.relevant for p in calibration_pairs]))
    if eval_pairs:
        logits = predict_logits(
            model, tokenizer, [(p.query, p.text) for p in eval_pairs], config.max_length, 128
        )
        relevant = np.array([p.relevant for p in eval_pairs])
        # On calibrated scores, so the thresholds it names are the engine's (AUC and PR do not change).
        manifest["eval"] = summary(1 / (1 + np.exp(-(slope * logits + intercept))), relevant)
    fitted_on = "calibration split of the training queries" if calibration_pairs else "nothing (identity)"
    manifest["calibration"] = {"platt": [slope, intercept], "fitted_on": fitted_on}
    version = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{key[:8]}"
    manifest["version"] = version
    target = root / version
    tmp = root / f".{version}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    (tmp / MANIFEST).write_text(json.dumps(finite_json(manifest), indent=2) + "\n")
    publish(tmp, target)
    write_bytes(root / CURRENT, version.encode())
    shutil.rmtree(work, ignore_errors=True)
    log.info("published %s (CURRENT)", target)
    return TrainResult(version, target, len(batches), start, manifest)


def _data_sha256(labels: LabelSet, mined: list[LabelledPair]) -> str:
    if not mined:
        return labels.sha256
    digest = hashlib.sha256(labels.sha256.encode())
    for pair in mined:
        digest.update(json.dumps([pair.query, pair.product, pair.text]).encode())
    return digest.hexdigest()
