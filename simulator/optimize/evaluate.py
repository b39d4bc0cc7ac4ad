"""Exact evaluation of one threshold vector: where each sample stops, and the accuracy and costs that follow.

This is the straightforward, vectorised-over-samples evaluation: the reference that the grid kernel
(`simulator.optimize.grid`) and the fast method (`simulator.optimize.descent`) are checked against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulator.errors import require
from simulator.policies import is_number
from simulator.signals import is_threshold
from simulator.optimize.problem import COSTS, ThresholdProblem, check_problem


@dataclass(frozen=True, kw_only=True)
class OperatingPoint:
    """Thresholds and what they give on one set of samples.

    Attributes
    ----------
    thresholds : tuple of float
        ``K - 1`` per-stage thresholds (inf = never stop there, -inf = always).
    accuracy : float
    latency_ms : float
        Mean service time per request at batch 1 (ms).
    energy_j : float or None
        Mean energy attributed per request (J); None where the profile has none.
    mean_stages : float
    """

    thresholds: tuple
    accuracy: float
    latency_ms: float
    energy_j: float | None
    mean_stages: float

    def cost(self, name: str) -> float:
        """Mean ``latency`` (ms) or ``energy`` (J) per request."""
        require(name in COSTS, f"invalid cost = {name!r}: must be one of {', '.join(COSTS)}")
        require(name == "latency" or self.energy_j is not None, "cost energy: the profile has no energy figures")
        return self.latency_ms if name == "latency" else self.energy_j

    def to_dict(self) -> dict:
        return {"thresholds": [format_threshold(t) for t in self.thresholds], "accuracy": self.accuracy,
                "latency_ms": self.latency_ms, "energy_j": self.energy_j, "mean_stages": self.mean_stages}


def format_threshold(value: float) -> str:
    """The shortest text that parses back to exactly `value` (``inf``, ``-inf`` included)."""
    return repr(float(value))


def flat_numbers(values, what: str) -> np.ndarray:
    """`values` as float64 [n]; FlexsimError naming `what` unless they are a flat sequence of numbers."""
    require(isinstance(values, (tuple, list, np.ndarray)) and np.ndim(values) == 1,
            f"invalid {what} = {values!r:.60}: must be a flat sequence of numbers")
    require(all(is_number(v) for v in values), f"invalid {what} = {values!r:.60}: must be numbers")
    return np.array(values, dtype=np.float64)


def check_thresholds(thresholds, n_stages: int) -> np.ndarray:
    """Validate ``K - 1`` thresholds for `n_stages` stages; return them as float64."""
    out = flat_numbers(thresholds, "thresholds")
    require(out.size == n_stages - 1,
            f"invalid thresholds: {out.size} values given for {n_stages} stages (need {n_stages - 1})")
    require(not np.isnan(out).any(), "invalid thresholds: NaN is not a threshold")
    require(all(is_threshold(t) for t in out), "invalid thresholds: they lie in [0, 1] (inf: never stop there, -inf: "
            "always)")
    return out


def exit_stages(signal: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The stage (0-based) after which each sample stops: the first ``k`` with ``signal[k] >= T[k]``, else the last."""
    stop = np.empty(signal.shape, dtype=bool)
    np.greater_equal(signal[:-1], thresholds[:, None], out=stop[:-1])
    stop[-1] = True
    return np.argmax(stop, axis=0)


def evaluate(problem: ThresholdProblem, thresholds) -> OperatingPoint:
    """Accuracy, mean latency, mean energy and mean stages of `thresholds` on `problem`'s samples."""
    check_problem(problem)
    t = check_thresholds(thresholds, problem.n_stages)
    stage = exit_stages(problem.signal, t)
    columns = np.arange(problem.n_samples)
    energy = None if problem.energy_j is None else float(problem.energy_j[stage, columns].mean())
    return OperatingPoint(thresholds=tuple(float(x) for x in t),
                          accuracy=float(problem.correct[stage, columns].mean()),
                          latency_ms=float(problem.latency_ms[stage, columns].mean()),
                          energy_j=energy, mean_stages=float(stage.mean() + 1.0))


def exit_fractions(problem: ThresholdProblem, thresholds) -> np.ndarray:
    """Fraction of samples that stop after each stage."""
    check_problem(problem)
    stage = exit_stages(problem.signal, check_thresholds(thresholds, problem.n_stages))
    return np.bincount(stage, minlength=problem.n_stages) / problem.n_samples


def relative_error_increase(accuracy, problem: ThresholdProblem):
    """``(error - error_full) / error_full`` of accuracies on `problem` (error_full floored at one sample)."""
    check_problem(problem)
    return ((1.0 - np.asarray(accuracy)) - (1.0 - problem.accuracy_full)) / problem.error_full


def tann_objective(cost, accuracy, problem: ThresholdProblem, lam: float):
    """Tann's objective ``J = cost + lam * (error - error_full) / error_full`` (cost in ms or J)."""
    check_lambda(lam)
    return np.asarray(cost) + lam * relative_error_increase(accuracy, problem)


def check_lambda(lam: float) -> float:
    """Validate the weight of the relative error increase."""
    require(isinstance(lam, (int, float, np.integer, np.floating)) and not isinstance(lam, bool)
            and abs(lam) < 1e300 and math.isfinite(lam) and lam >= 0,
            f"invalid lambda = {lam!r:.40}: must be a finite number >= 0")
    return float(lam)
