"""Accuracy-against-cost curves: normal ensembles of 1..K members, and flexible ones over a sweep of lambda."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.errors import require
from simulator.optimize.criteria import Tann
from simulator.optimize.evaluate import OperatingPoint, evaluate, flat_numbers
from simulator.optimize.grid import ThresholdGrid
from simulator.optimize.problem import ThresholdProblem, check_problem
from simulator.optimize.search import search


def static_thresholds(n_stages: int, k: int) -> tuple:
    """Thresholds that run exactly the first `k` stages: inf before stage k-1, -inf from there on."""
    integers = all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in (n_stages, k))
    require(integers and 1 <= k <= n_stages, f"invalid k = {k!r:.40} for {n_stages!r:.40} stages: need integers, "
            "1 <= k <= stages")
    return tuple([np.inf] * (k - 1) + [-np.inf] * (n_stages - k))


def normal_ensembles(problem: ThresholdProblem) -> list[OperatingPoint]:
    """The normal ensembles of the first 1, 2, ..., K members (every member of each run)."""
    check_problem(problem)
    return [evaluate(problem, static_thresholds(problem.n_stages, k)) for k in range(1, problem.n_stages + 1)]


@dataclass(frozen=True)
class SweepPoint:
    """Thresholds chosen on the training samples for one lambda, and what they give there and held out."""

    lam: float
    train: OperatingPoint
    test: OperatingPoint


def lambda_sweep(train: ThresholdProblem, test: ThresholdProblem, lams, cost: str = "latency",
                 method: str = "grid", grid: ThresholdGrid | None = None) -> list[SweepPoint]:
    """For each lambda: choose on `train`, evaluate on `test`. The grid is evaluated once for all lambdas.

    `lams` is a sequence of numbers (a list, tuple, range or 1-D array), not one number or a string.
    """
    check_problem(train)
    check_problem(test)
    require(isinstance(lams, (tuple, list, range, np.ndarray)),
            f"invalid lambdas = {lams!r:.60}: must be a sequence of numbers (a list, tuple, range or array)")
    lams = flat_numbers(list(lams), "lambdas")
    out = []
    result = None
    for lam in lams:
        criterion = Tann(float(lam), cost=cost)
        if method == "grid" and result is not None:
            point = criterion.on_grid(result, train)
        else:
            found = search(train, criterion, method, grid)
            point, result = found.point, found.result
        out.append(SweepPoint(lam=float(lam), train=point, test=evaluate(test, point.thresholds)))
    return out
