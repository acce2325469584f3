"""Report figures written as PNG files (matplotlib's Agg backend: no display on servers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def new_figure(width: float = 7, height: float = 5) -> tuple[Any, Any]:
    """(figure, axes) of one plot, drawn off-screen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=120)


def save_figure(figure: Any, path: Path) -> None:
    """Lay out, write and release the figure."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
