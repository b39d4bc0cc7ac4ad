"""The threshold-choice problem: what each sample would cost and whether it would be right, after each stage.

A threshold vector ``T`` (``K - 1`` entries) stops a sample after the first stage ``k`` with ``signal[k] >= T[k]``
(the last stage always stops), exactly as `simulator.policies` does. Everything the optimiser needs to know about a
sample is therefore, per stage ``k``: its confidence signal, whether the prediction there is correct, and what the
request would have cost in total had it stopped there (cumulative latency and energy at batch 1).

Costs follow the simulator (`simulator.run.mean_service_s` and the engines' ``_stage_cost``): a stage costs the
mean of its profiled batch-1 latency times the input's ``cost_scale``, plus the decision overhead; its energy is the
profiled batch-1 energy times ``cost_scale`` plus idle power over the decision overhead. Energy is the energy
attributed to the request (no idle time between requests: that depends on the load, not on the thresholds).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.errors import require


@dataclass(frozen=True, kw_only=True, eq=False)
class ThresholdProblem:
    """Per-sample, per-stage signals, correctness and cumulative costs of one ensemble on one device.

    Attributes
    ----------
    signal : ndarray of float64, shape (n_stages, n_samples)
        Confidence after stage k (higher = more confident).
    correct : ndarray of bool, shape (n_stages, n_samples)
        Whether the prediction after stage k is right.
    latency_ms : ndarray of float64, shape (n_stages, n_samples)
        Mean service time (ms) of the request if it stops after stage k: stages 0..k, decision overheads included.
    energy_j : ndarray of float64, shape (n_stages, n_samples), or None
        Energy (J) attributed to the request if it stops after stage k; None where the profile has none.
    description : str
        Where the problem came from (cache, members, combiner, signal, profile), for reports.
    """

    signal: np.ndarray
    correct: np.ndarray
    latency_ms: np.ndarray
    energy_j: np.ndarray | None = None
    description: str = "<memory>"

    def __post_init__(self):
        _validate(self)

    @property
    def n_stages(self) -> int:
        return self.signal.shape[0]

    @property
    def n_samples(self) -> int:
        return self.signal.shape[1]

    @property
    def accuracy_full(self) -> float:
        """Accuracy of the full ensemble (every stage run)."""
        return float(self.correct[-1].mean())

    @property
    def error_full(self) -> float:
        """Error of the full ensemble, floored at one sample (so that relative error increases stay finite)."""
        return max(1.0 - self.accuracy_full, 1.0 / self.n_samples)

    def cost(self, name: str) -> np.ndarray:
        """Cumulative cost per stage and sample: ``"latency"`` (ms) or ``"energy"`` (J)."""
        require(name in COSTS, f"invalid cost = {name!r}: must be one of {', '.join(COSTS)}")
        if name == "energy":
            require(self.energy_j is not None, f"cost energy: the problem ({self.description}) has no energy "
                    "figures (the profile measured none)")
            return self.energy_j
        return self.latency_ms


COSTS = ("latency", "energy")
COST_UNITS = {"latency": "ms", "energy": "J"}


def _validate(problem: ThresholdProblem) -> None:
    signal = problem.signal
    require(isinstance(signal, np.ndarray) and signal.ndim == 2 and min(signal.shape) > 0,
            f"threshold problem: signal must be a non-empty 2-D array [stage, sample], got shape {np.shape(signal)}")
    require(np.issubdtype(signal.dtype, np.floating), f"threshold problem: signal must be floats, got {signal.dtype}")
    require(not np.isnan(signal).any(), "threshold problem: signal has NaN entries")
    for name in ("correct", "latency_ms", "energy_j"):
        values = getattr(problem, name)
        require(values is None and name == "energy_j" or np.shape(values) == signal.shape,
                f"threshold problem: {name} has shape {np.shape(values)}, expected {signal.shape}")
    correct = problem.correct
    require(isinstance(correct, np.ndarray) and correct.dtype == bool,
            "threshold problem: correct must be a boolean array (cumulative_problem takes 0 and 1 too)")
    for name in ("latency_ms", "energy_j"):
        values = getattr(problem, name)
        require(values is None or (isinstance(values, np.ndarray) and np.issubdtype(values.dtype, np.number)),
                f"threshold problem: {name} must be an array of numbers")
        require(values is None or bool(np.all(np.isfinite(values) & (values >= 0))),
                f"threshold problem: {name} must be finite and >= 0")
        require(values is None or bool(np.all(np.diff(values, axis=0) >= 0)),
                f"threshold problem: {name} must be cumulative over the stages (never decreasing)")


def check_problem(problem, what: str = "problem") -> "ThresholdProblem":
    """`problem` where it is a `ThresholdProblem`, else FlexsimError naming `what` (an optimize function's argument)."""
    require(isinstance(problem, ThresholdProblem), f"invalid {what}: a ThresholdProblem (simulator.optimize."
            f"build_problem or cumulative_problem), got {type(problem).__name__}")
    return problem


def cumulative_problem(signal: np.ndarray, correct: np.ndarray, stage_latency_ms: np.ndarray,
                       stage_energy_j: np.ndarray | None = None, description: str = "<memory>") -> ThresholdProblem:
    """A problem from per-stage (not yet cumulative) costs ``[stage, sample]``; `correct` booleans (or 0 and 1)."""
    flags = np.asarray(correct)
    require(flags.dtype == bool or (np.issubdtype(flags.dtype, np.number) and bool(np.isin(flags, (0, 1)).all())),
            "invalid correct: must be booleans (or 0 and 1), one per stage and sample")
    return ThresholdProblem(
        signal=np.ascontiguousarray(signal, dtype=np.float64), correct=flags.astype(bool),
        latency_ms=np.cumsum(np.asarray(stage_latency_ms, dtype=np.float64), axis=0),
        energy_j=None if stage_energy_j is None else np.cumsum(np.asarray(stage_energy_j, dtype=np.float64), axis=0),
        description=description)
