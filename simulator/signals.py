"""Per-sample stage signals, computed once with vectorised NumPy before any simulation.

After stage ``k`` (0-based) of a request served with sample ``s`` the policy sees the combined probability
vector of the stages run so far:

- ``mean``: the mean of the softmax of the members run so far (flexible ensembles);
- ``last``: the softmax of the last member run (early-exit cascades).

From that vector come the prediction (argmax, ties to the lowest class index) and a confidence signal,
always oriented so that *higher means more confident* and lying in [0, 1]:

- ``margin``: top-1 minus top-2 probability (the flexible-ensemble paper's signal);
- ``maxprob``: the top-1 probability;
- ``entropy``: ``1 - H(p) / ln(n_classes)``, the normalised negative entropy.

A threshold policy stops after stage ``k`` when ``signal[k, s] >= T[k]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import math

import numpy as np

from simulator.errors import require

COMBINERS = ("mean", "last")
SIGNALS = ("margin", "maxprob", "entropy")
#: How far outside [0, 1] a threshold may lie (arithmetic on signals, e.g. a midpoint of two, may round past the ends).
THRESHOLD_SLACK = 1e-9


def is_threshold(t) -> bool:
    """Whether `t` is a threshold a signal can be compared with: a number in [0, 1] (where signals lie, up to
    `THRESHOLD_SLACK`), inf (never stop there) or -inf (always stop)."""
    if not isinstance(t, (int, float, np.integer, np.floating)) or isinstance(t, bool):
        return False
    try:
        value = float(t)
    except OverflowError:                   # an int beyond the float range
        return False
    return math.isinf(value) or -THRESHOLD_SLACK <= value <= 1.0 + THRESHOLD_SLACK


@dataclass(frozen=True, kw_only=True, eq=False)
class StageSignals:
    """What a policy can see after each stage, for every sample.

    Attributes
    ----------
    signal : ndarray of float64, shape (n_stages, n_samples)
        Confidence after stage k (higher = more confident).
    prediction : ndarray of int32, shape (n_stages, n_samples)
    correct : ndarray of bool, shape (n_stages, n_samples)
    """

    signal: np.ndarray
    prediction: np.ndarray
    correct: np.ndarray

    @property
    def n_stages(self) -> int:
        return self.signal.shape[0]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in float64. Logits far apart (near the float range's ends) give exact zeros: their
    difference to the largest overflows to -inf, whose exponential is 0, so that overflow is not warned about."""
    z = np.asarray(logits, dtype=np.float64)
    with np.errstate(over="ignore"):
        z = z - z.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def combine(probs: np.ndarray, combiner: str) -> np.ndarray:
    """Combined probability vectors after each stage from per-stage probabilities ``[stage, ..., class]``."""
    require(combiner in COMBINERS, f"invalid combiner = {combiner!r}: must be one of {', '.join(COMBINERS)}")
    if combiner == "last":
        return probs
    counts = np.arange(1, probs.shape[0] + 1, dtype=np.float64).reshape((-1,) + (1,) * (probs.ndim - 1))
    return np.cumsum(probs, axis=0) / counts


def confidence(combined: np.ndarray, signal: str) -> np.ndarray:
    """Confidence signal of combined probability vectors (last axis = classes), clipped to [0, 1]: the entropy
    signal of a uniform prediction rounds to about -2e-16 for some class counts, which a threshold of 0 ("always
    stop") must still stop."""
    require(signal in SIGNALS, f"invalid signal = {signal!r}: must be one of {', '.join(SIGNALS)}")
    if signal == "maxprob":
        value = combined.max(axis=-1)
    elif signal == "margin":
        top2 = np.partition(combined, combined.shape[-1] - 2, axis=-1)[..., -2:]
        value = top2[..., 1] - top2[..., 0]
    else:
        p = np.clip(combined, 1e-300, 1.0)
        entropy = -(combined * np.log(p)).sum(axis=-1)
        value = 1.0 - entropy / np.log(combined.shape[-1])
    return np.clip(value, 0.0, 1.0)


def stage_signals(logits: np.ndarray, labels: np.ndarray, members, combiner: str = "mean",
                  signal: str = "margin") -> StageSignals:
    """Precompute signal, prediction and correctness after each stage for every sample.

    Parameters
    ----------
    logits : ndarray, shape (n_members, n_samples, n_classes)
    labels : ndarray, shape (n_samples,)
    members : sequence of int
        The member run at each stage, in order.
    combiner : {"mean", "last"}
    signal : {"margin", "maxprob", "entropy"}
    """
    combined = combine(softmax(logits[np.asarray(members, dtype=np.int64)]), combiner)
    prediction = combined.argmax(axis=-1).astype(np.int32)
    return StageSignals(
        signal=np.ascontiguousarray(confidence(combined, signal)),
        prediction=prediction,
        correct=prediction == np.asarray(labels)[None, :],
    )
