"""Slower calls after idle: how a stage's cost depends on how long the worker, and the stage's member, were idle.

After an idle period the caches, the branch predictors and (on a GPU) the clocks are cold, and on a virtual machine
the idle vCPU may have been descheduled. And a member's weights and objects go cold while other members run. Four
views, all from real runs:

- `idle_effect` (the report's table): the compute and decision time of each request's first stage per bucket of the
  worker's idle time before the request (0 when it was waiting in the queue);
- `wakeup_table` (the profile's ``wakeup``, `simulator.profiles.Profile.wakeup` and ``wakeup_decay``): per finer
  bucket of the idle time before a busy period, the factor the engines apply to the period's first stage, and
  one decay for how it fades over the period's next stages (stage j: ``1 + (factor - 1) * decay**j``). Both are
  fitted by least squares on the relative excess of each of the period's early stage runs over warm runs of the
  same stages (deep in a busy period) measured nearby in the same run. "Nearby" matters: the shared host's speed
  drifts, and requests queue up when it is slow, so the requests that waited over a whole run are slower than the
  woken ones for that reason alone. For the same reason each stage run's time is first divided by the level of its
  250 ms window (`simulator.runner.speed_fit.stage_levels`: the host's slower phases of the seconds scale, which
  the speed model carries): where warm runs are few, the nearest may lie in a slower phase than the run they are
  the reference of (run AO's `spin-50`, `docs/validation-history.md`).
  The open-loop profiling runs (`simulator.runner.profiling`) interleave bursts of simultaneous requests with
  their Poisson arrivals so that warm runs occur throughout.
- `member_idle_effect` (the report's table): that slowdown measured directly in real runs, per bucket of the time
  since the member last ran (the median compute time of the stage runs not first in their busy period, over that
  of the same members' runs that ran within 2 ms of their previous run);
- `member_idle_table` (the profile's ``member_idle``, `simulator.profiles.Profile.member_idle`): per bucket of the
  time since a stage's member last ended, the factor on its compute time, whatever the worker did meanwhile (its
  weights and objects went cold while other members ran). Fitted first, on the stage runs from position
  `MEMBER_FROM_STAGE` of a busy period on (the wake-up has faded there) against the same warm reference; the
  wake-up table is then fitted on the runs with that factor taken out of their compute time, so that the two do
  not count one slowdown twice. A stage set of one or two members gives no such runs with cold members (each
  request runs every stage in the profiling runs): there the wake-up carries it all.
"""

from __future__ import annotations

import numpy as np

from simulator.runner.speed_fit import stage_levels

#: Edges (ms) of the idle-time buckets; the first bucket holds requests that waited in the queue.
GAP_EDGES_MS = (0.0, 0.02, 0.2, 1.0, 5.0, np.inf)
#: Edges (ms) of the wake-up table's buckets of idle time (requests that waited are not in any).
WAKEUP_EDGES_MS = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, np.inf)
#: Woken requests a bucket needs to give a point of the wake-up table.
MIN_WOKEN = 20
#: Decays tried by the wake-up fit (`fit_decay`).
DECAY_GRID = np.round(np.arange(0.0, 0.97, 0.02), 2)
#: Stage runs from this position of a busy period on run warm: the reference of the excess.
WARM_FROM_STAGE = 16
#: Edges (ms) of the member-idle table's buckets of the time since a stage's member last ended.
MEMBER_EDGES_MS = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, np.inf)
#: Stage runs a bucket needs to give a point of the member-idle table.
MIN_MEMBER_RUNS = 40
#: Stage runs from this position of a busy period on give the member-idle table: the wake-up has faded there
#: (``decay**2`` is about 0.06 of the first stage's excess at the decays fitted on this host).
MEMBER_FROM_STAGE = 2
#: Buckets (ms) of the report's member-idle table (`member_idle_effect`); the first is the warm reference.
EFFECT_EDGES_MS = (0.0, 2.0, 4.0, 8.0, 16.0, np.inf)
#: Stage runs a bucket of the report's member-idle table needs.
MIN_EFFECT_RUNS = 30
#: Warm runs of the same stage position, nearest in serving order, averaged into a stage run's reference: near enough
#: in time for the host's drift to cancel (about the bursts before and after it in a profiling run), enough to
#: average the noise of single stages.
NEIGHBOURS = 12


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
        rows.append({"idle_ms": [GAP_EDGES_MS[b], _finite_or_none(GAP_EDGES_MS[b + 1])], "requests": int(at.sum()),
                     "compute_ms": float(compute[at].mean()) if at.any() else None,
                     "decision_ms": float(decision[at].mean()) if at.any() else None})
    waited = rows[0]["compute_ms"]
    for row in rows:
        row["compute_vs_waited"] = (row["compute_ms"] / waited if waited and row["compute_ms"] is not None
                                    else None)
    return {"buckets": rows}


def busy_periods(real) -> tuple[np.ndarray, np.ndarray]:
    """Per stage run of `real` (in serving order): its position in its busy period (0: the first stage after the
    worker idled; request 0 starts the first period) and the worker's idle time (ms) before that period (NaN for
    the first period, which follows the warm-up)."""
    times = real.stage_times
    starts = (times.stage == 0) & ~real.waited[times.request]
    first_row = np.flatnonzero(starts)[np.cumsum(starts) - 1]
    return np.arange(starts.size) - first_row, real.idle_before_ms[times.request[first_row]]


def warm_reference_ms(spent_ms: np.ndarray, stage: np.ndarray, warm: np.ndarray,
                      neighbours: int = NEIGHBOURS) -> np.ndarray:
    """Per stage run: the mean time of the `neighbours` warm runs (mask `warm`) of the same stage position nearest
    to it in serving order (NaN where that position has no warm run)."""
    reference = np.full(spent_ms.shape, np.nan)
    for k in np.unique(stage):
        rows, pool = np.flatnonzero(stage == k), np.flatnonzero(warm & (stage == k))
        take = min(neighbours, pool.size)
        if take == 0:
            continue
        low = np.clip(np.searchsorted(pool, rows) - take // 2, 0, pool.size - take)
        total = np.concatenate([[0.0], np.cumsum(spent_ms[pool])])
        reference[rows] = (total[low + take] - total[low]) / take
    return reference


def member_idle_ms(real) -> np.ndarray:
    """Per stage run of `real` (serving order): the time (ms) since the same stage's member last ended (compute
    and decision), NaN for its first run."""
    times = real.stage_times
    end_s = times.start_s + times.compute_s + times.decision_s
    idle = np.full(times.stage.shape[0], np.nan)
    for k in np.unique(times.stage):
        rows = np.flatnonzero(times.stage == k)
        idle[rows[1:]] = (times.start_s[rows[1:]] - end_s[rows[:-1]]) * 1000.0
    return idle


def member_factor(idle_ms, member) -> np.ndarray:
    """The member-idle factor at `idle_ms` (`member`: a profile's ``(idle_ms, factor)`` points, or None): piecewise
    linear through (0, 1) and the points, constant beyond the last, as the engines; 1 where None or unknown (NaN)."""
    idle_ms = np.asarray(idle_ms, dtype=float)
    if member is None:
        return np.ones(idle_ms.shape)
    points, factors = np.asarray(member[0], dtype=float), np.asarray(member[1], dtype=float)
    return np.where(np.isfinite(idle_ms), np.interp(idle_ms, np.r_[0.0, points], np.r_[1.0, factors]), 1.0)


def warmup_excess(real, member=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The early stage runs of `real`'s busy periods after idle (every period but the first, which follows the
    warm-up; positions below `WARM_FROM_STAGE`): per stage run, the idle time (ms) before its period, its position
    in the period and its relative excess over its warm
    reference (`warm_reference_ms`: runs from position `WARM_FROM_STAGE` of a busy period on, nearby, so the
    host's drift cancels), each run's time first divided by its window's level (`stage_levels`). Runs without a
    reference are left out. With `member` (the member-idle table's ``(idle_ms, factor)``), each run's compute time
    is first divided by its member's factor."""
    times = real.stage_times
    compute_ms = times.compute_s * 1000.0
    if member is not None:
        compute_ms = compute_ms / member_factor(member_idle_ms(real), member)
    spent_ms = (compute_ms + times.decision_s * 1000.0) / stage_levels(real)
    position, gap_ms = busy_periods(real)
    excess = spent_ms / warm_reference_ms(spent_ms, times.stage, position >= WARM_FROM_STAGE) - 1.0
    keep = (position < WARM_FROM_STAGE) & np.isfinite(gap_ms) & np.isfinite(excess)
    return gap_ms[keep], position[keep], excess[keep]


def member_idle_effect(reals) -> dict:
    """The member-idle slowdown in real runs `reals`, directly: over the stage runs that are not the first of their
    busy period (the worker did not idle right before them: no wake-up), per bucket of `EFFECT_EDGES_MS` after the
    first, the median time since the member last ended and the median of the compute time over the median of the
    same stage's runs within the first bucket (per run and stage), with the count (None where fewer than
    `MIN_EFFECT_RUNS`)."""
    since_ms, ratio = [], []
    for real in reals:
        times = real.stage_times
        position, _ = busy_periods(real)
        since = member_idle_ms(real)
        keep = (position > 0) & np.isfinite(since)
        for k in np.unique(times.stage):
            at = keep & (times.stage == k)
            warm = at & (since < EFFECT_EDGES_MS[1])
            if warm.sum() >= MIN_EFFECT_RUNS:
                since_ms.append(since[at])
                ratio.append(times.compute_s[at] / np.median(times.compute_s[warm]))
    since_ms, ratio = (np.concatenate(x) if x else np.zeros(0) for x in (since_ms, ratio))
    buckets = []
    for lo, hi in zip(EFFECT_EDGES_MS[1:-1], EFFECT_EDGES_MS[2:]):
        at = (since_ms >= lo) & (since_ms < hi)
        enough = at.sum() >= MIN_EFFECT_RUNS
        buckets.append({"idle_ms": [lo, _finite_or_none(hi)], "runs": int(at.sum()),
                        "median_idle_ms": float(np.median(since_ms[at])) if enough else None,
                        "compute_vs_warm": float(np.median(ratio[at])) if enough else None})
    return {"buckets": buckets}


def member_excess(real) -> tuple[np.ndarray, np.ndarray]:
    """The stage runs of `real` from position `MEMBER_FROM_STAGE` of a busy period on, stalls left out: per run,
    the time (ms) since its member last ended and the relative excess of its compute time over the warm reference
    (`warm_reference_ms` on compute times), each first divided by its window's level (`stage_levels`)."""
    times = real.stage_times
    compute_ms = times.compute_s * 1000.0 / stage_levels(real)
    position, _ = busy_periods(real)
    excess = compute_ms / warm_reference_ms(compute_ms, times.stage, position >= WARM_FROM_STAGE) - 1.0
    idle = member_idle_ms(real)
    keep = (position >= MEMBER_FROM_STAGE) & np.isfinite(idle) & np.isfinite(excess) & ~times.stalls()
    return idle[keep], excess[keep]


def member_idle_table(reals) -> list[dict]:
    """The member-idle slowdown measured in `reals` (open-loop runs): per bucket of `MEMBER_EDGES_MS` holding at
    least `MIN_MEMBER_RUNS` runs (`member_excess`), a point: the median time since the member last ended, the
    factor ``1 + mean excess`` and the count. Factors not > 0, and a bucket whose median time is not > 0 (runs
    back to back, which a profile's table cannot hold), are left out."""
    parts = [member_excess(real) for real in reals]
    idle, excess = (np.concatenate([p[i] for p in parts]) if parts else np.zeros(0) for i in range(2))
    bucket = np.digitize(idle, MEMBER_EDGES_MS[1:-1], right=True)
    points = []
    for b in range(len(MEMBER_EDGES_MS) - 1):
        at = bucket == b
        factor = 1.0 + float(excess[at].mean()) if at.sum() >= MIN_MEMBER_RUNS else 0.0
        if factor > 0.0 and np.median(idle[at]) > 0.0:
            points.append({"idle_ms": float(np.median(idle[at])), "factor": factor, "runs": int(at.sum()),
                           "bucket_ms": [MEMBER_EDGES_MS[b], _finite_or_none(MEMBER_EDGES_MS[b + 1])]})
    return points


def fit_decay(bucket: np.ndarray, position: np.ndarray, excess: np.ndarray) -> tuple[float, np.ndarray]:
    """Least squares of ``excess = a[bucket] * decay**position`` over `DECAY_GRID`: the decay and each bucket's
    ``a`` (the first stage's excess: its wake-up factor minus 1)."""
    n = int(bucket.max()) + 1 if bucket.size else 0
    best = (np.inf, 0.0, np.zeros(n))
    for decay in DECAY_GRID:
        w = decay ** position.astype(float)
        a = np.bincount(bucket, weights=excess * w, minlength=n) / np.maximum(
            np.bincount(bucket, weights=w * w, minlength=n), 1e-300)
        sse = float(np.sum((excess - a[bucket] * w) ** 2))
        if sse < best[0]:
            best = (sse, float(decay), a)
    return best[1], best[2]


def wakeup_table(reals, member=None) -> tuple[list[dict], float]:
    """The wake-up measured in `reals` (open-loop runs): the points of the table and the decay; `member` (the
    member-idle table's ``(idle_ms, factor)``, or None) is taken out of the runs first (`warmup_excess`).

    Per bucket of `WAKEUP_EDGES_MS` holding at least `MIN_WOKEN` busy periods after idle, a point: the median idle
    time (ms) of its periods, the factor ``1 + a`` of `fit_decay` (fitted over those buckets with one decay) and
    the count. Buckets whose factor is not > 0 (no slowdown the engines can take) are left out; factors below 1
    are kept. No point: decay 0.
    """
    parts = [warmup_excess(real, member) for real in reals]
    gap_ms, position, excess = (np.concatenate([p[i] for p in parts]) if parts else np.zeros(0) for i in range(3))
    position = position.astype(np.int64)
    first = position == 0
    bucket = np.digitize(gap_ms, WAKEUP_EDGES_MS[1:-1], right=True)
    periods = np.bincount(bucket[first], minlength=len(WAKEUP_EDGES_MS) - 1)
    used = periods[bucket] >= MIN_WOKEN
    if not used.any():
        return [], 0.0
    decay, a = fit_decay(bucket[used], position[used], excess[used])
    points = []
    for b in range(len(WAKEUP_EDGES_MS) - 1):
        factor = 1.0 + float(a[b]) if b < a.size and periods[b] >= MIN_WOKEN else 0.0
        if factor > 0.0:
            at = first & (bucket == b)
            points.append({"idle_ms": float(np.median(gap_ms[at])), "factor": factor, "requests": int(periods[b]),
                           "bucket_ms": [WAKEUP_EDGES_MS[b], _finite_or_none(WAKEUP_EDGES_MS[b + 1])]})
    return points, (decay if points else 0.0)


def _finite_or_none(x: float):
    return x if np.isfinite(x) else None
