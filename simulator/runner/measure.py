"""Device profiles of the runner's own stages, from its own measurements (profile schema v1, source "measured").

Two steps, both on the stage callables that real runs use:

- `bootstrap_profile`: each model's stage called back to back (forward + copy to host), no decision overhead. It
  only lets `simulator.run.prepare` build the inputs of the profiling runs.
- `profile_from_runs`: the stage and decision times of closed-loop runs through the worker (`RealRun.stage_times`):
  each model's latency samples are the compute times (forward + copy) of the stages that run it, interleaved with
  the other members and the host's decisions as in a real run; each model's own decision overhead is the mean time
  from the end of its stages' copy to the end of their decision (the host decides more slowly after a heavy
  model), the profile's is the mean over every stage; and the dispatch overhead is what the worker spends per
  request besides its stages (`dispatch_overhead`).
"""

from __future__ import annotations

import datetime
import platform
from dataclasses import replace

import numpy as np

from simulator.profiles import BatchEntry, LatencyDistribution, ModelEntry, Profile
from simulator.runner.worker import CLOCK

#: Latency samples kept per model (evenly spaced over the run) so that profile files stay small.
MAX_SAMPLES = 4000


def time_stage_ms(stage, samples: np.ndarray, calls: int) -> np.ndarray:
    """Host time (ms) of `calls` back-to-back calls of `stage`, cycling over `samples`."""
    times = np.empty(calls)
    for i in range(calls):
        s = int(samples[i % samples.shape[0]])
        t0 = CLOCK()
        stage(s)
        times[i] = CLOCK() - t0
    return times * 1000.0


def _entry(samples_ms: np.ndarray, info: dict, busy_power_w: float | None = None,
           decision_overhead_ms: float | None = None) -> ModelEntry:
    """A batch-1 entry; energy per call = busy power x mean latency where the busy power was measured."""
    energy_j = None if busy_power_w is None else busy_power_w * float(samples_ms.mean()) / 1000.0
    if samples_ms.shape[0] > MAX_SAMPLES:
        samples_ms = samples_ms[np.linspace(0, samples_ms.shape[0] - 1, MAX_SAMPLES).astype(int)]
    latency = LatencyDistribution(samples_ms=np.round(samples_ms, 6))
    return ModelEntry(batches={1: BatchEntry(latency=latency, energy_j=energy_j)}, info=info,
                      decision_overhead_ms=decision_overhead_ms)


def _profile(name: str, device: dict, overhead_ms: float, method: str, models: dict, extra: dict,
             idle_power_w: float | None = None) -> Profile:
    import torch

    from simulator.profiler.allocator import allocator_facts

    provenance = {"source": "measured", "method": method, "allocator": allocator_facts(),
                  "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
                  "software": {"torch": torch.__version__, "python": platform.python_version()},
                  "host": platform.node(), **extra}
    return Profile(name=name, device=device, idle_power_w=idle_power_w, decision_overhead_ms=float(overhead_ms),
                   provenance=provenance, models=models)


def bootstrap_profile(name: str, device: dict, stage_of_model: dict, samples: np.ndarray, calls: int) -> Profile:
    """A profile of each model's stage timed back to back (`calls` calls), without decision overhead."""
    models = {model: _entry(time_stage_ms(stage, samples, calls), {"measured": "back to back"})
              for model, stage in stage_of_model.items()}
    return _profile(name, device, 0.0, "runner stages timed back to back (bootstrap for the profiling runs)",
                    models, {})


def busy_power_w(runs) -> float | None:
    """Average device power (W) over closed-loop runs whose energy was measured (None if any was not)."""
    energy = [run.measured_energy_j for run, _ in runs]
    if any(e is None for e in energy):
        return None
    return float(sum(energy) / sum(run.host.wall_s for run, _ in runs))


def profile_from_runs(name: str, device: dict, runs, idle_power_w: float | None = None) -> Profile:
    """A profile from closed-loop runs: ``runs`` is a list of ``(RealRun, models)`` where ``models[k]`` is the
    profile model of stage k.

    Where the runs' device energy was measured (NVML, RAPL) and `idle_power_w` is given, each model's energy per
    call is the runs' average (busy) power times its mean latency: the counters advance too coarsely to measure
    one call, and a closed loop keeps the device busy.
    """
    power = busy_power_w(runs) if idle_power_w is not None else None
    compute, decision = _per_model(runs, "compute_s"), _per_model(runs, "decision_s")
    models = {model: _entry(compute[model], {"measured": "closed-loop runs through the worker"}, power,
                            float(decision[model].mean())) for model in compute}
    decision_ms = np.concatenate(list(decision.values()))
    stats = {"p50": float(np.median(decision_ms)), "p90": float(np.quantile(decision_ms, 0.9)),
             "mean": float(decision_ms.mean()), "n": int(decision_ms.size),
             "mean_per_model": {model: float(ms.mean()) for model, ms in decision.items()}}
    dispatch = dispatch_overhead([run for run, _ in runs])
    method = ("real runner on this host: latency = host time of a stage's forward pass plus the copy of its output "
              "to the host, from closed-loop runs (one client) through the worker, all stages run; decision overhead "
              "= mean host time from the end of that copy to the end of the policy's decision, per model (the "
              "profile's: over every stage); dispatch overhead = mean time between consecutive finishes of requests "
              "that waited in the queue, less their stages' compute and decision")
    extra = {"decision_overhead_measured": stats, "dispatch_overhead_measured": dispatch}
    if power is not None:
        extra["energy_method"] = (f"energy per call = average power over the closed-loop runs ({power:.1f} W) x mean "
                                  "latency; idle power measured while the host slept")
    return replace(_profile(name, device, stats["mean"], method, models, extra, idle_power_w),
                   dispatch_overhead_ms=dispatch["mean"])


def _per_model(runs, column: str) -> dict[str, np.ndarray]:
    """The stage times `column` (ms) of `runs` (``(RealRun, models)`` pairs), pooled by the model of the stage."""
    out = {}
    for run, models in runs:
        times = run.stage_times
        for k, model in enumerate(models):
            out.setdefault(model, []).append(getattr(times, column)[times.stage == k] * 1000.0)
    return {model: np.concatenate(parts) for model, parts in out.items()}


def release_times_s(real) -> np.ndarray:
    """When the requests of `real` were released (its dispatcher thread's release times; without one, their arrival
    times), sorted."""
    lag_s = 0.0 if real.release_lag_s is None else real.release_lag_s
    return np.sort(real.requests.arrival_s + lag_s)


def warm_stage_runs(real) -> np.ndarray:
    """Per stage run of `real`: whether it is not the first of a request that found the worker idle (those pay the
    wake-up and the idle dispatch, modelled apart)."""
    times = real.stage_times
    return real.waited[times.request] | (times.stage > 0)


def release_cost(reals) -> dict:
    """What a request's release costs the busy worker (a dispatcher thread wakes for it, `RealRun.release_lag_s`):
    per stage position, the mean compute + decision time of the stage runs with exactly one release within the
    position's median duration from their start, less that of the runs with none, averaged over the positions
    (weighted by their runs with one). A window of fixed length, not the run's own duration, so that a longer run is
    not more likely to be counted (a run twice as long contains twice as many arrivals). Over the stage runs that
    are not the first of a request that found the worker idle (the wake-up and the idle dispatch are apart).

    Returns ``mean`` (ms, clamped at 0) and ``n`` (stage runs with one release); 0 and 0 without release times
    (poll release) or without runs of either kind.
    """
    excess, count = [], 0
    timed = [real for real in reals if real.release_lag_s is not None]
    for real in timed:
        times = real.stage_times
        released_s = release_times_s(real)
        work_ms = (times.compute_s + times.decision_s) * 1000.0
        used = warm_stage_runs(real)
        for k in np.unique(times.stage[used]):
            at = used & (times.stage == k)
            window_s = np.median(work_ms[at]) / 1000.0
            start_s = times.start_s[at]
            during = np.searchsorted(released_s, start_s + window_s) - np.searchsorted(released_s, start_s,
                                                                                      side="right")
            one, none = work_ms[at][during == 1], work_ms[at][during == 0]
            if one.size and none.size:
                excess.append((one.mean() - none.mean()) * one.size)
                count += one.size
    return {"mean": max(float(sum(excess) / count), 0.0) if count else 0.0, "n": int(count)}


def dispatch_overhead(reals, idle: bool = False) -> dict:
    """What the worker spends per request besides its stages: over the requests of `reals` that waited in the
    queue, the time since the previous finish less the request's stage work (`RealRun.stage_work_s`); with `idle`,
    over the requests that arrived at an idle worker, the time since their arrival less their stage work (what
    waking the server costs: with a dispatcher thread, the worker blocked on the queue is woken by the put).

    Returns ``mean`` (ms, clamped at 0; 0 where no request qualified), ``p50`` and ``n``.
    """
    spent = []
    for real in reals:
        req, waited = real.requests, real.waited
        since_s = req.arrival_s if idle else np.concatenate([[np.nan], req.finish_s[:-1]])
        spent.append((req.finish_s - since_s - real.stage_work_s)[~waited if idle else waited] * 1000.0)
    spent_ms = np.concatenate(spent) if spent else np.zeros(0)
    if spent_ms.size == 0:
        return {"mean": 0.0, "p50": None, "n": 0}
    return {"mean": max(float(spent_ms.mean()), 0.0), "p50": float(np.median(spent_ms)), "n": int(spent_ms.size)}
