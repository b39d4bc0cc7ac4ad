"""Diagnostics of a real-vs-simulated error: what the simulator predicts given what the host did during the run.

The headline comparison simulates a real run from a profile measured before it. Two diagnostics separate the
model of time from the host's drift (on a shared virtual machine the speed of the same forward pass changes by
tens of percent from one second to the next, with no trace in the guest's CPU accounting):

- **speed-calibrated**: the profile's latency tables scaled by the run's own mean stage time per model (and the
  decision overhead by the run's mean decision time), the policy's estimates left as they were (the real policy
  used them). What remains is the error of the latency distribution's shape and of the queueing model.
- **service replay**: the run's own service time of each request (finish - start) through a single FIFO server
  (the Lindley recursion, `simulator.floor.lindley`, or its closed-loop form). What remains is what the worker
  pays between requests (its loop, waking up), which the profile's dispatch overhead stands for.

A third shows what the host's costs besides the stages change: **bare** (`without_host_costs`), the simulation
without the profile's wake-up after idle, dispatch overheads, per-model decision overheads and speed process."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from simulator.floor import lindley
from simulator.inputs import SimulationInputs


def speed_factors(real, models: tuple, profile, waited_only: bool = False) -> tuple[np.ndarray, float]:
    """Per stage: the run's mean compute time of the stage's model over the profile's mean; and the run's mean
    decision time over the profile's decision overhead after the same stages (each model's own where it has one).

    ``waited_only``: from the stages of the requests that waited in the queue, the ones the profile's wake-up
    slowdown leaves alone (1.0 where none waited).
    """
    times = real.stage_times
    rows = real.waited[times.request] if waited_only else np.ones(times.stage.shape[0], dtype=bool)
    stage_model = np.array(models, dtype=object)[times.stage]
    per_model = {}
    for model in set(models):
        measured = times.compute_s[rows & (stage_model == model)]
        profiled = profile.entry(model, 1).latency.icdf_ms().mean() / 1000.0
        per_model[model] = measured.mean() / profiled if measured.size else 1.0
    overhead_s = np.array([profile.decision_overhead_for(m) for m in stage_model[rows]]) / 1000.0
    decision = times.decision_s[rows].sum() / overhead_s.sum() if overhead_s.sum() > 0 else 1.0
    return np.array([per_model[m] for m in models]), float(decision)


def calibrated(inputs: SimulationInputs, stage_factors: np.ndarray, decision_factor: float) -> SimulationInputs:
    """`inputs` with the device's latencies scaled per stage and its decision overhead scaled; the estimates that
    the policy reads stay unchanged."""
    tables = inputs.devices[0]
    scaled = replace(tables, latency_s=tables.latency_s * stage_factors[:, None, None],
                     overhead_s=tables.overhead_s * decision_factor)
    return replace(inputs, devices=(scaled,))


def scaled(inputs: SimulationInputs, factor: float) -> SimulationInputs:
    """`inputs` with every stage's latency and the decision overhead scaled by one `factor` (`calibrated`)."""
    return calibrated(inputs, np.full(inputs.devices[0].latency_s.shape[0], factor), factor)


def without_host_costs(inputs: SimulationInputs, overhead_ms: float) -> SimulationInputs:
    """`inputs` as a profile without the host's other costs gives them: the decision overhead `overhead_ms` after
    every stage, no dispatch overhead, no wake-up slowdown, no speed process; the estimates that the policy reads
    stay unchanged."""
    tables = inputs.devices[0]
    plain = replace(tables, overhead_s=np.full_like(tables.overhead_s, overhead_ms / 1000.0), dispatch_overhead_s=0.0,
                    idle_dispatch_s=0.0, release_cost_s=0.0,
                    wakeup_idle_s=np.array([np.inf]), wakeup_factor=np.array([1.0]),
                    member_idle_s=np.array([np.inf]), member_factor=np.array([1.0]), speed_noise=None)
    return replace(inputs, devices=(plain,), speed=None)


def replay_service_ms(real, clients: int) -> np.ndarray:
    """Latencies (ms) of a single FIFO server fed the run's arrivals (open loop; or `clients` closed-loop clients)
    and the run's own service times."""
    req = real.requests
    service = req.finish_s - req.start_s
    if clients:
        finish = np.cumsum(service)
        arrival = np.concatenate([np.zeros(min(clients, finish.size)), finish[:-clients]])
        return (finish - arrival) * 1000.0
    start, finish = np.empty_like(service), np.empty_like(service)
    lindley(np.ascontiguousarray(req.arrival_s), np.ascontiguousarray(service), start, finish)
    return (finish - req.arrival_s) * 1000.0
