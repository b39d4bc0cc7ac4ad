"""Choosing one combination of an evaluated grid: Tann's objective and the constrained forms.

- `choose_tann`: the lowest ``J = cost + lam * (error - error_full) / error_full``;
- `choose_min_cost`: the lowest mean cost (latency or energy) whose accuracy drop against the full ensemble is
  ``<= max_drop``;
- `choose_max_accuracy`: the highest accuracy whose mean cost is ``<= budget``.

Ties are broken the same way everywhere: higher accuracy, then lower cost, then the lower combination index.
Accuracies are compared with a tolerance of `ACCURACY_TOL` (they are sample counts over n; the tolerance only
absorbs rounding), and so are the objective's values (`TIE_RTOL`, relative) and a cost against a budget
(`BUDGET_RTOL`): a mean of n costs summed in another order differs in its last bits, and a budget equal to a
combination's cost must admit it.
"""

from __future__ import annotations

import numpy as np

from simulator.errors import require
from simulator.policies import is_finite_number, is_number
from simulator.optimize.evaluate import check_lambda, tann_objective
from simulator.optimize.grid import GridResult
from simulator.optimize.problem import COST_UNITS, ThresholdProblem

ACCURACY_TOL = 1e-12
#: Relative difference of two objective values below which they tie (then the higher accuracy wins).
TIE_RTOL = 1e-12
#: Relative excess of a mean cost over a budget that still meets it (rounding of the cost's sum).
BUDGET_RTOL = 1e-9


def within_budget(values, budget: float):
    """Whether mean costs `values` meet `budget` (up to `BUDGET_RTOL`, the rounding of their sums)."""
    return values <= budget * (1.0 + BUDGET_RTOL)


def _best(primary: np.ndarray, result: GridResult, cost: np.ndarray, feasible=None) -> int:
    """Index of the smallest `primary` (then highest accuracy, lowest cost, lowest index) among `feasible`."""
    values = primary if feasible is None else np.where(feasible, primary, np.inf)
    best = values.min()
    ties = np.flatnonzero(values <= best + TIE_RTOL * max(1.0, abs(best)))
    return int(ties[np.lexsort((ties, cost[ties], -result.accuracy[ties]))[0]])


def choose_tann(result: GridResult, problem: ThresholdProblem, lam: float, cost: str = "latency") -> int:
    """The combination that minimises Tann's objective with weight `lam` (in the cost's unit)."""
    values = result.cost(cost)
    return _best(tann_objective(values, result.accuracy, problem, check_lambda(lam)), result, values)


def check_max_drop(max_drop: float) -> float:
    """Validate an accuracy drop (a fraction in [0, 1])."""
    require(is_number(max_drop) and 0.0 <= max_drop <= 1.0,
            f"invalid max_drop = {max_drop!r:.40}: an accuracy drop must lie in [0, 1]")
    return float(max_drop)


def choose_min_cost(result: GridResult, problem: ThresholdProblem, max_drop: float, cost: str = "latency") -> int:
    """The cheapest combination whose accuracy is at least the full ensemble's minus `max_drop`."""
    floor = problem.accuracy_full - check_max_drop(max_drop) - ACCURACY_TOL
    values = result.cost(cost)
    feasible = result.accuracy >= floor
    require(feasible.any(), f"no combination of the grid loses at most {max_drop} accuracy (the grid lacks inf "
            "thresholds?)")
    return _best(values, result, values, feasible)


def check_budget(budget: float, cost: str) -> float:
    """Validate a cost budget (ms or J, > 0)."""
    require(is_finite_number(budget) and budget > 0,
            f"invalid budget = {budget!r:.40}: must be a finite number > 0 ({COST_UNITS.get(cost, '?')})")
    return float(budget)


def choose_max_accuracy(result: GridResult, budget: float, cost: str = "latency") -> int:
    """The most accurate combination whose mean cost is at most `budget` (ms or J)."""
    values = result.cost(cost)
    feasible = within_budget(values, check_budget(budget, cost))
    require(feasible.any(), f"no combination meets the {cost} budget {budget:.6g} {COST_UNITS[cost]}: the cheapest "
            f"costs {values.min():.6g} {COST_UNITS[cost]}")
    return _best(-result.accuracy, result, values, feasible)
