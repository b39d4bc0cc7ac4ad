"""Replicas with a queue each: requests assigned to devices on arrival, then each device served on its own.

With ``dispatch = "shared"`` (default) all devices take requests from one queue (inside the engines). With a
static assignment, ``round-robin`` (request ``r`` to device ``r mod D``) or ``random`` (a seeded uniform choice), each
device is an independent single-queue server of its own requests: the inputs are split by device, each part is
simulated by the chosen engine, and the outputs are merged back into request order. Only open loops can be split
(a closed-loop request's id is known only when it arrives).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from simulator.errors import require
from simulator.inputs import SimulationInputs
from simulator.results import RawOutputs

DISPATCHES = ("shared", "round-robin", "random")


def assign_devices(kind: str, n_requests: int, n_devices: int, rng: np.random.Generator) -> np.ndarray | None:
    """The device of each request, or None for a shared queue."""
    require(kind in DISPATCHES, f"invalid dispatch = {kind!r}: must be one of {', '.join(DISPATCHES)}")
    if kind == "shared" or n_devices == 1:
        return None
    if kind == "round-robin":
        return (np.arange(n_requests) % n_devices).astype(np.int16)
    return rng.integers(0, n_devices, size=n_requests).astype(np.int16)


def simulate_split(inputs: SimulationInputs, assignment: np.ndarray, engine) -> RawOutputs:
    """Run `engine` on each device's share of `inputs` and merge the outputs in request order."""
    require(inputs.clients == 0, "dispatch: per-device queues need an open loop (closed loops share one queue)")
    merged = RawOutputs.allocate(inputs)
    logs = []
    for d in range(inputs.n_devices):
        ids = np.flatnonzero(assignment == d)
        if ids.size == 0:
            continue
        part = engine(_part(inputs, ids, d))
        for name in ("arrival_s", "start_s", "finish_s", "stages_run", "prediction", "correct", "energy_j",
                     "queue_len"):
            getattr(merged, name)[ids] = getattr(part, name)
        merged.device[ids] = d
        part.batch_device[:] = d
        merged.device_busy_s[d] = part.device_busy_s[0]
        merged.device_energy_j[d] = part.device_energy_j[0]
        logs.append(part)
    for name in ("batch_start_s", "batch_end_s", "batch_stage", "batch_size", "batch_energy_j", "batch_device"):
        setattr(merged, name, np.concatenate([getattr(p, name) for p in logs]))
    return merged


def _part(inputs: SimulationInputs, ids: np.ndarray, d: int) -> SimulationInputs:
    """The inputs of device d: its requests, in arrival order, on its own profile."""
    def per_request(values):
        return values[ids] if values.shape[0] > 1 else values
    return dataclasses.replace(
        inputs, devices=(inputs.devices[d],), arrival_s=inputs.arrival_s[ids], sample=inputs.sample[ids],
        draw=np.ascontiguousarray(inputs.draw[ids]), deadline_s=per_request(inputs.deadline_s),
        energy_budget_j=per_request(inputs.energy_budget_j), assignment=None,
        speed=None if inputs.speed is None else (inputs.speed[0][d:d + 1], inputs.speed[1][d:d + 1]))
