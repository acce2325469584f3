"""Reading the training store's Parquet files: the columns a file has, with its name on any error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from services.core.errors import InvalidInput


def read_rows(path: Path, wanted: tuple[str, ...], required: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of the wanted columns a file has; a corrupt file or a missing required column is an error."""
    try:
        names = pq.read_schema(path).names
        missing = [c for c in required if c not in names]
        if missing:
            raise InvalidInput(f"{path}: no {', '.join(missing)} column; is it a training-store file?")
        rows: list[dict[str, Any]] = pq.read_table(
            path, columns=[c for c in wanted if c in names]
        ).to_pylist()
        return rows
    except (pa.ArrowException, OSError) as error:
        raise InvalidInput(
            f"{path}: not a readable Parquet file ({error}); move it out of the store"
        ) from None
