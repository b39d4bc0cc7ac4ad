"""What both engines consume: dense arrays built once from the cache, the profiles, the workload and the policy.

Nothing in here is a Python object per request: per-request inputs are arrays indexed by request id, and every
random number (arrival times, the sample each request is served with, the draw of each stage's latency) has
already been drawn from a seeded `numpy.random.Generator`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator.errors import require
from simulator.policies import CompiledPolicy
from simulator.profiles import GRID, Profile
from simulator.signals import StageSignals
from simulator.speed import SpeedNoise


@dataclass(frozen=True, kw_only=True, eq=False)
class DeviceTables:
    """A device's costs for each stage and batch size, indexed ``[stage, batch - 1]``.

    Attributes
    ----------
    latency_s : float64 [n_stages, max_batch, GRID]
        Inverse-CDF table of the stage's latency (s); a draw ``g`` gives ``latency_s[k, b - 1, g]``.
    energy_j : float64 [n_stages, max_batch]
        Energy of one call (NaN where the profile has none).
    est_latency_s : float64 [n_stages, max_batch]
        The deadline policy's estimate: the latency quantile (the contract's, without the decision overhead).
    est_stage_energy_j : float64 [n_stages, max_batch]
        Estimated device energy of a batch-stage: call energy plus idle power over the decision overhead.
    overhead_s : float64 [n_stages]
        Decision overhead after each stage.
    idle_power_w : float
        NaN where not measured.
    dispatch_overhead_s : float
        Host time per dispatched batch, before its first stage.
    idle_dispatch_s : float or None
        The same for a batch dispatched to an idle device; None: ``dispatch_overhead_s`` (`dispatch_s`).
    release_cost_s : float
        Open loop: time a busy device's stage run takes longer per request that arrives while it runs.
    wakeup_idle_s, wakeup_factor : float64 [points]
        The first stage after an idle gap ``g`` takes ``factor(g)`` times as long: piecewise linear through
        (0, 1) and these points, constant beyond the last (padded with (inf, last factor) to stack devices).
    wakeup_decay : float
        How the wake-up fades over a busy period: its stage j (0 = the first) takes
        ``1 + (factor(g) - 1) * decay**j`` times as long (0: only the first stage is slower).
    member_idle_s, member_factor : float64 [points]
        Stage k starting ``t`` after stage k last ended on the device takes ``factor(t)`` times its latency (and
        energy): its member's weights went cold. Piecewise linear as the wake-up (padded likewise).
    speed_noise : SpeedNoise or None
        The host's speed process (`simulator.speed`); its trace is drawn with the workload (`SimulationInputs`).
    deadline_quantile : float
        The latency quantile of `est_latency_s`: the deadline-aware policy's, which the tables were built for.
    """

    latency_s: np.ndarray
    energy_j: np.ndarray
    est_latency_s: np.ndarray
    est_stage_energy_j: np.ndarray
    overhead_s: np.ndarray
    idle_power_w: float
    dispatch_overhead_s: float = 0.0
    idle_dispatch_s: float | None = None
    release_cost_s: float = 0.0
    wakeup_idle_s: np.ndarray = field(default_factory=lambda: np.array([np.inf]))
    wakeup_factor: np.ndarray = field(default_factory=lambda: np.array([1.0]))
    wakeup_decay: float = 0.0
    member_idle_s: np.ndarray = field(default_factory=lambda: np.array([np.inf]))
    member_factor: np.ndarray = field(default_factory=lambda: np.array([1.0]))
    speed_noise: SpeedNoise | None = None
    profile: str = ""
    models: tuple = ()
    deadline_quantile: float = 0.5

    @property
    def est_energy_j(self) -> np.ndarray:
        """Estimated energy share of one request in a batch-stage: the stage energy over the batch size."""
        return self.est_stage_energy_j / np.arange(1, self.energy_j.shape[1] + 1)[None, :]

    @property
    def dispatch_s(self) -> np.ndarray:
        """The dispatch overhead (s) of a batch taken off the queue and of one dispatched to an idle device."""
        idle_s = self.dispatch_overhead_s if self.idle_dispatch_s is None else self.idle_dispatch_s
        return np.array([self.dispatch_overhead_s, idle_s])


def device_tables(profile: Profile, models, max_batch: int, deadline_quantile: float = 0.5) -> DeviceTables:
    """Build the tables of `profile` for the stage `models` and batch sizes 1..`max_batch`."""
    n_stages = len(models)
    latency = np.empty((n_stages, max_batch, GRID))
    energy = np.empty((n_stages, max_batch))
    est_latency = np.empty((n_stages, max_batch))
    q = np.array([deadline_quantile])
    overhead_s = np.array([profile.decision_overhead_for(model) for model in models]) / 1000.0
    for k, model in enumerate(models):
        profile.entry(model, 1)     # names the model or batch size 1 if the profile lacks them
        measured = max(profile.models[model].batches)
        require(max_batch <= measured, f"profile {profile.name}: model {model!r} is measured up to batch size "
                f"{measured}, but batch_size = {max_batch} needs batch size {max_batch}")
        for b in range(1, max_batch + 1):
            entry = profile.entry(model, b)
            latency[k, b - 1] = entry.latency.icdf_ms() / 1000.0
            est_latency[k, b - 1] = entry.latency.icdf_ms(q)[0] / 1000.0
            energy[k, b - 1] = np.nan if entry.energy_j is None else entry.energy_j
    idle_w = np.nan if profile.idle_power_w is None else profile.idle_power_w
    wake_idle_ms, wake_factor = profile.wakeup or ((np.inf,), (1.0,))
    member_idle_ms, member_factor = profile.member_idle or ((np.inf,), (1.0,))
    return DeviceTables(latency_s=latency, energy_j=energy, est_latency_s=est_latency,
                        est_stage_energy_j=energy + idle_w * overhead_s[:, None], overhead_s=overhead_s,
                        idle_power_w=idle_w, dispatch_overhead_s=profile.dispatch_overhead_ms / 1000.0,
                        idle_dispatch_s=None if profile.idle_dispatch_ms is None else profile.idle_dispatch_ms / 1000.0,
                        release_cost_s=profile.release_cost_ms / 1000.0,
                        wakeup_idle_s=np.asarray(wake_idle_ms, dtype=np.float64) / 1000.0,
                        wakeup_factor=np.asarray(wake_factor, dtype=np.float64), speed_noise=profile.speed_noise,
                        wakeup_decay=profile.wakeup_decay,
                        member_idle_s=np.asarray(member_idle_ms, dtype=np.float64) / 1000.0,
                        member_factor=np.asarray(member_factor, dtype=np.float64),
                        profile=profile.name, models=tuple(models), deadline_quantile=float(deadline_quantile))


@dataclass(frozen=True, kw_only=True, eq=False)
class SimulationInputs:
    """Everything an engine needs, as arrays.

    Attributes
    ----------
    stages : StageSignals
        Signal, prediction and correctness after each stage, per sample ``[stage, sample]``.
    cost_scale : float64 [n_stages, n_samples]
        Per-input effort of each stage's member (ones where the cache has none).
    devices : tuple of DeviceTables
        One per replica; all replicas share one FIFO (or EDF) queue.
    arrival_s : float64 [n_requests]
        Open loop: the arrival times, sorted. Closed loop: ignored (filled by the engine).
    clients : int
        0 for open loop; the number of closed-loop clients otherwise.
    sample : int32 [n_requests]
        The sample each request is served with.
    draw : uint16 [n_requests, n_stages]
        The latency draw (an index into the inverse-CDF grid) of each request's stage; a batch-stage uses the
        draw of the request that heads the batch.
    deadline_s, energy_budget_j : float64 [n_requests] or [1]
        Per-request relative deadline and energy budget (inf = none); one value applies to all.
    max_batch : int
        1 = batch-1 serving; B > 1 = greedy dynamic batching up to B.
    edf : bool
        Earliest-deadline-first queue instead of FIFO.
    policy : CompiledPolicy
    record_batches : bool
        Record every batch-stage (start, end, stage, member, batch size, energy, device).
    assignment : int16 [n_requests] or None
        With per-device queues, the device each request is assigned to; None = one shared queue.
    speed : (float64 [n_devices, slots], float64 [n_devices]) or None
        The devices' speed traces and slot widths (s) (`simulator.speed.device_speed`): a stage starting at ``t``
        on device ``d`` lasts ``factor[d, int(t / step_s[d]) % slots]`` times as long. None: no device has one.
    members : tuple of int or None
        The cache member each stage runs (the batch records' ``member``); None: stage k runs member k.
    """

    stages: StageSignals
    cost_scale: np.ndarray
    devices: tuple
    arrival_s: np.ndarray
    clients: int
    sample: np.ndarray
    draw: np.ndarray
    deadline_s: np.ndarray
    energy_budget_j: np.ndarray
    max_batch: int
    edf: bool
    policy: CompiledPolicy
    record_batches: bool = True
    assignment: np.ndarray | None = None
    speed: tuple | None = None
    members: tuple | None = None

    def __post_init__(self):
        n = self.n_requests
        k = self.stages.n_stages
        require(self.draw.shape == (n, k), f"draw has shape {self.draw.shape}, expected {(n, k)}")
        require(self.cost_scale.shape == self.stages.signal.shape, "cost_scale must match the stage signals")
        require(self.deadline_s.shape[0] in (1, n), "deadline_s must have 1 or n_requests entries")
        require(self.energy_budget_j.shape[0] in (1, n), "energy_budget_j must have 1 or n_requests entries")
        require(self.clients > 0 or self.arrival_s.shape[0] == n, "arrival_s must have n_requests entries")
        require(all(d.latency_s.shape[:2] == (k, self.max_batch) for d in self.devices),
                "device tables must cover every stage and batch size")
        require(self.speed is None or (self.speed[0].ndim == 2 and self.speed[0].shape[0] == self.n_devices
                                       and self.speed[1].shape == (self.n_devices,)),
                "speed must be (factor [n_devices, slots], step_s [n_devices])")
        require(self.members is None or len(self.members) == k, f"members must name the member of each of {k} stages")
        built = sorted({d.deadline_quantile for d in self.devices} - {self.policy.deadline_quantile})
        require(not (built and self.policy.params.deadline_aware), f"the deadline-aware policy estimates the next "
                f"stage's latency at quantile {self.policy.deadline_quantile:g}, but the device tables were built "
                f"for quantile {built[0] if built else 0:g}: prepare the inputs with a config whose policy includes "
                "deadline, at the same deadline_quantile (docs/custom-policies.md)")
        self._check_values(n, k)

    def _check_values(self, n: int, k: int) -> None:
        """What the engines index with or order by (inputs built or changed by hand, e.g. with
        ``dataclasses.replace``): an index out of range would read other memory in the compiled engine."""
        n_samples = self.stages.signal.shape[1]
        require(self.sample.dtype == np.int32 and (n == 0 or 0 <= self.sample.min() <= self.sample.max() < n_samples),
                f"sample must be int32 indices in [0, {n_samples}) (the cache's samples)")
        require(self.draw.dtype == np.uint16 and (self.draw.size == 0 or self.draw.max() < GRID),
                f"draw must be uint16 indices in [0, {GRID}) (the latency grid)")
        if self.clients == 0:
            arrival = self.arrival_s[:n]
            require(bool(np.all(np.isfinite(arrival))) and bool(np.all(np.diff(arrival) >= 0)),
                    "arrival_s must be finite and sorted")
        require(self.policy.params.thresholds.shape[1] == k,
                f"the policy was compiled for {self.policy.params.thresholds.shape[1]} stages, the inputs have {k}")

    @property
    def n_requests(self) -> int:
        return self.sample.shape[0]

    @property
    def n_stages(self) -> int:
        return self.stages.n_stages

    @property
    def n_devices(self) -> int:
        return len(self.devices)

    def stacked(self, name: str) -> np.ndarray:
        """Attribute `name` of every device's tables, stacked along a leading device axis."""
        return np.ascontiguousarray(np.stack([np.asarray(getattr(d, name), dtype=np.float64)
                                              for d in self.devices]))

    def stacked_wakeup(self) -> tuple[np.ndarray, np.ndarray]:
        """Every device's wake-up points as [device, points] arrays, padded with (inf, last factor)."""
        return self.stacked_points("wakeup_idle_s", "wakeup_factor")

    def stacked_member_idle(self) -> tuple[np.ndarray, np.ndarray]:
        """Every device's member-idle points as [device, points] arrays, padded with (inf, last factor)."""
        return self.stacked_points("member_idle_s", "member_factor")

    def stacked_points(self, idle_name: str, factor_name: str) -> tuple[np.ndarray, np.ndarray]:
        """The devices' (idle time, factor) tables named so as [device, points] arrays, padded with (inf, last
        factor) so that every row is the same piecewise linear function."""
        tables = [(getattr(d, idle_name), getattr(d, factor_name)) for d in self.devices]
        width = max(idle.shape[0] for idle, _ in tables)
        idle = np.full((self.n_devices, width), np.inf)
        factor = np.empty((self.n_devices, width))
        for i, (points_s, factors) in enumerate(tables):
            n = points_s.shape[0]
            idle[i, :n] = points_s
            factor[i, :n], factor[i, n:] = factors, factors[-1]
        return idle, factor

    def stacked_speed(self) -> tuple[np.ndarray, np.ndarray]:
        """The devices' speed traces and slot widths (s); factors 1 in one infinite slot where there are none."""
        if self.speed is None:
            return np.ones((self.n_devices, 1)), np.full(self.n_devices, np.inf)
        factor, step_s = self.speed
        return np.ascontiguousarray(factor, dtype=np.float64), np.ascontiguousarray(step_s, dtype=np.float64)

    @property
    def power_cap(self) -> tuple[float, float]:
        """(cap_w, window_s) of the device-level energy budget; (inf, 1) when there is none."""
        return self.policy.power_cap or (np.inf, 1.0)
