"""One entry point for choosing thresholds on a problem: a criterion and a method (grid or descent)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from simulator.errors import require
from simulator.optimize.evaluate import OperatingPoint
from simulator.optimize.grid import GridResult, ThresholdGrid, evaluate_grid, make_grid
from simulator.optimize.problem import ThresholdProblem, check_problem

METHODS = ("grid", "descent")


@dataclass(frozen=True, eq=False)
class Search:
    """The chosen operating point, the evaluated grid it came from (grid method) and the time taken (s)."""

    point: OperatingPoint
    result: GridResult | None
    seconds: float


def _on_grid(problem: ThresholdProblem, criterion, grid: ThresholdGrid | None):
    result = evaluate_grid(problem, make_grid(problem) if grid is None else grid) if criterion.needs_grid else None
    return criterion.on_grid(result, problem), result


def _descent(problem: ThresholdProblem, criterion, grid: ThresholdGrid | None):
    return criterion.fast(problem), None


_METHODS = {"grid": _on_grid, "descent": _descent}


def search(problem: ThresholdProblem, criterion, method: str = "grid", grid: ThresholdGrid | None = None) -> Search:
    """Choose thresholds on `problem` by `criterion` (see `simulator.optimize.criteria`) with `method`."""
    require(method in METHODS, f"invalid method = {method!r}: must be one of {', '.join(METHODS)}")
    require(hasattr(criterion, "needs_grid") and not isinstance(criterion, type), f"invalid criterion "
            f"{criterion!r:.60}: one of simulator.optimize.criteria's, built (e.g. Tann(lam=10), "
            "MaxAccuracy(budget=...))")
    require(grid is None or isinstance(grid, ThresholdGrid), f"invalid grid {grid!r:.40}: a ThresholdGrid "
            "(simulator.optimize.make_grid) or None")
    check_problem(problem)
    t0 = time.perf_counter()
    point, result = _METHODS[method](problem, criterion, grid)
    return Search(point=point, result=result, seconds=time.perf_counter() - t0)
