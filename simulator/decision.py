"""The per-stage host decision (combine, score, compare) and a measurement of what it costs."""

from __future__ import annotations

import time

import numpy as np

from simulator.signals import combine, confidence, softmax


def decide_after_stage(stage_logits: np.ndarray, combiner: str, signal: str, threshold: float):
    """The decision a real system makes after a stage, from the logits of the stages run so far.

    Parameters
    ----------
    stage_logits : ndarray, shape (stages_run, n_classes)
    Returns
    -------
    (stop, prediction, signal_value)
    """
    combined = combine(softmax(stage_logits[:, None, :]), combiner)[-1, 0]
    value = float(confidence(combined[None, :], signal)[0])
    return value >= threshold, int(np.argmax(combined)), value


def measure_decision_overhead_ms(n_classes: int = 10, n_stages: int = 3, repeats: int = 3000,
                                 seed: int = 0) -> dict:
    """Host time of one decision (median and p90, ms) for `n_classes` classes after `n_stages` stages."""
    logits = np.random.default_rng(seed).normal(size=(n_stages, n_classes)).astype(np.float32)
    times = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        decide_after_stage(logits, "mean", "margin", 0.5)
        times[i] = time.perf_counter() - t0
    times_ms = times[repeats // 10:] * 1000.0
    return {"p50": float(np.median(times_ms)), "p90": float(np.quantile(times_ms, 0.9)),
            "mean": float(times_ms.mean()), "n": int(times_ms.size)}
