"""The exhaustive threshold grid, evaluated with cumulative counts instead of a loop over combinations.

A grid gives each of the ``D = K - 1`` thresholds ``G`` candidate values (sorted ascending, per stage). A sample
with ``g[k]`` = the number of stage-k grid values ``<= signal[k]`` stops at stage k under grid index ``i[k]`` exactly
when ``i[k] < g[k]``. It therefore stops *after* stage k under the combination ``i`` when

    ``i[j] >= g[j]`` for every ``j < k``   and   ``i[k] < g[k]``   (the last stage: only the first condition).

So the total of any per-sample quantity ``w[k, s]`` (correct, cumulative latency, cumulative energy, stages) over
the samples that stop at stage k, for *every* combination at once, is a histogram of ``w[k]`` over the tuples
``(g[0], ..., g[k])`` turned into prefix sums along axes ``0..k-1`` and a suffix sum along axis ``k``. Summing the
stages' terms (broadcast over the later indices) gives every combination's totals in
``O(K * N + K * (G + 1) ** D)`` operations, against ``O(N * G ** D)`` for evaluating combinations one by one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.errors import require
from simulator.policies import check_n_stages
from simulator.signals import is_threshold
from simulator.optimize.evaluate import OperatingPoint, check_thresholds, evaluate, flat_numbers
from simulator.optimize.problem import ThresholdProblem, check_problem

GRID_KINDS = ("uniform", "quantile")
#: Largest number of combinations a grid may have (memory: a few float64 arrays of this length).
MAX_COMBINATIONS = 50_000_000


@dataclass(frozen=True, eq=False)
class ThresholdGrid:
    """Candidate values of each threshold: ``values[k]`` sorted ascending, shape ``(K - 1, points)``."""

    values: np.ndarray

    def __post_init__(self):
        v = np.asarray(self.values) if isinstance(self.values, (list, tuple, np.ndarray)) else None
        require(v is not None and v.dtype.kind in "iuf",
                f"invalid grid: values must be a 2-D array of numbers [threshold, value], got {self.values!r:.60}")
        v = v.astype(np.float64)
        object.__setattr__(self, "values", v)
        require(v.ndim == 2 and v.shape[1] >= 1, f"invalid grid: needs at least one value per threshold, "
                f"got shape {v.shape}")
        require(not np.isnan(v).any(), "invalid grid: NaN is not a threshold")
        require(all(is_threshold(t) for t in v.ravel()),
                "invalid grid: thresholds lie in [0, 1] (inf: never stop there, -inf: always)")
        require(bool(np.all(np.diff(v, axis=1) >= 0)), "invalid grid: values must be sorted ascending")
        require(self.n_combinations <= MAX_COMBINATIONS,
                f"invalid grid: {self.points} values for {self.n_thresholds} thresholds make "
                f"{self.n_combinations:.3g} combinations (at most {MAX_COMBINATIONS:.0e}); use fewer points or "
                "the descent method")

    @property
    def n_thresholds(self) -> int:
        return self.values.shape[0]

    @property
    def points(self) -> int:
        return self.values.shape[1]

    @property
    def n_combinations(self) -> int:
        return self.points ** self.n_thresholds

    def thresholds(self, index: int) -> tuple:
        """The thresholds of combination `index` (mixed radix, the first threshold most significant)."""
        digits = np.unravel_index(int(index), (self.points,) * self.n_thresholds)
        return tuple(float(self.values[k, d]) for k, d in enumerate(digits))


#: Most values per threshold (a grid's combinations are checked against their own limit besides).
MAX_POINTS = 1_000_000


def check_points(points) -> int:
    """Validate a number of grid values per threshold: at least 2, so that a grid holds both ends (stop everyone,
    ``inf`` = no one; one value would be ``inf`` alone, the full ensemble)."""
    require(isinstance(points, (int, np.integer)) and not isinstance(points, bool) and 2 <= points <= MAX_POINTS,
            f"invalid grid points = {points!r}: need an integer from 2 to {MAX_POINTS} (values per threshold)")
    return int(points)


def uniform_grid(n_stages: int, points: int) -> ThresholdGrid:
    """``points`` values per threshold: ``0, 1/(points-1), ..., (points-2)/(points-1)`` and ``inf`` (never stop).

    For signals in [0, 1], 0 stops every sample (the single model) and inf none (the full ensemble).
    """
    points = check_points(points)
    check_n_stages(n_stages)
    row = np.append(np.arange(points - 1) / (points - 1), np.inf)
    return ThresholdGrid(np.tile(row, (n_stages - 1, 1)))


def quantile_grid(problem: ThresholdProblem, points: int) -> ThresholdGrid:
    """Per stage: quantiles of that stage's signal at ``0, 1/(points-1), ...`` and ``inf`` (never stop)."""
    check_problem(problem)
    points = check_points(points)
    probs = np.linspace(0.0, 1.0, points)[:-1]
    rows = [np.append(np.quantile(problem.signal[k], probs), np.inf) for k in range(problem.n_stages - 1)]
    return ThresholdGrid(np.array(rows).reshape(problem.n_stages - 1, points))


def value_grid(n_stages: int, values) -> ThresholdGrid:
    """The same explicit values for every threshold."""
    check_n_stages(n_stages)
    row = np.sort(flat_numbers(values, "grid values"))     # NaN: refused by ThresholdGrid
    require(row.size >= 1, "invalid grid: a grid of zero values (give at least one)")
    return ThresholdGrid(np.tile(row, (n_stages - 1, 1)))


def make_grid(problem: ThresholdProblem, points: int = 11, kind: str = "uniform", values=None) -> ThresholdGrid:
    """A grid for `problem`: explicit `values`, else `points` values per threshold of `kind`."""
    check_problem(problem)
    if values is not None:
        return value_grid(problem.n_stages, values)
    require(kind in GRID_KINDS, f"invalid grid kind = {kind!r}: must be one of {', '.join(GRID_KINDS)}")
    return uniform_grid(problem.n_stages, points) if kind == "uniform" else quantile_grid(problem, points)


@dataclass(frozen=True, eq=False)
class GridResult:
    """Every combination of a grid, evaluated: arrays of length ``grid.n_combinations``."""

    grid: ThresholdGrid
    accuracy: np.ndarray
    latency_ms: np.ndarray
    energy_j: np.ndarray | None
    mean_stages: np.ndarray

    def cost(self, name: str) -> np.ndarray:
        """``latency_ms`` or ``energy_j`` of every combination."""
        require(name in ("latency", "energy"), f"invalid cost = {name!r}: must be latency or energy")
        require(name != "energy" or self.energy_j is not None, "cost energy: the profile has no energy figures")
        return self.energy_j if name == "energy" else self.latency_ms

    def point(self, index: int) -> OperatingPoint:
        """Combination `index` as an operating point."""
        n = len(self.accuracy)
        require(isinstance(index, (int, np.integer)) and not isinstance(index, bool) and 0 <= index < n,
                f"invalid combination index = {index!r:.40}: must be an integer from 0 to {n - 1}")
        i = int(index)
        return OperatingPoint(thresholds=self.grid.thresholds(i), accuracy=float(self.accuracy[i]),
                              latency_ms=float(self.latency_ms[i]),
                              energy_j=None if self.energy_j is None else float(self.energy_j[i]),
                              mean_stages=float(self.mean_stages[i]))


def stop_counts(problem: ThresholdProblem, grid: ThresholdGrid) -> np.ndarray:
    """``g[k, s]``: how many stage-k grid values are ``<= signal[k, s]`` (stop at k iff grid index < g)."""
    require(grid.n_thresholds == problem.n_stages - 1,
            f"invalid grid: {grid.n_thresholds} thresholds for {problem.n_stages} stages (need {problem.n_stages - 1})")
    counts = np.zeros((grid.n_thresholds, problem.n_samples), dtype=np.intp)
    for k in range(grid.n_thresholds):
        counts[k] = np.searchsorted(grid.values[k], problem.signal[k], side="right")
    return counts


def evaluate_grid(problem: ThresholdProblem, grid: ThresholdGrid) -> GridResult:
    """Accuracy, mean latency, mean energy and mean stages of every combination of `grid` (exact)."""
    check_problem(problem)
    require(isinstance(grid, ThresholdGrid), f"invalid grid: a ThresholdGrid (simulator.optimize.make_grid), got "
            f"{type(grid).__name__}")
    counts = stop_counts(problem, grid)
    weights = {"accuracy": problem.correct.astype(np.float64), "latency_ms": problem.latency_ms,
               "energy_j": problem.energy_j,
               "mean_stages": np.broadcast_to(np.arange(1.0, problem.n_stages + 1)[:, None], problem.signal.shape)}
    totals = {name: None if w is None else _grid_totals(counts, w, grid.points) / problem.n_samples
              for name, w in weights.items()}
    return GridResult(grid=grid, **totals)


def _grid_totals(counts: np.ndarray, weight: np.ndarray, points: int) -> np.ndarray:
    """Sum of ``weight[stop stage of s, s]`` over samples, for every combination (flattened, C order)."""
    n_thresholds = counts.shape[0]
    total = np.zeros((points,) * n_thresholds)
    for k in range(n_thresholds + 1):
        term = _stage_term(counts, weight[k], k, points)
        total += term.reshape(term.shape + (1,) * (n_thresholds - term.ndim))
    return total.reshape(-1)


def _stage_term(counts: np.ndarray, weight: np.ndarray, k: int, points: int) -> np.ndarray:
    """Sum of ``weight`` over the samples that stop after stage k, indexed by the grid indices ``i[0..k]``.

    Along the axes ``j < k`` (reached stage k: ``g[j] <= i[j]``) only samples with ``g[j] < points`` ever count:
    their histogram over ``g[j]`` is summed cumulatively. Along axis ``k`` (stops there: ``g[k] > i[k]``) only
    ``g[k] >= 1`` counts: the histogram over ``g[k] - 1`` is summed cumulatively from the top.
    """
    dims = min(k + 1, counts.shape[0])
    if dims == 0:                               # a single stage: every sample stops there
        return np.array(weight.sum())
    reach, stops = min(k, dims), k < counts.shape[0]
    index = counts[:dims] - np.array([0] * reach + [1] * stops)[:, None]
    keep = np.all((index >= 0) & (index < points), axis=0)
    shape = (points,) * dims
    flat = np.ravel_multi_index(tuple(index[:, keep]), shape)
    hist = np.bincount(flat, weights=weight[keep], minlength=points ** dims).reshape(shape)
    for axis in range(reach):
        _cumulate(hist, axis)
    if stops:
        _cumulate(np.flip(hist, axis=k), k)
    return hist


def _cumulate(values: np.ndarray, axis: int) -> None:
    """Cumulative sum along `axis`, in place (slice by slice where the slices are large blocks: much faster than
    ``np.cumsum`` there)."""
    if axis >= values.ndim - 2:
        np.cumsum(values, axis=axis, out=values)
        return
    head = (slice(None),) * axis
    for i in range(1, values.shape[axis]):
        values[head + (i,)] += values[head + (i - 1,)]


def evaluate_grid_naive(problem: ThresholdProblem, grid: ThresholdGrid, indices=None) -> GridResult:
    """The straightforward evaluation, one combination at a time (the reference for tests and the benchmark).

    `indices` restricts it to some combinations (default: all); the arrays then follow `indices`.
    """
    indices = np.arange(grid.n_combinations) if indices is None else np.asarray(indices)
    points = [evaluate(problem, grid.thresholds(i)) for i in indices]
    energy = None if problem.energy_j is None else np.array([p.energy_j for p in points])
    return GridResult(grid=grid, accuracy=np.array([p.accuracy for p in points]),
                      latency_ms=np.array([p.latency_ms for p in points]), energy_j=energy,
                      mean_stages=np.array([p.mean_stages for p in points]))


__all__ = ["ThresholdGrid", "GridResult", "uniform_grid", "quantile_grid", "value_grid", "make_grid",
           "evaluate_grid", "evaluate_grid_naive", "check_thresholds"]
