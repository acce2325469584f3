from collections.abc import Iterator

import faiss
import pytest


@pytest.fixture(autouse=True)
def one_faiss_thread() -> Iterator[None]:
    """k-means on shared, busy cores is many times slower with OpenMP threads waiting on each other."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)
