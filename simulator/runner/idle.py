"""Slower first calls after idle: how a request's first stage costs depend on how long the worker was idle.

After an idle period the caches, the branch predictors and (on a GPU) the clocks are cold, and on a virtual machine
the idle vCPU may have been descheduled. The simulator draws every stage from one distribution, profiled in
closed-loop runs without idle time; this module measures, from real runs, the compute and decision time of each
request's first stage as a function of the worker's idle time before the request (0 when it was waiting in the
queue), against the same stage when the request had waited.
"""

from __future__ import annotations

import numpy as np

#: Edges (ms) of the idle-time buckets; the first bucket holds requests that waited in the queue.
GAP_EDGES_MS = (0.0, 0.02, 0.2, 1.0, 5.0, np.inf)


def _first_stage_rows(real) -> np.ndarray:
    """Row of each request's first stage in the run's stage log (requests are served in index order)."""
    times = real.stage_times
    return np.flatnonzero(times.stage == 0)


def idle_gaps_ms(real) -> np.ndarray:
    """Idle time (ms) of the worker before each request from the second on: start minus the previous finish,
    zero when the request was already waiting."""
    req = real.requests
    return np.maximum(req.start_s[1:] - req.finish_s[:-1], 0.0) * 1000.0


def idle_effect(reals) -> dict:
    """Mean first-stage compute and decision time (ms) per idle-time bucket, pooled over `reals`."""
    gaps, compute, decision = [], [], []
    for real in reals:
        rows = _first_stage_rows(real)[1:]
        gaps.append(idle_gaps_ms(real))
        compute.append(real.stage_times.compute_s[rows] * 1000.0)
        decision.append(real.stage_times.decision_s[rows] * 1000.0)
    gaps, compute, decision = (np.concatenate(x) for x in (gaps, compute, decision))
    bucket = np.digitize(gaps, GAP_EDGES_MS[1:-1], right=True)
    rows = []
    for b in range(len(GAP_EDGES_MS) - 1):
        at = bucket == b
        rows.append({"idle_ms": [GAP_EDGES_MS[b], GAP_EDGES_MS[b + 1]], "requests": int(at.sum()),
                     "compute_ms": float(compute[at].mean()) if at.any() else None,
                     "decision_ms": float(decision[at].mean()) if at.any() else None})
    waited = rows[0]["compute_ms"]
    for row in rows:
        row["compute_vs_waited"] = (row["compute_ms"] / waited if waited and row["compute_ms"] is not None
                                    else None)
    return {"buckets": rows}
