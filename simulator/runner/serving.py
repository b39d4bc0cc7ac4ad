"""The serving factor: how much slower the worker serves open-loop arrivals than the closed-loop profile says,
beyond what the profile's own model of the host explains.

The profile's stage latencies come from a closed loop, where the worker never waits for work. Under open-loop
arrivals it does, and with a dispatcher thread (``release = "thread"``) another thread of the process wakes for
every arrival; on this host the worker's stages then run slower even deep inside busy periods (the validation
report's ``thread-50``: 1.35-1.75x the closed loop's stage time). The profile's wake-up table, speed process and
dispatch overhead cover part of the difference; the serving factor is the rest.

Measured by indirect inference on the open-loop profiling runs (`simulator.runner.profiling`), so that what the
model already explains is not counted twice:

- the statistic: the worker's busy time per request that waited in the queue (its finish minus the previous
  request's finish: dispatch, stages and decisions), over every such request of a run (`queued_busy_ms`);
- the real runs' statistic over the simulations' (the same arrivals, samples and stages, simulated on the profile
  with its host costs, median over `SEEDS` seeds of the service-time draws and the speed process). The simulations
  make the same selection as the real runs (slow phases make queues), so the ratio is free of it.

Closed-loop bursts right before, between and after the open-loop runs measure the host's speed level during each
against the profile (`levels_between`), as the bursts before `flexsim validate`'s real runs do. With poll release
the factor is then mostly the drift those levels show: ``factor_at_levels``, fitted with each run simulated at its
level, is what open-loop serving costs beyond it. That one was what the validation used in run Q
(`docs/validation-history.md`), and re-simulated with the factor without levels, 6 of Q's 8 open-loop scenarios
came out closer to their real runs' mean latency: on this host the drift is persistent (a host that slowed after
the first profiles stayed slow through the runs), so the drift in the seconds after the closed-loop profile says
more about the runs, minutes later, than nothing. So ``factor`` is the one the profile's prediction uses. Since
2026-12-06 (run Y) the verdict's prediction measures the drift apart, as the host's speed level over the session
(the bursts before the real runs, `simulator.runner.validation.session_simulations`), and so took
``factor_at_levels``, what serving costs beyond it; since run AX it takes the same fitted on the scenario's own
profiling run (`fit_own_run_factor`), which serves the way the real runs do.

The same runs give the speed-level uncertainty of `flexsim validate`'s simulated bands (`level_sigma`): with poll
release each run's ratio at factor 1 (``ratio_at_one``) is the host's speed drift between the closed-loop
profiling run and that open-loop run, seconds later; the root mean square of their logs, pooled over the session's
profiles, is the ``level_sigma`` of the speed process the scenarios are simulated with (`simulator.speed`). Drift
over the minutes between a profile and its real runs is larger: an underestimate.

The factor scales every stage's latency and decision overhead of an open-loop scenario
(`simulator.runner.validation.serving_factor`, `simulator.runner.calibrate.calibrated`); a closed loop keeps the
profile as measured. With poll release a queued request is served as in the closed loop (one thread, stages back to
back), so there the factor is mostly the host's drift between the closed-loop profiling run and the open-loop ones,
seconds later. It was first applied with thread release only; in two validation runs (D and E,
`docs/validation-history.md`) the poll factors tracked the real runs' speed against the profile (0.80-0.92 where the
runs were 5-22% faster, 1.11-1.42 where they were up to 29% slower, with exceptions), so it is applied to every open
loop since (a choice made on those runs; run Q's comparison above agrees with it).
"""

from __future__ import annotations

import numpy as np

from simulator.errors import require

#: Seeds of the simulations of each profiling run.
SEEDS = 5
#: Rounds of the fit: the factor changes the simulated load, hence the queues; a second round re-simulates with it.
ROUNDS = 2
METHOD = ("real busy time per queued request (finish minus the previous finish) in the open-loop profiling runs "
          f"over the simulated one (same arrivals and samples, the profile with its host costs, median of {SEEDS} "
          f"seeds), {ROUNDS} rounds; factor_at_levels: the same with each run simulated at the host's speed level "
          f"during it (the geometric mean of closed-loop bursts right before and after it) "
          "(simulator/runner/serving.py)")


def queued_busy_ms(arrival_s: np.ndarray, finish_s: np.ndarray) -> tuple[float, int]:
    """The worker's busy time (ms) summed over the requests that waited in the queue (arrived no later than the
    previous request's finish), and their count. One FIFO worker: requests finish in index order."""
    waited = arrival_s[1:] <= finish_s[:-1]
    busy_s = np.diff(finish_s)[waited]
    return float(busy_s.sum() * 1000.0), int(waited.sum())


def per_request_ms(records) -> float:
    """Mean busy time (ms) per queued request of `records` (a run's `RequestRecords`); NaN where none waited."""
    total_ms, count = queued_busy_ms(records.arrival_s, records.finish_s)
    return total_ms / count if count else float("nan")


def fit_serving_factor(reals: list, simulate, levels=None) -> dict:
    """The serving factor of the real open-loop runs `reals` (`RealRun`s).

    ``simulate(i, seed, scale)`` returns the simulated `RequestRecords` of run ``i`` with every stage scaled by
    ``scale``. Returns ``{"factor", "real_ms", "simulated_ms", "ratio_at_one", "queued_requests", "method"}``:
    busy time per queued request of each run, real and simulated (in the last round, before its correction of the
    factor), and their ratio at factor 1; factor 1.0 where no request waited. With `levels` (the host's speed
    level during each run against the profile, `levels_between`) also ``"levels"`` and ``"factor_at_levels"``,
    the factor fitted with the simulations at those levels: what open-loop serving costs beyond the host's drift
    (a diagnostic: the validation uses ``"factor"``, module docstring)."""
    real_ms = np.array([per_request_ms(r.requests) for r in reals])
    factor, simulated, ratio_at_one = _fit(real_ms, simulate, np.ones(len(reals)))
    facts = {"factor": factor, "real_ms": _listed(real_ms), "simulated_ms": _listed(simulated),
             "ratio_at_one": _listed(ratio_at_one),
             "queued_requests": [queued_busy_ms(r.requests.arrival_s, r.requests.finish_s)[1] for r in reals],
             "method": METHOD}
    if levels is not None:
        levels = np.asarray(levels, dtype=float)
        require(levels.shape == (len(reals),) and np.all(np.isfinite(levels) & (levels > 0)),
                f"serving factor: need one positive level per run, got {levels.tolist()}")
        facts.update(levels=_listed(levels), factor_at_levels=_fit(real_ms, simulate, levels)[0])
    return facts


OWN_RUN_METHOD = ("the scenario's own profiling run (its policy and arrivals): real busy time per queued request "
                  f"over the simulated one (its arrivals and samples, the final profile at the host's speed level of "
                  f"the burst right before it times the factor, median of {SEEDS} seeds), {ROUNDS} rounds "
                  "(simulator/runner/serving.py)")


def fit_own_run_factor(run, simulate, level: float) -> dict:
    """The serving factor beyond the host's drift of the scenario's own profiling run `run` (a `RealRun`: its
    policy and arrivals, `simulator.runner.profiling.policy_run`), the one the verdict's prediction takes
    (`simulator.runner.validation.verdict_serving_factor`). ``simulate(seed, scale)`` returns the simulated
    `RequestRecords` of the run with every stage scaled by ``scale``; `level`: the host's speed level of the burst
    right before the run. Returns ``{"factor_at_level", "real_ms", "simulated_ms", "level", "queued_requests",
    "method"}`` (factor 1.0 where no request waited).

    Why the own run: the every-stage runs (`fit_serving_factor`) serve every stage of every request, so they release
    requests several times more rarely than the scenario does, and with a dispatcher thread every release wakes a
    thread of the worker's process; their factor under-stated the scenario's own serving (run AV's ``thread-50``:
    1.002 against 1.083; `docs/validation-history.md`, the rule fixed before run AW)."""
    require(np.isfinite(level) and level > 0, f"serving factor: need a positive level, got {level}")
    real_ms = np.array([per_request_ms(run.requests)])
    factor, simulated, _ = _fit(real_ms, lambda i, seed, scale: simulate(seed, scale), np.array([float(level)]))
    return {"factor_at_level": factor, "real_ms": _listed(real_ms)[0], "simulated_ms": _listed(simulated)[0],
            "level": float(level), "queued_requests": queued_busy_ms(run.requests.arrival_s,
                                                                     run.requests.finish_s)[1],
            "method": OWN_RUN_METHOD}


def _fit(real_ms: np.ndarray, simulate, levels: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The factor that makes the simulations (run ``i`` at ``factor * levels[i]``) serve the runs' queued requests
    in their real busy time, the last round's simulated busy times and the first round's real / simulated."""
    used = np.isfinite(real_ms)
    factor, simulated, first = 1.0, np.full(real_ms.size, np.nan), np.full(real_ms.size, np.nan)
    for round_ in range(ROUNDS if used.any() else 0):
        simulated = np.array([np.median([per_request_ms(simulate(i, seed, factor * levels[i]))
                                         for seed in range(SEEDS)]) if used[i] else np.nan
                              for i in range(real_ms.size)])
        ok = used & np.isfinite(simulated)
        if not ok.any():
            return 1.0, simulated, first
        if round_ == 0:
            first = real_ms / simulated
        factor *= float(np.sum(real_ms[ok]) / np.sum(simulated[ok]))
    return factor, simulated, first


def _listed(x) -> list:
    return [float(v) if np.isfinite(v) else None for v in x]


def levels_between(burst_levels) -> np.ndarray:
    """The host's speed level during each of consecutive runs, from closed-loop bursts before the first, between
    each two and after the last (`burst_levels`, one more than the runs): the geometric mean of the bursts on
    either side of a run."""
    at = np.asarray(burst_levels, dtype=float)
    require(at.size >= 2 and np.all(np.isfinite(at) & (at > 0)),
            f"speed levels: need at least two positive burst levels, got {at.tolist()}")
    return np.sqrt(at[:-1] * at[1:])


def level_sigma(ratios) -> float:
    """The host's speed-level uncertainty from runs' speed ratios against their profile (e.g. the ``ratio_at_one``
    of poll-release profiling runs, which serve as the closed loop does): the root mean square of their logs;
    0.0 for none."""
    logs = np.log([r for r in ratios if r is not None and np.isfinite(r) and r > 0])
    return float(np.sqrt(np.mean(logs ** 2))) if logs.size else 0.0
