"""What a real run returns: the simulator's per-request and per-stage records, its summary, and what only a real
run has (the split of each stage into compute and decision, the host's interference, measured energy)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator.inputs import SimulationInputs
from simulator.results import BatchRecords, RequestRecords, Summary, build_result
from simulator.runner.host import HostReport
from simulator.runner.worker import Worker

#: A stage whose compute time exceeds this multiple of its run's median for that stage counts as a host stall.
STALL_FACTOR = 5.0


@dataclass(frozen=True, eq=False)
class StageTimes:
    """Every stage run, in order: request, stage, and its compute (forward + copy) and decision times (s)."""

    request: np.ndarray
    stage: np.ndarray
    start_s: np.ndarray
    compute_s: np.ndarray
    decision_s: np.ndarray

    def stalls(self) -> np.ndarray:
        """Mask of the stage runs whose compute time exceeds `STALL_FACTOR` times the median of their stage."""
        mask = np.zeros(self.stage.shape[0], dtype=bool)
        for k in np.unique(self.stage):
            at = self.stage == k
            mask[at] = self.compute_s[at] > STALL_FACTOR * np.median(self.compute_s[at])
        return mask


@dataclass(frozen=True, eq=False)
class RealRun:
    """A real run's records (the simulator's columns), summary and measurements.

    Attributes
    ----------
    requests : RequestRecords
        As the engines record them; ``energy_j`` is NaN (per-request energy is not measurable).
    batches : BatchRecords
        One per stage run (batch size 1).
    summary : Summary
        Built by `simulator.results.build_result`; the device's busy time is the sum of the service times.
    stage_times : StageTimes
    release_lag_s : ndarray or None
        Open loop with a dispatcher thread: release time minus arrival time, per request.
    host : HostReport
    measured_energy_j : float or None
        Device energy over the run (NVML or RAPL), where a counter exists.
    setup : dict
        How the run was made (mode, device, execution, threads, release, software).
    """

    requests: RequestRecords
    batches: BatchRecords
    summary: Summary
    stage_times: StageTimes
    release_lag_s: np.ndarray | None
    host: HostReport
    measured_energy_j: float | None
    setup: dict = field(default_factory=dict)

    @property
    def stall_fraction(self) -> float:
        """Fraction of stage runs that were host stalls."""
        return float(self.stage_times.stalls().mean())

    @property
    def waited(self) -> np.ndarray:
        """Per request: whether it waited in the queue (arrived no later than the previous request finished);
        request 0, served after the warm-up and the lead-in, never did."""
        req = self.requests
        return np.concatenate([[False], req.arrival_s[1:] <= req.finish_s[:-1]])

    @property
    def idle_before_ms(self) -> np.ndarray:
        """Per request: the worker's idle time (ms) before it, start minus the previous finish (0 where it waited;
        NaN for request 0)."""
        req = self.requests
        gaps = np.concatenate([[np.nan], (req.start_s[1:] - req.finish_s[:-1]) * 1000.0])
        return np.where(self.waited, 0.0, gaps)

    @property
    def stage_work_s(self) -> np.ndarray:
        """Per request: the measured work of its stages, compute plus decision (s)."""
        times = self.stage_times
        return np.bincount(times.request, weights=times.compute_s + times.decision_s,
                           minlength=self.requests.arrival_s.shape[0])


def build_real_run(worker: Worker, inputs: SimulationInputs, host: HostReport, measured_energy_j: float | None,
                   setup: dict) -> RealRun:
    """Wrap a finished worker's records into a `RealRun` (records and summary built as the engines' are)."""
    raw = worker.records()
    result = build_result(raw, inputs, "real")
    log, n_log = worker.log, worker.n_log
    compute_end = log.compute_end_s[:n_log]
    stage_times = StageTimes(request=log.request[:n_log], stage=raw.batch_stage, start_s=raw.batch_start_s,
                             compute_s=compute_end - raw.batch_start_s, decision_s=raw.batch_end_s - compute_end)
    lag = log.release_s - raw.arrival_s if np.isfinite(log.release_s).any() else None
    return RealRun(requests=result.requests, batches=result.batches, summary=result.summary, stage_times=stage_times,
                   release_lag_s=lag, host=host, measured_energy_j=measured_energy_j, setup=setup)
