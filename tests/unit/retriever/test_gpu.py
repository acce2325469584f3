"""The GPU decision, tested on a CPU-only machine: nothing here claims to have run on a GPU."""

import logging

import numpy as np
import pytest

from services.core.catalog import Product
from services.core.errors import ConfigError
from services.retriever.gpu import move_to_gpu, needs_float16_lookup, use_gpu, visible_gpus
from services.retriever.index import IndexSpec, build_index


@pytest.mark.parametrize(
    ("setting", "kind", "gpus", "expected"),
    [
        ("off", "flat", 4, False),
        ("auto", "flat", 0, False),
        ("auto", "flat", 1, True),
        ("auto", "ivf_flat", 1, True),
        ("on", "ivf_pq", 2, True),
        ("auto", "hnsw", 1, False),
        ("on", "hnsw", 1, False),
    ],
)
def test_flat_and_ivf_go_to_a_visible_gpu_unless_switched_off(
    setting: str, kind: str, gpus: int, expected: bool
) -> None:
    assert use_gpu(setting, kind, gpus) is expected


def test_hnsw_stays_on_the_cpu_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="services.retriever.gpu"):
        assert use_gpu("on", "hnsw", 1) is False
    assert "hnsw index stays on the CPU" in caplog.text


def test_ivf_pq_with_codes_other_than_8_bits_stays_on_the_cpu() -> None:
    assert use_gpu("auto", "ivf_pq", 1, pq_nbits=6) is False


def test_gpu_on_without_a_gpu_is_a_config_error_that_says_how_to_fix_it() -> None:
    with pytest.raises(ConfigError, match=r"pip install '\.\[gpu\]' \(it replaces faiss-cpu\)"):
        use_gpu("on", "flat", 0)


def test_float16_lookup_tables_only_when_float32_ones_overflow_shared_memory() -> None:
    assert not needs_float16_lookup(48, 8)  # 384-d MiniLM with auto pq_m: 48 KiB exactly
    assert needs_float16_lookup(64, 8)
    assert not needs_float16_lookup(96, 4)


@pytest.mark.skipif(visible_gpus() > 0, reason="checks the CPU-only behaviour")
def test_without_a_gpu_auto_serves_from_the_cpu_and_on_refuses() -> None:
    index = build_index(
        [Product("P1", "one"), Product("P2", "two")],
        np.eye(2, 8, dtype=np.float32),
        IndexSpec("flat"),
        "e",
        "s",
    )
    assert move_to_gpu(index, "auto") is False and index.on_gpu is False
    with pytest.raises(ConfigError, match="faiss sees no GPU"):
        move_to_gpu(index, "on")
