"""Training in several processes under torchrun (or `accelerate launch`): DDP, one slice of every batch
per process, gradients averaged. A plain run is a world of one and needs none of it.

The launcher names the world in its own environment variables, which torch.distributed reads itself
(`init_method="env://"`); gloo on CPU, NCCL on GPUs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1

    @property
    def main(self) -> bool:
        """The process that writes checkpoints, scores for the teacher and publishes the model."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def part(self, rows: Sequence[T]) -> list[T]:
        """This process's rows of a batch (every size-th, from its rank)."""
        return list(rows[self.rank :: self.size])

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def wrap(self, module: Any, device: str) -> Any:
        """The loss module (which holds the model) under DistributedDataParallel, averaging gradients."""
        if not self.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel

        # find_unused_parameters: the transformer's pooler runs, but mean pooling does not use it.
        if device.startswith("cuda"):
            import torch

            ids = [torch.cuda.current_device()]
            return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)
        return DistributedDataParallel(module, find_unused_parameters=True)

    def close(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.destroy_process_group()


def join(device: str) -> World:
    """The world this process belongs to: torchrun's, or a world of one."""
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_torchelastic_launched():
        return World()
    if not dist.is_initialized():
        gpu = device.startswith("cuda")
        if gpu:
            import torch

            torch.cuda.set_device(dist.get_node_local_rank())  # one GPU per process on each node
        dist.init_process_group(backend="nccl" if gpu else "gloo", init_method="env://")
    return World(dist.get_rank(), dist.get_world_size())
