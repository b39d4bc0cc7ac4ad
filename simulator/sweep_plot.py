"""The figure of a sweep (`simulator.sweep`): its figures of merit against one varied field, or as heatmaps over two."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulator.errors import require
from simulator.io import atomic_path
from simulator.sweep import SweepResult, value_text

#: Panels: (summary field, title, scale); energy only where the profile has energy figures.
PANELS = (("accuracy", "accuracy", 1.0), ("latency_p99_ms", "p99 latency (ms)", 1.0),
          ("deadline_miss_rate", "deadline misses (%)", 100.0), ("energy_per_request_j", "energy (J/request)", 1.0))


def can_plot(result: SweepResult) -> bool:
    """Whether `result` has a figure: one or two fields varied."""
    return len(result.vary) in (1, 2)


def plot_sweep(result: SweepResult, path: str | Path) -> None:
    """Write `result`'s figure to `path` (PNG): per panel, the mean over seeds of a summary figure, against the values
    of the one varied field (each seed's value as a dot where there are several), or as a heatmap over two (the first
    field down, the second across)."""
    require(can_plot(result), f"plot_sweep: a figure needs one or two varied fields, not {len(result.vary)}")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    means = result.means()
    panels = [p for p in PANELS if all(row[p[0]] is not None for row in means) and not _never(result, means, p[0])]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.4), squeeze=False)
    for ax, (name, title, scale) in zip(axes.flat, panels):
        if len(result.vary) == 1:
            _line(ax, result, name, scale)
        else:
            _heatmap(ax, result, means, name, scale)
        ax.set_title(title, fontsize=9)
    fixed = {"policy": f"policy {'+'.join(result.base.policy)}", "profile": f"on {','.join(result.base.profile)}",
             "arrivals": f"arrivals {result.base.arrivals}"}
    fig.suptitle(", ".join(["flexsim sweep"] + [text for field, text in fixed.items() if field not in result.vary]
                           + [f"{result.seeds} seed(s)"]), fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _labels(values) -> list[str]:
    return [value_text(v) for v in values]


def _line(ax, result: SweepResult, name: str, scale: float) -> None:
    (field,) = result.vary
    values = [getattr(c, field) for c in result.configs[::result.seeds]]
    x = np.arange(len(values))
    runs = np.array([s.to_dict()[name] for s in result.summaries], dtype=float).reshape(len(values), result.seeds)
    ax.plot(x, runs.mean(axis=1) * scale, marker="o", color="tab:blue")
    if result.seeds > 1:
        ax.plot(np.repeat(x, result.seeds), runs.ravel() * scale, ".", color="tab:blue", alpha=0.3)
    if _logarithmic(name, runs):
        ax.set_yscale("log")
    ax.set_xticks(x, _labels(values), rotation=30 if len(values) > 5 else 0, fontsize=8)
    ax.set_xlabel(field)
    ax.grid(alpha=0.3)


def _heatmap(ax, result: SweepResult, means: list, name: str, scale: float) -> None:
    first, second = result.vary
    rows, cols = len(result.vary[first]), len(result.vary[second])
    grid = np.array([row[name] for row in means], dtype=float).reshape(rows, cols) * scale
    log = _logarithmic(name, grid)
    image = ax.imshow(grid, aspect="auto", cmap="viridis", norm="log" if log else None)
    shade = np.log(grid) if log else grid
    low, high = np.nanmin(shade), np.nanmax(shade)
    for (i, j), value in np.ndenumerate(grid):
        light = high > low and (shade[i, j] - low) / (high - low) > 0.6    # viridis turns yellow: dark text
        ax.text(j, i, f"{value:.4g}", ha="center", va="center", fontsize=7, color="black" if light else "white")
    ax.set_yticks(range(rows), _labels(row[first] for row in means[::cols]), fontsize=8)
    ax.set_xticks(range(cols), _labels(row[second] for row in means[:cols]), fontsize=8)
    ax.set_ylabel(first)
    ax.set_xlabel(second)
    ax.figure.colorbar(image, ax=ax, fraction=0.046)


def _never(result: SweepResult, means: list, name: str) -> bool:
    """Whether panel `name` says nothing: deadline misses where no run has a deadline (none set, none varied, none
    missed, as a trace's own deadlines could be)."""
    return name == "deadline_miss_rate" and result.base.deadline_ms == float("inf") and \
        "deadline_ms" not in result.vary and all(row[name] == 0 for row in means)


#: A latency panel whose values span more than this ratio is drawn on a logarithmic scale (a saturated queue's p99
#: is hundreds of times the others', which a linear scale would flatten).
LOG_RATIO = 20.0


def _logarithmic(name: str, values: np.ndarray) -> bool:
    """Whether panel `name` with `values` is drawn on a logarithmic scale: a latency spanning over `LOG_RATIO`."""
    finite = values[np.isfinite(values)]
    return name.startswith("latency") and finite.size > 0 and finite.min() > 0 and \
        finite.max() > LOG_RATIO * finite.min()
