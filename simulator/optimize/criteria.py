"""What "best thresholds" means: one small frozen object per criterion, each with the same two methods.

- ``on_grid(result, problem)``: the best combination of an evaluated exhaustive grid;
- ``fast(problem)``: the fast method's answer (coordinate descent for Tann's objective).

Criteria that are not searches (``needs_grid`` false: exit fractions, MSDNet budgets) give the same answer either
way. `cost` (``"latency"`` or ``"energy"``) is a keyword argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from simulator.errors import FlexsimError, require
from simulator.optimize.budget import budgeted_exits, check_fractions, fraction_thresholds
from simulator.optimize.choose import (check_budget, check_max_drop, choose_max_accuracy, choose_min_cost,
                                       choose_tann)
from simulator.optimize.descent import coordinate_descent
from simulator.optimize.evaluate import OperatingPoint, check_lambda, evaluate, flat_numbers
from simulator.optimize.grid import GridResult
from simulator.optimize.problem import COST_UNITS, COSTS, ThresholdProblem


@dataclass(frozen=True)
class _Search:
    """A criterion searched on the grid: ``choose(result, problem)`` gives the index of the best combination."""

    cost: str = field(default="latency", kw_only=True)
    needs_grid: ClassVar[bool] = True

    def __post_init__(self):
        require(self.cost in COSTS, f"invalid cost = {self.cost!r}: must be one of {', '.join(COSTS)}")
        self.check()

    def on_grid(self, result: GridResult, problem: ThresholdProblem) -> OperatingPoint:
        return result.point(self.choose(result, problem))

    def fast(self, problem: ThresholdProblem) -> OperatingPoint:
        raise FlexsimError(f"the descent method minimises Tann's objective (lambda) only; {self.describe()} needs "
                           "the grid method")


@dataclass(frozen=True)
class Tann(_Search):
    """Lowest ``cost + lam * (error - error_full) / error_full``; `lam` in the cost's unit (ms or J)."""

    lam: float

    def check(self) -> None:
        check_lambda(self.lam)

    def describe(self) -> str:
        return f"lowest {self.cost} + {self.lam:g} {COST_UNITS[self.cost]} x relative error increase"

    def choose(self, result: GridResult, problem: ThresholdProblem) -> int:
        return choose_tann(result, problem, self.lam, self.cost)

    def fast(self, problem: ThresholdProblem) -> OperatingPoint:
        return coordinate_descent(problem, self.lam, self.cost)


@dataclass(frozen=True)
class MinCost(_Search):
    """Lowest mean cost whose accuracy drop against the full ensemble is at most `max_drop`."""

    max_drop: float

    def check(self) -> None:
        check_max_drop(self.max_drop)

    def describe(self) -> str:
        return f"lowest mean {self.cost} with accuracy drop <= {self.max_drop:g}"

    def choose(self, result: GridResult, problem: ThresholdProblem) -> int:
        return choose_min_cost(result, problem, self.max_drop, self.cost)


@dataclass(frozen=True)
class MaxAccuracy(_Search):
    """Highest accuracy whose mean cost is at most `budget` (ms or J)."""

    budget: float

    def check(self) -> None:
        check_budget(self.budget, self.cost)

    def describe(self) -> str:
        return f"highest accuracy with mean {self.cost} <= {self.budget:g} {COST_UNITS[self.cost]}"

    def choose(self, result: GridResult, problem: ThresholdProblem) -> int:
        return choose_max_accuracy(result, self.budget, self.cost)


@dataclass(frozen=True)
class ExitFractions:
    """Thresholds that stop the given fraction of the samples at each stage (no search)."""

    fractions: tuple
    needs_grid: ClassVar[bool] = False

    def __post_init__(self):
        object.__setattr__(self, "fractions", tuple(flat_numbers(self.fractions, "exit fractions").tolist()))

    def describe(self) -> str:
        return f"exit fractions {','.join(f'{f:g}' for f in self.fractions)}"

    def on_grid(self, result: GridResult, problem: ThresholdProblem) -> OperatingPoint:
        return self.fast(problem)

    def fast(self, problem: ThresholdProblem) -> OperatingPoint:
        check_fractions(self.fractions, problem.n_stages)
        return evaluate(problem, fraction_thresholds(problem, self.fractions))


@dataclass(frozen=True)
class MsdnetBudget(MaxAccuracy):
    """MSDNet's budgeted exits: geometric exit fractions whose expected mean cost meets `budget` (no search)."""

    needs_grid: ClassVar[bool] = False

    def describe(self) -> str:
        return f"MSDNet budgeted exits, mean {self.cost} budget {self.budget:g} {COST_UNITS[self.cost]}"

    def on_grid(self, result: GridResult, problem: ThresholdProblem) -> OperatingPoint:
        return self.fast(problem)

    def fast(self, problem: ThresholdProblem) -> OperatingPoint:
        return budgeted_exits(problem, self.budget, self.cost)[0]

