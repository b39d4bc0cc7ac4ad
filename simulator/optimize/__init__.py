"""Choosing the thresholds of a flexible ensemble or cascade on training logits, and checking them held out.

The problem (`ThresholdProblem`): per stage and sample, the confidence signal, whether the prediction is right
and the cumulative cost (latency at batch 1 from a device profile, energy) of stopping there. Criteria
(`Tann`, `MinCost`, `MaxAccuracy`, `ExitFractions`, `MsdnetBudget`) say what "best" means; `search` finds it with
the exhaustive grid (evaluated with cumulative counts, `evaluate_grid`) or the fast method (coordinate descent,
`coordinate_descent`). See ``docs/optimizer.md``.

Example
-------
>>> from simulator.config import RunConfig
>>> from simulator.optimize import Tann, evaluate, search, train_and_test
>>> train, test = train_and_test(RunConfig(logits="fmnist"))
>>> chosen = search(train, Tann(lam=10.0)).point
>>> held_out = evaluate(test, chosen.thresholds)
"""

from simulator.optimize.budget import budgeted_exits, fraction_thresholds, msdnet_fractions
from simulator.optimize.build import build_problem, train_and_test, training_split
from simulator.optimize.criteria import ExitFractions, MaxAccuracy, MinCost, MsdnetBudget, Tann
from simulator.optimize.curves import lambda_sweep, normal_ensembles, static_thresholds
from simulator.optimize.descent import coordinate_descent
from simulator.optimize.evaluate import (OperatingPoint, evaluate, exit_fractions, relative_error_increase,
                                         tann_objective)
from simulator.optimize.export import run_command, thresholds_text, toml_snippet
from simulator.optimize.grid import (GridResult, ThresholdGrid, evaluate_grid, evaluate_grid_naive, make_grid,
                                     quantile_grid, uniform_grid, value_grid)
from simulator.optimize.pareto import frontier, pareto_indices
from simulator.optimize.problem import ThresholdProblem, cumulative_problem
from simulator.optimize.search import METHODS, Search, search

__all__ = ["ThresholdProblem", "cumulative_problem", "build_problem", "train_and_test", "training_split",
           "Tann", "MinCost", "MaxAccuracy", "ExitFractions", "MsdnetBudget", "search", "Search", "METHODS",
           "OperatingPoint", "evaluate", "exit_fractions", "relative_error_increase", "tann_objective",
           "ThresholdGrid", "GridResult", "evaluate_grid", "evaluate_grid_naive", "make_grid", "uniform_grid",
           "quantile_grid", "value_grid", "coordinate_descent", "budgeted_exits", "fraction_thresholds",
           "msdnet_fractions", "frontier", "pareto_indices", "normal_ensembles", "lambda_sweep",
           "static_thresholds", "run_command", "thresholds_text", "toml_snippet"]
