"""Pareto frontiers of (mean cost, accuracy): the operating points that no other point beats on both."""

from __future__ import annotations

import numpy as np

from simulator.errors import require
from simulator.io import write_text_atomic
from simulator.optimize.grid import GridResult
from simulator.optimize.problem import COST_UNITS


def pareto_indices(cost: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated points, by ascending cost (and ascending accuracy).

    A point is dominated when another costs no more and is no less accurate, and is strictly better in one of the
    two. Of several identical points, the lowest index is kept.
    """
    cost, accuracy = np.asarray(cost, dtype=float), np.asarray(accuracy, dtype=float)
    require(cost.ndim == 1 and cost.shape == accuracy.shape and cost.size >= 1,
            f"invalid frontier: {cost.shape} costs and {accuracy.shape} accuracies (need as many, at least one)")
    require(bool(np.all(np.isfinite(cost)) and np.all(np.isfinite(accuracy))),
            "invalid frontier: NaN or infinite costs or accuracies")
    order = np.lexsort((np.arange(cost.size), -accuracy, cost))
    best_before = np.maximum.accumulate(accuracy[order])
    keep = np.empty(order.size, dtype=bool)
    keep[0] = True
    keep[1:] = accuracy[order[1:]] > best_before[:-1]
    return order[keep]


def frontier(result: GridResult, cost: str = "latency") -> np.ndarray:
    """Indices of `result`'s (cost, accuracy) frontier."""
    return pareto_indices(result.cost(cost), result.accuracy)


def frontier_rows(result: GridResult, cost: str = "latency") -> list[dict]:
    """The frontier as table rows: thresholds, accuracy, latency, energy and mean stages of each point."""
    return [result.point(i).to_dict() for i in frontier(result, cost)]


def write_frontier_csv(path, result: GridResult, cost: str = "latency") -> None:
    """Write the (cost, accuracy) frontier as CSV, one row per point, atomically."""
    n_thresholds = result.grid.n_thresholds
    header = [f"T{k}" for k in range(n_thresholds)] + ["accuracy", "latency_ms", "energy_j", "mean_stages"]
    lines = [",".join(header)]
    for row in frontier_rows(result, cost):
        values = row["thresholds"] + [repr(row["accuracy"]), repr(row["latency_ms"]),
                                      "" if row["energy_j"] is None else repr(row["energy_j"]),
                                      repr(row["mean_stages"])]
        lines.append(",".join(values))
    write_text_atomic(path, "\n".join(lines) + "\n")


def cost_label(cost: str) -> str:
    """Axis label of a cost."""
    return {"latency": "mean latency per input", "energy": "energy per request"}[cost] + f" ({COST_UNITS[cost]})"
