"""MSDNet-style budgeted exits: thresholds that make given fractions of the samples stop at each stage.

MSDNet (Huang et al., 2018, budgeted batch classification) assumes that a sample reaching a stage exits there with
a fixed probability ``q``, so that the fraction exiting at stage k is ``z * (1 - q) ** k * q`` (``z`` normalises the
K fractions to 1). ``q`` is chosen so that the expected cost ``sum_k f_k * C_k`` meets the budget (``C_k``: the mean
cost of stopping after stage k), and the thresholds are set on the training samples, stage by stage, so that the
most confident ``f_k`` of all samples among those still running stop at stage k.
"""

from __future__ import annotations

import math

import numpy as np

from simulator.errors import require
from simulator.policies import check_n_stages, is_number
from simulator.optimize.choose import check_budget, within_budget
from simulator.optimize.descent import shortest_between
from simulator.optimize.evaluate import OperatingPoint, evaluate
from simulator.optimize.problem import COST_UNITS, ThresholdProblem, check_problem


def check_fractions(fractions, n_stages: int) -> np.ndarray:
    """Validate K exit fractions (each >= 0, summing to 1)."""
    values = list(fractions)
    require(all(is_number(x) for x in values), f"invalid exit fractions {values!r:.60}: must be numbers")
    f = np.asarray(values, dtype=np.float64)
    require(f.size == n_stages, f"invalid exit fractions: {f.size} values given for {n_stages} stages "
            f"(need {n_stages})")
    require(bool(np.all(np.isfinite(f) & (f >= 0))) and abs(f.sum() - 1.0) <= 1e-6,
            f"invalid exit fractions {','.join(f'{x:g}' for x in f)}: each must be >= 0 and they must sum to 1")
    return f


def _stop_count_threshold(ranked: np.ndarray, m: int) -> float:
    """A threshold that stops the top `m` of the descending `ranked` signals (the nearest count ties allow)."""
    n = ranked.size
    cuts = np.concatenate([[0], np.flatnonzero(ranked[:-1] > ranked[1:]) + 1, [n]])
    m = int(cuts[np.argmin(np.abs(cuts - m))])
    if m == 0:
        return math.inf
    if m == n:
        return -math.inf
    return shortest_between(float(ranked[m]), float(ranked[m - 1]))


def fraction_thresholds(problem: ThresholdProblem, fractions) -> tuple:
    """Thresholds under which (as nearly as ties allow) a fraction ``fractions[k]`` of the samples stops at k."""
    check_problem(problem)
    f = check_fractions(fractions, problem.n_stages)
    running = np.arange(problem.n_samples)
    target = np.rint(np.cumsum(f) * problem.n_samples).astype(np.int64)
    thresholds = []
    for k in range(problem.n_stages - 1):
        signal = problem.signal[k, running]
        t = _stop_count_threshold(np.sort(signal)[::-1], int(target[k]) - (problem.n_samples - running.size))
        thresholds.append(t)
        running = running[signal < t]
    return tuple(thresholds)


def msdnet_fractions(q: float, n_stages: int) -> np.ndarray:
    """MSDNet's exit fractions ``z * (1 - q) ** k * q`` for a per-stage exit probability `q` in [0, 1]."""
    require(is_number(q) and 0.0 <= q <= 1.0, f"invalid exit probability q = {q!r:.40}: must be a number in [0, 1]")
    check_n_stages(n_stages)
    f = (1.0 - q) ** np.arange(n_stages)
    return f / f.sum()


def budget_exit_probability(problem: ThresholdProblem, budget: float, cost: str = "latency") -> float:
    """The per-stage exit probability ``q`` whose expected mean cost meets `budget` (0 when any budget above the
    uniform fractions' cost is met)."""
    stage_cost = problem.cost(cost).mean(axis=1)
    check_budget(budget, cost)
    require(within_budget(stage_cost[0], budget), f"invalid budget = {budget:.6g} {COST_UNITS[cost]}: below the first "
            f"stage's mean cost {stage_cost[0]:.6g} {COST_UNITS[cost]}")
    low, high = 0.0, 1.0                    # expected cost falls from low (uniform) to high (all at stage 0)
    if msdnet_fractions(low, problem.n_stages) @ stage_cost <= budget:
        return low
    for _ in range(100):                    # a budget within rounding of the first stage's cost ends at q = 1
        mid = (low + high) / 2.0
        low, high = (low, mid) if msdnet_fractions(mid, problem.n_stages) @ stage_cost <= budget else (mid, high)
    return high


def budgeted_exits(problem: ThresholdProblem, budget: float, cost: str = "latency") -> tuple[OperatingPoint, float]:
    """MSDNet's budgeted thresholds for a mean-cost `budget`, and the exit probability ``q`` they come from."""
    check_problem(problem)
    q = budget_exit_probability(problem, budget, cost)
    return evaluate(problem, fraction_thresholds(problem, msdnet_fractions(q, problem.n_stages))), q
