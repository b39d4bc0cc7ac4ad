"""The host's speed process (`simulator.speed`), fitted on the stage logs of real runs.

Per stage run ``i``, the residual ``y_i`` is the log of its compute + decision time less the mean log of its class:
its stage, and, early in a busy period (position below `simulator.runner.idle.WARM_FROM_STAGE`), its position and
the bucket of idle time before the period (so the wake-up after idle, which the profile models apart, is not taken
for a slow phase). Model: ``y = s(t) + e``, ``s`` an Ornstein-Uhlenbeck process (``sigma``, ``correlation_ms``) in
time and ``e`` independent noise. The covariance of two residuals of one run ``h`` ms apart is then
``sigma**2 * exp(-h / correlation_ms)``. The pairs are grouped by their distance ``k`` in stage runs (one run,
serving order; `DISTANCE_BINS` distances spaced logarithmically up to the stage runs of `MAX_LAG_MS`): per
distance, the mean product of the two residuals is fitted with SciPy (each distance weighs the same) as
``sigma**2`` times the mean of ``exp(-h / correlation_ms)`` over that distance's pairs' lags ``h``.

Why by distance, not by lag: the lag from a stage run to the next is that stage run's own duration, so pairs
binned by their lag are selected by their first residual. A bin just above the typical stage time holds the
pairs whose first stage was slow, and with any short-range correlation its mean product is a multiple of the
covariance (run AB's `open-80` real runs: 1.8 times the residuals' variance in the 0.5-0.6 ms bin, against 0.19
for neighbours in serving order). Fitted with every lag bin weighing the same (until 2026-12-06), the process took
the whole stage variance with a correlation time of 1-3 ms (7 of run AB's 9 profiles: ``sigma`` equal to the
stage times' standard deviation), and the simulations served consecutive requests at far more correlated speeds
than the real runs (`docs/validation-history.md`, "The speed process's fit"). A distance is not chosen by the
residuals, and the model takes each distance's lags as they are.

Slow phases (`simulator.speed`): the residuals' mean over windows of `SLOW_WINDOW_MS`, or `WINDOW_STAGES` stage
runs where those are longer (windows of fewer than `MIN_WINDOW_STAGES` stage runs are not used), against the median
window of the run; a window more than `SLOW_THRESHOLD` times slower is slow, consecutive slow windows are one
phase. ``slow_share`` = slow windows / windows, ``slow_factor`` = the slow windows' mean over the others'
(geometric), ``slow_ms`` = window x slow windows / phases; none where fewer than `MIN_SLOW_PHASES` phases are seen
or they last fewer than `MIN_PHASE_WINDOWS` windows on average. The stage runs in slow windows then have
``log(slow_factor)`` taken off their residuals (centred again) before the covariance is fitted, so the process does
not count the phases twice.

Slower phases of the seconds scale (not part of the profile's process): the same residuals' mean over windows of
`LONG_WINDOW_MS` (`window_levels`), each against the run's median window; a window more than `LONG_SLOW_THRESHOLD`
times slower counts as slow (`long_slow_share`). The real runs of the validation show such phases (250-1000 ms at
1.1-1.3x, a few percent of the time) that the slow phases above, of 20 ms windows at 1.3x, do not catch, and at
80% load one of them doubles a run's mean latency; the profiles record the levels of their profiling runs' windows,
the report sets them beside the real runs' (`docs/validation-history.md`, run AJ), `flexsim validate` pools them over
a session's profiling runs into the verdict's long phases (`simulator.runner.validation.session_long_phases`), and
the idle tables take them out of the stage runs they compare (`stage_levels`, a two-way fit of class and window).

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

#: The largest typical lag (ms) between two stage runs whose covariance is used: the farthest distance is the stage
#: runs of this long at the runs' median stage period.
MAX_LAG_MS = 1000.0
#: Distances (stage runs apart) used, spaced logarithmically from 1 (finer where the covariance changes fastest).
DISTANCE_BINS = 32
#: Quantiles of a distance's lags that stand for them in the model's mean of exp(-lag / correlation).
LAG_QUANTILES = 200
#: Fewest stage runs a fit needs, and pairs a distance needs to be used.
MIN_STAGES = 200
MIN_PAIRS = 50
#: A fitted sigma below this is no process (speeds within a fraction of a percent).
MIN_SIGMA = 0.005
#: Slow phases: the shortest window (ms), the stage runs a window spans at least (it widens for long stages), the
#: fewest a window needs, how much slower than the run's median window a slow one is, the fewest phases a fit
#: needs, and the fewest windows a phase must last on average (shorter ones cannot be told from slow stages).
SLOW_WINDOW_MS = 20.0
WINDOW_STAGES = 5
MIN_WINDOW_STAGES = 3
SLOW_THRESHOLD = 1.3
MIN_SLOW_PHASES = 5
MIN_PHASE_WINDOWS = 2.0
#: Windows (ms) of the slower phases of the seconds scale (`window_levels`), and how much slower than the run's
#: median window one is counted slow (`long_slow_share`).
LONG_WINDOW_MS = 250.0
LONG_SLOW_THRESHOLD = 1.1
#: Rounds of backfitting of `stage_levels`' two-way fit (class means and window levels).
LEVEL_ROUNDS = 10

METHOD = ("covariance of log(stage time over its class's typical time) between stage runs of one run, grouped by their "
          f"distance in stage runs (up to {MAX_LAG_MS:.0f} ms at the median period), fitted as sigma^2 times the mean "
          "of exp(-lag / correlation) over each distance's pairs; class = "
          "stage, and early in a busy period its position and the idle time before the period; slow phases: "
          f"windows of {SLOW_WINDOW_MS:.0f} ms (or {WINDOW_STAGES} stage runs) more than {SLOW_THRESHOLD}x slower "
          "than the run's median window, their offset taken off before the covariance "
          "(simulator/runner/speed_fit.py)")


def log_times(run) -> tuple[np.ndarray, np.ndarray]:
    """Per stage run of `run` (serving order): the log of its compute + decision time and its class (see the module
    docstring), an index from 0."""
    from simulator.runner.idle import WAKEUP_EDGES_MS, WARM_FROM_STAGE, busy_periods

    times = run.stage_times
    position, gap_ms = busy_periods(run)
    gap_ms = np.nan_to_num(gap_ms, nan=np.inf)
    early = position < WARM_FROM_STAGE
    bucket = np.where(early, np.digitize(gap_ms, WAKEUP_EDGES_MS[1:-1], right=True), -1)
    key = (times.stage.astype(np.int64) * (WARM_FROM_STAGE + 1) + np.minimum(position, WARM_FROM_STAGE)) \
        * (len(WAKEUP_EDGES_MS) + 1) + bucket + 1
    return np.log(times.compute_s + times.decision_s), np.unique(key, return_inverse=True)[1]


def class_means(y: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """Per stage run: the mean of `y` over its class `cls`."""
    return (np.bincount(cls, weights=y) / np.bincount(cls))[cls]


def log_residuals(run) -> np.ndarray:
    """Per stage run of `run` (serving order): log of its compute + decision time less the mean of its class
    (see the module docstring)."""
    y, cls = log_times(run)
    return y - class_means(y, cls)


def median_period_ms(runs) -> float | None:
    """The median time (ms) from a stage run's start to the next one's over `runs`; None for none."""
    periods = np.concatenate([np.diff(run.stage_times.start_s) for run in runs]) * 1000.0
    return float(np.median(periods)) if periods.size else None


def distances(runs) -> np.ndarray:
    """The distances (stage runs apart) of `distance_covariance` for `runs`: `DISTANCE_BINS` values spaced
    logarithmically from 1 to the stage runs of `MAX_LAG_MS` at the runs' median stage period."""
    period = median_period_ms(runs)
    period = MAX_LAG_MS if period is None else period
    farthest = max(1, int(MAX_LAG_MS / max(period, 1e-6)))
    return np.unique(np.round(np.geomspace(1, farthest, DISTANCE_BINS)).astype(np.int64))


def distance_covariance(runs, residuals) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per distance ``k`` of `distances`: the mean product of two residuals (`log_residuals` of each of `runs`, in
    `residuals`) ``k`` stage runs apart in one run, the `LAG_QUANTILES` quantiles of those pairs' lags (ms; one
    row per distance) and the number of pairs."""
    probabilities = (np.arange(LAG_QUANTILES) + 0.5) / LAG_QUANTILES
    ks = distances(runs)
    product, lags, pairs = np.zeros(ks.size), np.zeros((ks.size, LAG_QUANTILES)), np.zeros(ks.size)
    for j, k in enumerate(ks):
        products, lag_ms = [], []
        for run, y in zip(runs, residuals):
            t_ms = run.stage_times.start_s * 1000.0
            products.append(y[:-k] * y[k:])
            lag_ms.append(t_ms[k:] - t_ms[:-k])
        products, lag_ms = np.concatenate(products), np.concatenate(lag_ms)
        pairs[j] = products.size
        if products.size:
            product[j], lags[j] = products.mean(), np.quantile(lag_ms, probabilities)
    return product, lags, pairs


def window_ms(runs) -> float:
    """The slow phases' window (ms) for `runs`: `SLOW_WINDOW_MS`, or `WINDOW_STAGES` median stage periods."""
    period = median_period_ms(runs)
    return max(SLOW_WINDOW_MS, WINDOW_STAGES * period if period is not None else 0.0)


def slow_windows(run, y: np.ndarray, width_ms: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per stage run of `run` (residuals `y`): its window (of `width_ms`) index; per window: its mean residual less
    the run's median window, and whether it is valid (at least `MIN_WINDOW_STAGES` stage runs)."""
    t_ms = run.stage_times.start_s * 1000.0
    window = ((t_ms - t_ms[0]) // width_ms).astype(np.int64)
    counts = np.bincount(window)
    means = np.bincount(window, weights=y) / np.maximum(counts, 1)
    valid = counts >= MIN_WINDOW_STAGES
    relative = means - (np.median(means[valid]) if valid.any() else 0.0)
    return window, np.where(valid, relative, 0.0), valid


def window_levels(run, width_ms: float = LONG_WINDOW_MS) -> np.ndarray:
    """Per window of `width_ms` of `run` with at least `MIN_WINDOW_STAGES` stage runs: how many times as long its
    stage runs took as in the run's median window (the geometric mean of their `log_residuals`' ratio)."""
    _, relative, valid = slow_windows(run, log_residuals(run), width_ms)
    return np.exp(relative[valid])


def stage_levels(run, width_ms: float = LONG_WINDOW_MS) -> np.ndarray:
    """Per stage run of `run` (serving order): the level of its window of `width_ms` against the run's median
    window (1 in a window of fewer than `MIN_WINDOW_STAGES` stage runs), from the two-way fit of each log time as
    its class's mean plus its window's level (`LEVEL_ROUNDS` rounds of backfitting). Dividing a stage run's time by
    it takes the host's slower phases of the seconds scale out (`simulator.runner.idle`).

    Unlike `window_levels` (one pass: class means first), the class means are taken over the times without their
    windows' levels: where a class occurs mostly in one phase (at a low load the stage runs deep in a busy period
    come in the long busy periods, which a slower phase makes), a class mean of the raw times takes the phase in
    and leaves little of it to the window."""
    y, cls = log_times(run)
    window, level, _ = slow_windows(run, y - class_means(y, cls), width_ms)      # the first round: one pass
    for _ in range(LEVEL_ROUNDS - 1):
        level = slow_windows(run, y - class_means(y - level[window], cls), width_ms)[1]
    return np.exp(level[window])


def long_slow_share(levels) -> tuple[float | None, int]:
    """The share of the windows (`window_levels`, pooled) more than `LONG_SLOW_THRESHOLD` times slower than their
    run's median window, and the number of windows (None for none)."""
    levels = np.concatenate([np.asarray(x, dtype=float) for x in levels]) if len(levels) else np.zeros(0)
    return (float(np.mean(levels > LONG_SLOW_THRESHOLD)) if levels.size else None), int(levels.size)


def phase_facts(relative, valid, slow, width_ms: float) -> dict:
    """Slow phases from windows of `width_ms`, per run: each window's log level against the run's median window
    (`relative`), whether it counts (`valid`) and whether it is slow (`slow`, valid ones only). ``slow_factor``:
    the slow windows' mean level over the others' (geometric); ``slow_share``: slow windows / windows;
    ``slow_ms``: window x slow windows / phases (consecutive slow windows are one phase); ``phases``."""
    n_slow = sum(int(s.sum()) for s in slow)
    n_valid = sum(int(v.sum()) for v in valid)
    phases = sum(int((s & ~np.concatenate([[False], s[:-1]])).sum()) for s in slow)
    if not phases:
        return {"slow_factor": 1.0, "slow_share": 0.0, "slow_ms": 0.0, "phases": 0, "window_ms": width_ms}
    in_slow = np.concatenate([r[s] for r, s in zip(relative, slow)])
    outside = np.concatenate([r[v & ~s] for r, v, s in zip(relative, valid, slow)])
    return {"slow_factor": float(np.exp(in_slow.mean() - outside.mean())), "slow_share": n_slow / n_valid,
            "slow_ms": width_ms * n_slow / phases, "phases": phases, "window_ms": width_ms}


def long_phases(levels, width_ms: float = LONG_WINDOW_MS) -> dict:
    """`phase_facts` of the slower phases of the seconds scale in runs' `window_levels` (one sequence per run):
    windows more than `LONG_SLOW_THRESHOLD` times slower than their run's median window."""
    relative = [np.log(np.asarray(x, dtype=float)) for x in levels]
    return phase_facts(relative, [np.ones(r.size, dtype=bool) for r in relative],
                       [r > np.log(LONG_SLOW_THRESHOLD) for r in relative], width_ms)


def slow_phase_windows(runs, residuals) -> tuple[dict, list, list]:
    """The slow phases of `runs` (their `log_residuals` in `residuals`; see the module docstring), however few:
    `phase_facts` pooled over the runs' windows, and per run its windows (`slow_windows`) and which are slow."""
    width_ms = window_ms(runs)
    per_run = [slow_windows(run, y, width_ms) for run, y in zip(runs, residuals)]
    slow = [valid & (relative > np.log(SLOW_THRESHOLD)) for _, relative, valid in per_run]
    return phase_facts([r for _, r, _ in per_run], [v for _, _, v in per_run], slow, width_ms), per_run, slow


def fit_slow_phases(runs, residuals) -> tuple[dict | None, list]:
    """The slow phases of `runs` (their `log_residuals` in `residuals`; see the module docstring) as
    ``{"slow_factor", "slow_share", "slow_ms", "phases"}`` or None (fewer than `MIN_SLOW_PHASES` phases, or shorter
    than `MIN_PHASE_WINDOWS` windows on average), and the residuals with the phases' offset taken off."""
    facts, per_run, slow = slow_phase_windows(runs, residuals)
    if facts["phases"] < MIN_SLOW_PHASES or facts["slow_ms"] < MIN_PHASE_WINDOWS * facts["window_ms"]:
        return None, residuals
    log_factor = np.log(facts["slow_factor"])
    adjusted = [y - np.where(s[w], log_factor, 0.0) for y, (w, _, _), s in zip(residuals, per_run, slow)]
    return facts, [a - a.mean() for a in adjusted]        # centred again: the phases' share is no offset


def run_speed_facts(run) -> dict:
    """What the host's speed did during one run, for the validation report: the process `fit_speed_noise` fits on
    the run alone (``sigma`` and ``correlation_ms``, None where it finds none; as in a profile, its slow phases are
    taken out of sigma only where they pass `MIN_SLOW_PHASES` and `MIN_PHASE_WINDOWS`) and the run's slow phases
    however few (`slow_phase_windows`: ``slow_share`` of its ``windows`` that count, ``slow_factor``, ``phases``,
    ``window_ms``), rounded to 4 decimals."""
    noise, _ = fit_speed_noise([run])
    phases, per_run, _ = slow_phase_windows([run], [log_residuals(run)])
    figures = {"sigma": None if noise is None else noise.sigma,
               "correlation_ms": None if noise is None else noise.correlation_ms,
               **{k: phases[k] for k in ("slow_share", "slow_factor", "window_ms")}}
    return {**{k: None if v is None else round(float(v), 4) for k, v in figures.items()},
            "phases": int(phases["phases"]), "windows": int(sum(valid.sum() for _, _, valid in per_run))}


def fit_speed_noise(runs) -> tuple[SpeedNoise | None, dict]:
    """The host's speed process during `runs` and the fit's figures; None when they are too short or show no slow
    variation."""
    stages = sum(run.stage_times.stage.size for run in runs)
    if stages < MIN_STAGES:
        return None, {"stages": int(stages), "reason": f"fewer than {MIN_STAGES} stage runs"}
    raw = [log_residuals(run) for run in runs]
    residuals = np.concatenate(raw)
    slow, per_run = fit_slow_phases(runs, raw)
    covariance, lag_ms, pairs = distance_covariance(runs, per_run)
    used = pairs >= MIN_PAIRS
    duration_ms = max(float(np.ptp(run.stage_times.start_s)) * 1000.0 for run in runs)
    stage_ms = duration_ms / max(max(run.stage_times.stage.size for run in runs) - 1, 1)
    facts = {"total_sd": float(residuals.std()), "stage_ms": stage_ms, "stages": int(stages),
             "runs": len(runs), "method": METHOD, **(slow or {})}
    if used.sum() < 3:
        return None, {**facts, "reason": "too few distances with enough pairs"}
    lag_ms = lag_ms[used]

    def model(row, var, corr):
        return var * np.exp(-lag_ms[row.astype(np.int64)] / corr).mean(axis=1)

    try:
        top = max(residuals.var(), 1e-6)
        (var, corr), _ = curve_fit(model, np.arange(lag_ms.shape[0], dtype=float), covariance[used],
                                   p0=[min(max(covariance[used][0], 0.0), top), 50.0],
                                   bounds=([0.0, 0.1], [top, 10 * MAX_LAG_MS]))
    except (RuntimeError, ValueError) as exc:
        return None, {**facts, "reason": f"fit failed: {exc}"}
    facts.update(sigma=float(np.sqrt(var)), correlation_ms=float(corr))
    sigma = facts["sigma"] if facts["sigma"] >= MIN_SIGMA else 0.0
    if sigma == 0.0 and slow is None:
        return None, {**facts, "reason": f"no slow variation (sigma < {MIN_SIGMA}, no slow phases)"}
    phases = (slow["slow_factor"], slow["slow_share"], slow["slow_ms"]) if slow else ()
    return SpeedNoise(sigma, float(corr), 0.0, *phases), facts


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
