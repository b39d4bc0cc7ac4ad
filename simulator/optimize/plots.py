"""Plots of operating points (matplotlib, imported only when a plot is drawn; files written atomically)."""

from __future__ import annotations

import textwrap

import numpy as np

from simulator.io import atomic_path
from simulator.optimize.grid import GridResult
from simulator.optimize.pareto import cost_label, frontier

#: Most grid combinations drawn as background dots (a seeded random subset beyond that).
MAX_DOTS = 20_000


def new_axes(title: str, cost: str = "latency"):
    """A figure and axes labelled accuracy against `cost`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    ax.set_xlabel(cost_label(cost))
    ax.set_ylabel("accuracy")
    ax.set_title(textwrap.fill(title, 80), fontsize=9)
    ax.grid(True, alpha=0.3)
    return fig, ax


def save_figure(fig, path) -> None:
    """Write `fig` as a PNG to `path` atomically and close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def plot_points(ax, points, cost: str, label: str, style: str = "o-", **kwargs) -> None:
    """Operating points as a line of markers (accuracy against cost)."""
    ax.plot([p.cost(cost) for p in points], [p.accuracy for p in points], style, label=label, **kwargs)


def plot_frontier(path, result: GridResult, cost: str, title: str, chosen=None, normal=()) -> None:
    """Every grid combination (dots), its Pareto frontier, the chosen point and normal ensembles, to `path`."""
    fig, ax = new_axes(title, cost)
    values = result.cost(cost)
    dots = np.arange(values.size)
    if dots.size > MAX_DOTS:
        dots = np.sort(np.random.default_rng(0).choice(dots, MAX_DOTS, replace=False))
    ax.plot(values[dots], result.accuracy[dots], ".", color="0.75", markersize=2,
            label=f"grid combinations ({dots.size} of {values.size} drawn)")
    front = frontier(result, cost)
    ax.step(values[front], result.accuracy[front], "-", where="post", color="C0", label="Pareto frontier")
    if normal:
        plot_points(ax, normal, cost, "normal ensembles of 1..K", "s--", color="C1")
    if chosen is not None:
        ax.plot([chosen.cost(cost)], [chosen.accuracy], "*", color="C3", markersize=12, label="chosen")
    ax.legend(fontsize=8, loc="lower right")
    save_figure(fig, path)
