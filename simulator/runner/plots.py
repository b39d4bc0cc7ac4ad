"""Figures of the validation report: latency CDFs, real runs against the simulator's band over seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulator.io import atomic_path

PROBS = np.linspace(0.0, 1.0, 401)


def latency_cdfs(path: Path, panels: list) -> None:
    """One panel per scenario: each real run's latency CDF and the simulations' 5-95% band and median (the
    profile as measured, the verdict's prediction, and the bare profile without the host's other costs).

    ``panels``: list of ``(title, real_latencies_ms, sim_latencies_ms, bare_latencies_ms)`` with lists of arrays
    (the last may be empty).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    for ax, (title, reals, sims, bare) in zip(axes.flat, panels):
        _panel(ax, title, reals, sims, bare)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _band(ax, sims: list, color: str, label: str) -> None:
    curves = np.array([np.quantile(s, PROBS) for s in sims])
    low, mid, high = np.percentile(curves, [5, 50, 95], axis=0)
    ax.fill_betweenx(PROBS, low, high, color=color, alpha=0.25)
    ax.plot(mid, PROBS, color=color, lw=1.5, ls="--", label=f"{label} (median, 5-95%)")


def _panel(ax, title: str, reals: list, sims: list, bare: list) -> None:
    if bare:
        _band(ax, bare, "tab:gray", "simulated, bare")
    _band(ax, sims, "tab:blue", "simulated, the verdict's")
    for i, real in enumerate(reals):
        ax.plot(np.sort(real), np.arange(1, real.size + 1) / real.size, color="tab:red", lw=1.0,
                alpha=0.8, label="real runs" if i == 0 else None)
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("CDF")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
