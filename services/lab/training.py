"""What every fine-tuning command shares: run keys, seeded samples, CPU threads, checkpoints, progress.

A run is named by a hash of its data and hyper-parameters, so the same command on the same data finds
its own checkpoint. A checkpoint holds the model, optimizer, scheduler and torch RNG states and the
step reached; it is written to a temporary file and renamed into place, so a run killed mid-write
keeps the previous one. torch is imported inside the functions (shared code stays importable without
it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from services.core.durable import publish
from services.core.errors import InvalidInput

log = logging.getLogger(__name__)

T = TypeVar("T")
CHECKPOINT = "checkpoint.pt"


def run_key(data_sha256: str, params: Mapping[str, Any]) -> str:
    """12 hex digits naming a run: the same data and parameters give the same key on every machine."""
    blob = json.dumps({"data": data_sha256, **params}, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def existing_model(target: Path, key: str, manifest_name: str) -> dict[str, Any] | None:
    """The manifest of the model a run of this key already produced at target (None: nothing there, or an
    empty directory the model replaces); an error naming --out if target holds anything else."""
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        return None
    try:
        manifest: dict[str, Any] = json.loads((target / manifest_name).read_text())
    except (OSError, ValueError):
        manifest = {}
    if manifest.get("run_key") != key:
        raise InvalidInput(
            f"{target} already exists and holds another model; remove it or pass another --out"
        )
    return manifest


def subsample(items: Sequence[T], limit: int, seed: int) -> list[T]:
    """A seeded sample of `limit` items in their original order; all of them when limit <= 0."""
    if limit <= 0 or len(items) <= limit:
        return list(items)
    keep = np.sort(np.random.default_rng(seed).choice(len(items), size=limit, replace=False))
    return [items[int(i)] for i in keep]


def set_threads(threads: int) -> None:
    """torch's intra-op threads; 0 keeps torch's default. On shared cores fewer threads spin less."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)


class Checkpoint:
    """The training state at a step, in one file under a run's work directory."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.path = work / CHECKPOINT

    def save(
        self, step: int, parts: Mapping[str, Any], extra: Mapping[str, Any] | None = None, rng: Any = None
    ) -> None:
        """parts: name -> object with state_dict() (model, optimizer, scheduler); rng: torch's RNG state
        as it was when `step` ended (default: now)."""
        import torch

        self.work.mkdir(parents=True, exist_ok=True)
        state = {name: part.state_dict() for name, part in parts.items()}
        state |= {
            "torch_rng": torch.get_rng_state() if rng is None else rng,
            "step": step,
            "extra": dict(extra or {}),
        }
        tmp = self.work / f".{CHECKPOINT}.tmp"
        torch.save(state, tmp)
        publish(tmp, self.path)

    def restore(self, parts: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """Load the saved states into parts; return (step, extra), or (0, {}) without a checkpoint."""
        if not self.path.is_file():
            return 0, {}
        import torch

        state = torch.load(self.path, map_location="cpu", weights_only=False)  # states follow their parts
        for name, part in parts.items():
            part.load_state_dict(state[name])
        torch.set_rng_state(state["torch_rng"])
        return int(state["step"]), dict(state.get("extra", {}))


@dataclass
class Progress:
    """A progress bar on stderr (step/total, rate, ETA) with the loss smoothed over recent steps."""

    total: int
    initial: int = 0
    enabled: bool = True
    desc: str = "training"
    running: float = math.nan
    bar: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=self.total, initial=self.initial, disable=not self.enabled, unit="step", desc=self.desc
        )

    def step(self, loss: float) -> None:
        self.running = loss if math.isnan(self.running) else 0.95 * self.running + 0.05 * loss
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{self.running:.4f}")

    def close(self) -> None:
        self.bar.close()
