"""The host's speed process (`simulator.speed`), fitted on the stage logs of real runs.

Per stage run ``i``, the residual ``y_i`` is the log of its compute + decision time less the mean log of its class:
its stage, and, early in a busy period (position below `simulator.runner.idle.WARM_FROM_STAGE`), its position and
the bucket of idle time before the period (so the wake-up after idle, which the profile models apart, is not taken
for a slow phase). Model: ``y = s(t) + e``, ``s`` an Ornstein-Uhlenbeck process (``sigma``, ``correlation_ms``) in
time and ``e`` independent noise. The covariance of two residuals of one run ``h`` ms apart is then
``sigma**2 * exp(-h / correlation_ms)``: it is averaged over every pair of stage runs up to `MAX_LAG_MS` apart,
in logarithmically spaced bins of the lag, and fitted with SciPy (each bin weighs the same).

`simulator.runner.profiling` fits the profile's process on the open-loop profiling runs: the host's phases are
longer and deeper when it idles between requests (open loop) than when it runs back to back (closed loop), and
open loops are what the phases matter for. The profile's latency samples come from the closed-loop run and the
engines apply the process on top of the samples they draw; so those samples are first de-modulated (`demodulated`)
by the closed loop's own process: each is divided by the local speed (the mean residual of the stages within half
a correlation time around it, itself left out, exponentiated) and rescaled so that each stage position keeps its
measured mean. What the samples keep is the stage-to-stage variance.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.optimize import curve_fit

from simulator.speed import SpeedNoise

#: The largest lag (ms) between two stage runs whose covariance is used.
MAX_LAG_MS = 1000.0
#: Edges (ms) of the lag bins (finer at short lags, where the covariance changes fastest).
LAG_EDGES_MS = np.concatenate([[0.0], np.geomspace(0.5, MAX_LAG_MS, 32)])
#: Fewest stage runs a fit needs, and pairs a lag bin needs to be used.
MIN_STAGES = 200
MIN_PAIRS = 50
#: A fitted sigma below this is no process (speeds within a fraction of a percent).
MIN_SIGMA = 0.005

METHOD = ("covariance of log(stage time over its class's typical time) between stage runs of one run, against their "
          f"distance in time (up to {MAX_LAG_MS:.0f} ms, binned), fitted as sigma^2 exp(-lag / correlation); class = "
          "stage, and early in a busy period its position and the idle time before the period "
          "(simulator/runner/speed_fit.py)")


def log_residuals(run) -> np.ndarray:
    """Per stage run of `run` (serving order): log of its compute + decision time less the mean of its class
    (see the module docstring)."""
    from simulator.runner.idle import WAKEUP_EDGES_MS, WARM_FROM_STAGE, busy_periods

    times = run.stage_times
    y = np.log(times.compute_s + times.decision_s)
    position, gap_ms = busy_periods(run)
    gap_ms = np.nan_to_num(gap_ms, nan=np.inf)
    early = position < WARM_FROM_STAGE
    bucket = np.where(early, np.digitize(gap_ms, WAKEUP_EDGES_MS[1:-1], right=True), -1)
    key = (times.stage.astype(np.int64) * (WARM_FROM_STAGE + 1) + np.minimum(position, WARM_FROM_STAGE)) \
        * (len(WAKEUP_EDGES_MS) + 1) + bucket + 1
    _, cls = np.unique(key, return_inverse=True)
    return y - (np.bincount(cls, weights=y) / np.bincount(cls))[cls]


def lag_covariance(runs, residuals) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bin of `LAG_EDGES_MS`: the mean lag (ms), the mean product of two residuals (`log_residuals` of each of
    `runs`, in `residuals`) that far apart in one run, and the number of pairs."""
    n_bins = LAG_EDGES_MS.size - 1
    lag_sum, product_sum, pairs = np.zeros(n_bins), np.zeros(n_bins), np.zeros(n_bins)
    for run, y in zip(runs, residuals):
        t_ms = run.stage_times.start_s * 1000.0
        ends = np.searchsorted(t_ms, t_ms + MAX_LAG_MS, side="right")
        for i in range(y.size - 1):
            lag = t_ms[i + 1:ends[i]] - t_ms[i]
            b = np.searchsorted(LAG_EDGES_MS, lag, side="right") - 1
            lag_sum += np.bincount(b, weights=lag, minlength=n_bins)[:n_bins]
            product_sum += np.bincount(b, weights=y[i] * y[i + 1:ends[i]], minlength=n_bins)[:n_bins]
            pairs += np.bincount(b, minlength=n_bins)[:n_bins]
    seen = np.maximum(pairs, 1)
    return lag_sum / seen, product_sum / seen, pairs


def fit_speed_noise(runs) -> tuple[SpeedNoise | None, dict]:
    """The host's speed process during `runs` and the fit's figures; None when they are too short or show no slow
    variation."""
    stages = sum(run.stage_times.stage.size for run in runs)
    if stages < MIN_STAGES:
        return None, {"stages": int(stages), "reason": f"fewer than {MIN_STAGES} stage runs"}
    per_run = [log_residuals(run) for run in runs]
    residuals = np.concatenate(per_run)
    lag_ms, covariance, pairs = lag_covariance(runs, per_run)
    used = pairs >= MIN_PAIRS
    duration_ms = max(float(np.ptp(run.stage_times.start_s)) * 1000.0 for run in runs)
    stage_ms = duration_ms / max(max(run.stage_times.stage.size for run in runs) - 1, 1)
    facts = {"total_sd": float(residuals.std()), "stage_ms": stage_ms, "stages": int(stages),
             "runs": len(runs), "method": METHOD}
    if used.sum() < 3:
        return None, {**facts, "reason": "too few lags with enough pairs"}

    def model(h, var, corr):
        return var * np.exp(-h / corr)

    try:
        top = max(residuals.var(), 1e-6)
        (var, corr), _ = curve_fit(model, lag_ms[used], covariance[used], p0=[min(max(covariance[used][0], 0.0), top),
                                   50.0], bounds=([0.0, 0.1], [top, 10 * MAX_LAG_MS]))
    except (RuntimeError, ValueError) as exc:
        return None, {**facts, "reason": f"fit failed: {exc}"}
    facts.update(sigma=float(np.sqrt(var)), correlation_ms=float(corr))
    if np.sqrt(var) < MIN_SIGMA:
        return None, {**facts, "reason": f"no slow variation (sigma < {MIN_SIGMA})"}
    return SpeedNoise(sigma=float(np.sqrt(var)), correlation_ms=float(corr)), facts


def local_log_speed(y: np.ndarray, window: int) -> np.ndarray:
    """Per element: the mean of `y` over the `window` elements on each side, the element itself left out."""
    total = np.concatenate([[0.0], np.cumsum(y)])
    idx = np.arange(y.size)
    low, high = np.maximum(idx - window, 0), np.minimum(idx + window + 1, y.size)
    return (total[high] - total[low] - y) / (high - low - 1)


def demodulated(run, noise: SpeedNoise, stage_ms: float):
    """`run` (closed loop) with each stage's compute and decision time divided by the local speed (see the module
    docstring), rescaled so that every stage position keeps its mean."""
    times = run.stage_times
    window = max(1, int(round(0.5 * noise.correlation_ms / stage_ms)))
    factor = np.exp(local_log_speed(log_residuals(run), window))
    compute, decision = times.compute_s / factor, times.decision_s / factor
    for k in np.unique(times.stage):
        at = times.stage == k
        compute[at] *= times.compute_s[at].mean() / compute[at].mean()
        decision[at] *= times.decision_s[at].mean() / decision[at].mean()
    return replace(run, stage_times=replace(times, compute_s=compute, decision_s=decision))
