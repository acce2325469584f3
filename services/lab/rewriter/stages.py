"""One TRL trainer per stage (SFTTrainer, DPOTrainer, GRPOTrainer), and the callbacks every stage shares:
a progress bar with the loss and reward, and a clean stop (Ctrl-C or a step limit) that saves a checkpoint.
TRL, transformers and torch are imported inside the functions."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.core.errors import InvalidInput
from services.lab.training import Progress

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")


def resolve_precision(precision: str, device: str) -> str:
    """fp32 or bf16 (mixed precision: fp32 weights, bf16 matrix products). auto: bf16 where the hardware
    computes it (a GPU that supports it, a CPU with AVX512-BF16 or AMX), fp32 elsewhere."""
    import torch

    if precision == "auto":
        native = torch.cuda.is_bf16_supported() if device == "cuda" else device == "cpu" and cpu_has_bf16()
        return "bf16" if native else "fp32"
    if precision == "bf16" and device == "cpu" and not cpu_has_bf16():
        raise InvalidInput("--precision bf16: this CPU has no bf16 instructions (AVX512-BF16 or AMX)")
    return precision


def cpu_has_bf16() -> bool:
    import torch

    # Without these instructions bf16 runs emulated, slower than fp32. The probes are private to torch:
    # a version without them means fp32, not a crash.
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


@dataclass(frozen=True)
class StageArgs:
    """What the stage's TRL config needs beyond the shared training arguments."""

    stage: str
    max_length: int
    beta: float
    num_generations: int
    max_new_tokens: int
    temperature: float
    top_p: float


def callbacks(progress: bool, stop_after: int, desc: str) -> tuple[Any, Any]:
    """(progress bar, stopper) as transformers TrainerCallbacks."""
    from transformers import TrainerCallback

    class ProgressBar(TrainerCallback):
        bar: Progress | None = None
        shown: dict[str, float]

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.bar = Progress(state.max_steps, state.global_step, progress, desc)
            self.shown = {}

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.bar.update(1)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if self.bar is None or not logs:
                return
            for name in ("loss", "reward", "rewards/chosen", "rewards/margins", "intent_pass"):
                if name in logs:
                    self.shown[name.split("/")[-1]] = float(logs[name])
            self.bar.bar.set_postfix({k: f"{v:.4f}" for k, v in self.shown.items()})

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.close()

    class Stopper(TrainerCallback):
        """Ends training after the current step with a checkpoint: on Ctrl-C, or at step stop_after."""

        interrupted = False

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.interrupted or (stop_after and state.global_step >= stop_after):
                if state.global_step < state.max_steps:
                    control.should_save = True
                control.should_training_stop = True

    return ProgressBar(), Stopper()


@contextmanager
def interrupts_stop(stopper: Any) -> Iterator[None]:
    """The first Ctrl-C lets the running step finish and checkpoint; a second one stops at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum: int, frame: Any) -> None:
        stopper.interrupted = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def training_arguments(
    work: Path,
    seed: int,
    batch_size: int,
    learning_rate: float,
    epochs: float,
    steps: int,
    checkpoint_every: int,
    device: str,
    precision: str,
) -> dict[str, Any]:
    return {
        "output_dir": str(work),
        "seed": seed,
        "data_seed": seed,
        "per_device_train_batch_size": batch_size,
        "gradient_accumulation_steps": 1,
        "learning_rate": learning_rate,
        "num_train_epochs": epochs,
        "max_steps": steps if steps > 0 else -1,
        "lr_scheduler_type": "linear",
        "warmup_steps": 0.1,  # a fraction of the steps
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": checkpoint_every,
        "save_total_limit": 1,
        "report_to": "none",
        "use_cpu": device != "cuda",
        "bf16": precision == "bf16",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
    }


def build_trainer(
    args: StageArgs,
    common: dict[str, Any],
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    reward: Any,
    extra_callbacks: list[Any],
) -> Any:
    trainer = _trainer(args, common, model, tokenizer, rows, reward, extra_callbacks)
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # it prints every log line on stdout, our bar shows them
    return trainer


def _trainer(
    args: StageArgs,
    common: dict[str, Any],
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    reward: Any,
    extra_callbacks: list[Any],
) -> Any:
    from datasets import Dataset

    dataset = Dataset.from_list(rows)
    if args.stage == "sft":
        from trl import SFTConfig, SFTTrainer

        sft = SFTConfig(**common, max_length=args.max_length, completion_only_loss=True, packing=False)
        return SFTTrainer(
            model=model,
            args=sft,
            train_dataset=dataset.remove_columns(["query"]),
            processing_class=tokenizer,
            callbacks=extra_callbacks,
        )
    if args.stage == "dpo":
        from trl import DPOConfig, DPOTrainer

        dpo = DPOConfig(**common, max_length=args.max_length, beta=args.beta)
        return DPOTrainer(
            model=model,
            args=dpo,
            train_dataset=dataset.remove_columns(["query", "margin"]),
            processing_class=tokenizer,
            callbacks=extra_callbacks,
        )
    from trl import GRPOConfig, GRPOTrainer

    tokenizer.padding_side = "left"  # GRPOTrainer generates from left-padded prompts
    grpo = GRPOConfig(
        **common,
        num_generations=args.num_generations,
        generation_batch_size=common["per_device_train_batch_size"],
        max_completion_length=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        top_k=0,
        beta=args.beta,
        log_completions=False,
    )
    return GRPOTrainer(
        model=model,
        reward_funcs=[reward],
        args=grpo,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=extra_callbacks,
    )


def log_summary(history: list[dict[str, Any]]) -> dict[str, Any]:
    """First and final (mean of the last 10 steps) of each logged curve, and the per-step loss."""
    steps = [h for h in history if "loss" in h]
    out: dict[str, Any] = {"loss_per_step": [round(float(h["loss"]), 5) for h in steps]}
    names = sorted({k for h in steps for k, v in h.items() if isinstance(v, int | float)} - {"step", "epoch"})
    for name in names:
        values = [float(h[name]) for h in steps if name in h]
        if values:
            tail = values[-10:]
            out[name] = {"first": round(values[0], 5), "final": round(sum(tail) / len(tail), 5)}
    return out


def close_reward(trainer: Any, reward: Any) -> None:
    """The reward's gRPC channels live on the trainer's event loop: close them there."""
    loop = getattr(trainer, "async_loop", None)
    if reward is None or loop is None:
        return
    import asyncio

    try:
        asyncio.run_coroutine_threadsafe(reward.close(), loop).result(timeout=10)
    except Exception:  # closing is best effort; the process may be ending anyway
        log.debug("closing the reward's channels failed", exc_info=True)
