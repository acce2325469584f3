"""Recall@k curves of `synth eval retrieval`: one report's modes, or several reports (base vs trained)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.core.errors import InvalidInput
from services.lab.plots import new_figure, save_figure

STYLES = {"query": "-", "fused": "--", "union": ":"}


def plot_curves(lines: dict[str, list[float]], path: Path, title: str) -> None:
    """One line per name: mean recall at k = 1..len(values), k on a log axis."""
    from matplotlib.ticker import FuncFormatter

    figure, axes = new_figure()
    groups = list(dict.fromkeys(name.rpartition(" ")[0] for name in lines))
    for name, values in lines.items():
        group, _, mode = name.rpartition(" ")
        # One colour per report (base, trained), one line style per mode.
        color = f"C{groups.index(group) % 10}" if len(groups) > 1 else None
        axes.plot(range(1, len(values) + 1), values, STYLES.get(mode, "-"), color=color, label=name)
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    union = any(name.endswith(" union") or name == "union" for name in lines)
    axes.set_xlabel("k (union: k per text)" if union else "k")
    axes.set_ylabel("mean recall@k")
    axes.set_ylim(0, 1)
    axes.grid(True, which="both", linewidth=0.3)
    axes.set_title(title)
    axes.legend(loc="upper left")
    save_figure(figure, path)


def read_report(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InvalidInput(f"cannot read retrieval report {path}: {error}") from None
    if not isinstance(data, dict) or "curves" not in data:
        raise InvalidInput(f"{path} is not a `synth eval retrieval` report (no recall curves)")
    return data


def report_label(data: dict[str, Any], fallback: str) -> str:
    model = data.get("model", {})
    return str(model.get("label") or fallback)


def plot_comparison(reports: Sequence[tuple[str, dict[str, Any]]], path: Path) -> None:
    """Every mode of every report in one figure, lines named `<report> <mode>`."""
    names = [
        name if [n for n, _ in reports].count(name) == 1 else f"{name}#{i + 1}"
        for i, (name, _) in enumerate(reports)
    ]
    lines = {
        f"{name} {mode}": values
        for name, (_, data) in zip(names, reports, strict=True)
        for mode, values in data["curves"].items()
    }
    datasets = sorted({str(data.get("dataset", {}).get("labels", "")) for _, data in reports})
    save_title = " vs ".join(names)
    plot_curves(lines, path, f"{', '.join(datasets)}: {save_title}")
