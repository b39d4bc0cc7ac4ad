"""The host's speed process (`simulator.speed`), fitted on the stage log of a closed-loop run.

In a closed loop the worker never idles, so the stages run back to back and their times, over the typical time
of each stage, trace the host's speed. Per stage run ``i`` (serving order): the residual
``y_i = log(compute + decision) - median of that stage position``. Model: ``y = s(t) + e``, ``s`` an
Ornstein-Uhlenbeck process (``sigma``, ``correlation_ms``) and ``e`` independent noise. The autocovariance of
``y`` at a lag of ``L >= 1`` stages is then ``sigma**2 * exp(-L * dt / correlation_ms)`` (``dt``: the mean time
per stage), fitted with SciPy over lags 1 .. n/4.

The profile's latency samples are measured under that process, and the engines apply it on top of the samples
they draw; so the samples are first de-modulated (`demodulated`): each is divided by the local speed (the mean
residual of the stages within half a correlation time around it, itself left out, exponentiated) and rescaled so
that each stage position keeps its measured mean. What the samples keep is the stage-to-stage variance; the
slow phases come from the process.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.optimize import curve_fit

from simulator.speed import SpeedNoise

#: The largest lag fitted, as a fraction of the run's stages.
MAX_LAG_FRACTION = 0.25
#: Fewest stage runs a fit needs.
MIN_STAGES = 200
#: A fitted sigma below this is no process (speeds within a fraction of a percent).
MIN_SIGMA = 0.005

METHOD = ("closed-loop run (every stage): autocovariance of log(stage time over its stage's median) against the lag "
          "in time, fitted as sigma^2 exp(-lag / correlation) (simulator/runner/speed_fit.py); latency samples and "
          "decision times divided by the local speed (mean residual within half a correlation time), each stage's "
          "mean kept")


def log_residuals(run) -> np.ndarray:
    """Per stage run of `run` (serving order): log of its compute + decision time over its stage's median."""
    times = run.stage_times
    y = np.log(times.compute_s + times.decision_s)
    for k in np.unique(times.stage):
        at = times.stage == k
        y[at] -= np.median(y[at])
    return y


def _autocovariance(y: np.ndarray, max_lag: int) -> np.ndarray:
    """Autocovariance of `y` at lags 0..max_lag (unbiased per lag), by FFT."""
    x = y - y.mean()
    n = x.size
    spectrum = np.fft.rfft(x, 2 * n)
    return np.fft.irfft(spectrum * np.conj(spectrum))[:max_lag + 1] / np.arange(n, n - max_lag - 1, -1)


def fit_speed_noise(run) -> tuple[SpeedNoise | None, dict]:
    """The speed process of the host during `run` (closed loop) and the fit's figures; None when the run is too
    short or shows no slow variation."""
    y = log_residuals(run)
    n = y.size
    if n < MIN_STAGES:
        return None, {"stages": int(n), "reason": f"fewer than {MIN_STAGES} stage runs"}
    times = run.stage_times
    dt_ms = float(times.start_s[-1] - times.start_s[0]) / (n - 1) * 1000.0
    max_lag = int(n * MAX_LAG_FRACTION)
    gamma = _autocovariance(y, max_lag)
    lag_ms = np.arange(1, max_lag + 1) * dt_ms

    def model(h, var, corr):
        return var * np.exp(-h / corr)

    try:
        (var, corr), _ = curve_fit(model, lag_ms, gamma[1:], p0=[max(gamma[1], 1e-6), 20.0 * dt_ms],
                                   bounds=([0.0, dt_ms], [max(gamma[0], 1e-6), max_lag * dt_ms]))
    except (RuntimeError, ValueError) as exc:
        return None, {"stages": int(n), "reason": f"fit failed: {exc}"}
    facts = {"sigma": float(np.sqrt(var)), "correlation_ms": float(corr), "total_sd": float(np.sqrt(gamma[0])),
             "stage_ms": dt_ms, "stages": int(n), "method": METHOD}
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
    """`run` with each stage's compute and decision time divided by the local speed (see the module docstring),
    rescaled so that every stage position keeps its mean."""
    times = run.stage_times
    window = max(1, int(round(0.5 * noise.correlation_ms / stage_ms)))
    factor = np.exp(local_log_speed(log_residuals(run), window))
    compute, decision = times.compute_s / factor, times.decision_s / factor
    for k in np.unique(times.stage):
        at = times.stage == k
        compute[at] *= times.compute_s[at].mean() / compute[at].mean()
        decision[at] *= times.decision_s[at].mean() / decision[at].mean()
    return replace(run, stage_times=replace(times, compute_s=compute, decision_s=decision))
