"""synth train retriever under torchrun: two CPU processes (gloo) on loopback train one model together,
both stages (distillation, then the contrastive stage)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from services.core.redis_server import free_port
from services.lab.retriever.train import MANIFEST
from tests.unit.lab.retriever.test_distillation import store

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_processes_train_one_model_with_ddp(tmp_path: Path) -> None:
    path = store(tmp_path / "store")
    out = tmp_path / "model"
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [
        str(torchrun), "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port",
        str(free_port()), "-m", "services.cli.main", "train", "retriever", "--store", str(path),
        "--teacher", "lexical", "--out", str(out), "--batch-size", "8", "--list-size", "3",
        "--max-length", "16", "--threads", "1", "--quiet",
    ]  # fmt: skip
    env = {"TAILSYNTH_STATE_DIR": str(tmp_path / "state"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines() == [str(out)]  # only the main process prints the path
    stage = json.loads((out / MANIFEST).read_text())  # the contrastive stage, after distillation
    assert stage["processes"] == 2 and stage["parameters"]["loss"] == "mnrl"
    assert stage["steps"] == 1  # 32 confident pairs (each query's own product), one batch of 64 at most
    manifest = json.loads((Path(stage["base_model"]["path"]) / MANIFEST).read_text())
    assert manifest["processes"] == 2
    assert manifest["steps"] == 4  # 32 queries, 8 a step: each process trained on 4 of every 8
    assert manifest["objective"]["teacher"]["version"] == "lexical:1"
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # work dir removed once
