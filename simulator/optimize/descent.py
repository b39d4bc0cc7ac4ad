"""The fast method: coordinate descent over continuous thresholds, each step an exact line search by sorting.

Tann's objective is a mean over samples of a per-sample cost ``c[k, s] = cost[k, s] + lam * wrong[k, s] /
error_full`` taken at the stage where the sample stops (minus a constant). Holding every threshold but ``T[k]``
fixed fixes the samples that reach stage k and, for each of them, what it costs if it stops at k (``c[k, s]``)
and if it goes on (``c`` at the stage where the later thresholds stop it). Sorting those samples by their stage-k
signal, the best ``T[k]`` over *all* real values is a minimum of a prefix sum: one ``O(n log n)`` step. Sweeping the
stages until no step improves gives a coordinate-wise optimum in ``O(sweeps * K * n log n)`` time, linear in K,
where the exhaustive grid is exponential in K and limited to its resolution.

Coordinate descent is a local method. It starts from the full ensemble, from the single model and from the best
combination of a coarse exhaustive grid (`SEED_POINTS` values per threshold, while that grid stays small), and
keeps the best result: it is never worse than that coarse grid. A chosen threshold is the shortest decimal strictly
above the signal of the first sample that goes on and at most that of the last sample that stops, so it prints
short and makes the same decisions on the training samples.
"""

from __future__ import annotations

import math

import numpy as np

from simulator.optimize.choose import choose_tann
from simulator.optimize.evaluate import OperatingPoint, check_lambda, evaluate, exit_stages, tann_objective
from simulator.optimize.grid import evaluate_grid, uniform_grid
from simulator.optimize.problem import ThresholdProblem, check_problem

SEED_POINTS = 3
#: Largest coarse grid (combinations) used as a starting point.
SEED_LIMIT = 200_000
MAX_SWEEPS = 100


def sample_costs(problem: ThresholdProblem, lam: float, cost: str = "latency") -> np.ndarray:
    """``c[k, s]``: the cost of sample s stopping after stage k plus its weighted error there."""
    return problem.cost(cost) + (check_lambda(lam) / problem.error_full) * (~problem.correct)


def shortest_between(low: float, high: float) -> float:
    """The shortest decimal ``t`` with ``low < t <= high`` (near their middle where several are as short)."""
    middle = low + (high - low) / 2.0
    for digits in range(0, 17):
        t = round(middle, digits)
        if low < t <= high:
            return float(t)
    return float(high)


def line_search(signal: np.ndarray, stop_cost: np.ndarray, go_cost: np.ndarray) -> tuple[float, float]:
    """The threshold minimising ``sum(stop_cost where signal >= t) + sum(go_cost elsewhere)``, and that sum.

    Ties go to the strictest threshold (the fewest samples stopping).
    """
    order = np.argsort(-signal, kind="stable")
    ranked = signal[order]
    n = ranked.size
    total = np.concatenate([[0.0], np.cumsum(stop_cost[order] - go_cost[order])]) + go_cost.sum()
    allowed = np.ones(n + 1, dtype=bool)
    allowed[1:n] = ranked[:-1] > ranked[1:]
    m = int(np.argmin(np.where(allowed, total, np.inf)))
    if m == 0:
        return math.inf, float(total[0])
    if m == n:
        return -math.inf, float(total[n])
    return shortest_between(float(ranked[m]), float(ranked[m - 1])), float(total[m])


def _step(problem: ThresholdProblem, costs: np.ndarray, thresholds: np.ndarray, k: int) -> tuple[float, float]:
    """The best ``T[k]`` with the other thresholds fixed, and the total cost of the samples reaching stage k."""
    reach = np.flatnonzero(exit_stages(problem.signal, thresholds) >= k)
    later = k + 1 + exit_stages(problem.signal[k + 1:, reach], thresholds[k + 1:])
    return line_search(problem.signal[k, reach], costs[k, reach], costs[later, reach])


def _total(problem: ThresholdProblem, costs: np.ndarray, thresholds: np.ndarray, k: int) -> float:
    """Total cost of the samples reaching stage k under `thresholds`."""
    stage = exit_stages(problem.signal, thresholds)
    reach = np.flatnonzero(stage >= k)
    return float(costs[stage[reach], reach].sum())


def descend(problem: ThresholdProblem, costs: np.ndarray, start) -> np.ndarray:
    """Coordinate descent from `start` until a sweep over the stages improves nothing."""
    thresholds = np.array(start, dtype=np.float64)
    for _ in range(MAX_SWEEPS):
        improved = False
        for k in range(problem.n_stages - 1):
            current = _total(problem, costs, thresholds, k)
            t, total = _step(problem, costs, thresholds, k)
            if total < current - 1e-9 * max(1.0, abs(current)):
                thresholds[k] = t
                improved = True
        if not improved:
            break
    return thresholds


def starting_points(problem: ThresholdProblem, lam: float, cost: str) -> list[np.ndarray]:
    """The full ensemble, the single model and (while it is small) the coarse grid's best combination."""
    d = problem.n_stages - 1
    starts = [np.full(d, np.inf), np.full(d, -np.inf)]
    if 0 < d and SEED_POINTS ** d <= SEED_LIMIT:
        coarse = evaluate_grid(problem, uniform_grid(problem.n_stages, SEED_POINTS))
        starts.append(np.array(coarse.grid.thresholds(choose_tann(coarse, problem, lam, cost))))
    return starts


def coordinate_descent(problem: ThresholdProblem, lam: float, cost: str = "latency") -> OperatingPoint:
    """Thresholds that (locally) minimise Tann's objective with weight `lam`, over continuous values."""
    check_problem(problem)
    costs = sample_costs(problem, lam, cost)
    points = [evaluate(problem, descend(problem, costs, s)) for s in starting_points(problem, lam, cost)]
    objective = [float(tann_objective(p.cost(cost), p.accuracy, problem, lam)) for p in points]
    best = min(range(len(points)), key=lambda i: (objective[i], -points[i].accuracy, i))
    return points[best]
