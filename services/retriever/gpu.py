"""Serving a FAISS index from the GPU: when (setting, index type, faiss build, visible GPUs) and how.

faiss-gpu (pip install '.[gpu]') replaces faiss-cpu and exposes StandardGpuResources; with faiss-cpu, or
with no GPU visible, faiss reports zero GPUs.
"""

from __future__ import annotations

import logging

import faiss

from services.core.errors import ConfigError
from services.retriever.index import ProductIndex

log = logging.getLogger(__name__)

GPU_KINDS = ("flat", "ivf_flat", "ivf_pq")
# Float32 PQ lookup tables must fit in 48 KiB of shared memory per block on the GPU.
GPU_SHARED_MEMORY_BYTES = 48 * 1024


def visible_gpus() -> int:
    """GPUs faiss can use: 0 with a CPU-only faiss build or with no GPU visible."""
    if not hasattr(faiss, "StandardGpuResources"):
        return 0
    return int(faiss.get_num_gpus())


def use_gpu(setting: str, kind: str, gpus: int, pq_nbits: int = 8) -> bool:
    """Whether to serve an index of `kind` from the GPU; `on` without a usable GPU is a ConfigError."""
    if setting == "off":
        return False
    if gpus < 1:
        if setting == "on":
            raise ConfigError(
                "TAILSYNTH_RETRIEVER_FAISS_GPU=on but faiss sees no GPU: install the GPU build with "
                "pip install '.[gpu]' (it replaces faiss-cpu) and check that a GPU is visible "
                "(CUDA_VISIBLE_DEVICES), or set TAILSYNTH_RETRIEVER_FAISS_GPU=auto or off"
            )
        return False
    if kind not in GPU_KINDS:
        log.info("%s index stays on the CPU: faiss has no GPU version of it (GPU kinds: %s)", kind, GPU_KINDS)
        return False
    if kind == "ivf_pq" and pq_nbits != 8:
        log.info(
            "ivf_pq index stays on the CPU: faiss's GPU IVF-PQ takes 8-bit codes, this one has %d", pq_nbits
        )
        return False
    return True


def needs_float16_lookup(pq_m: int, pq_nbits: int) -> bool:
    """IVF-PQ with many sub-quantizers overflows shared memory with float32 lookup tables."""
    return pq_m * (2**pq_nbits) * 4 > GPU_SHARED_MEMORY_BYTES


def move_to_gpu(index: ProductIndex, setting: str = "auto") -> bool:
    """Clone the index onto every visible GPU when use_gpu says so; True when it moved."""
    params = index.manifest.get("params", {})
    if not use_gpu(setting, index.kind, visible_gpus(), int(params.get("pq_nbits", 8))):
        return False
    options = faiss.GpuMultipleClonerOptions()
    if index.kind == "ivf_pq" and needs_float16_lookup(
        int(params.get("pq_m", 0)), int(params.get("pq_nbits", 8))
    ):
        options.useFloat16LookupTables = True  # type: ignore[attr-defined]  # missing from the stub
    index.index = faiss.index_cpu_to_all_gpus(index.index, co=options)
    index.on_gpu = True
    log.info("index %s (%s) moved to %d GPU(s)", index.version, index.kind, visible_gpus())
    return True
