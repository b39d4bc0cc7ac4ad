"""Latency of one call: warm-up, then wall-clock samples (and CUDA-event device time on a GPU)."""

from __future__ import annotations

import time

import numpy as np

QUANTILES = (0.1, 0.5, 0.9, 0.99)


def warm_up(call, calls: int, min_s: float, clock=time.perf_counter) -> int:
    """Run `call` at least `calls` times and for at least `min_s` seconds; return the number of calls."""
    n, t0 = 0, clock()
    while n < calls or clock() - t0 < min_s:
        call()
        n += 1
    return n


def wall_samples_ms(call, repeats: int, clock=time.perf_counter) -> np.ndarray:
    """Wall time (ms) of each of `repeats` calls of `call`."""
    samples = np.empty(repeats)
    for i in range(repeats):
        t0 = clock()
        call()
        samples[i] = (clock() - t0) * 1e3
    return samples


def summary_ms(samples_ms: np.ndarray) -> dict:
    """Quantiles p10/p50/p90/p99, mean and count of latency samples (ms)."""
    q = np.quantile(samples_ms, QUANTILES)
    out = {f"p{round(p * 100)}": float(v) for p, v in zip(QUANTILES, q)}
    return {**out, "mean": float(np.mean(samples_ms)), "n": int(len(samples_ms))}
