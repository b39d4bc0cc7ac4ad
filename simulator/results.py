"""Simulation outputs: per-request records, per-batch-stage records and the summary (SPEC "Outputs")."""

from __future__ import annotations

import math
import sys
import threading
from dataclasses import dataclass, fields

import numpy as np

from simulator.io import atomic_path


#: +inf entries that follow the arrival times in memory (the single-server kernel reads 4 ahead)
ARRIVAL_SENTINELS = 4


def with_sentinels(arrival_s: np.ndarray) -> np.ndarray:
    """Arrival times followed in memory by `ARRIVAL_SENTINELS` +inf entries: `arrival_s` itself where it already
    is such a view (as `simulator.run.prepare` makes them), else a copy that is."""
    n = arrival_s.shape[0]
    base = arrival_s.base
    if (isinstance(base, np.ndarray) and base.ndim == 1 and base.shape[0] == n + ARRIVAL_SENTINELS
            and arrival_s.dtype == np.float64 and base.ctypes.data == arrival_s.ctypes.data
            and np.all(base[n:] == np.inf)):
        return arrival_s
    padded = np.empty(n + ARRIVAL_SENTINELS)
    padded[:n] = arrival_s
    padded[n:] = np.inf
    return padded[:n]


@dataclass(eq=False)
class RawOutputs:
    """Arrays an engine writes into (allocated once, before the run)."""

    arrival_s: np.ndarray
    start_s: np.ndarray
    finish_s: np.ndarray
    stages_run: np.ndarray
    prediction: np.ndarray
    correct: np.ndarray
    energy_j: np.ndarray
    device: np.ndarray
    queue_len: np.ndarray
    batch_start_s: np.ndarray
    batch_end_s: np.ndarray
    batch_stage: np.ndarray
    batch_size: np.ndarray
    batch_energy_j: np.ndarray
    batch_device: np.ndarray
    device_busy_s: np.ndarray
    device_energy_j: np.ndarray

    @classmethod
    def allocate(cls, inputs) -> "RawOutputs":
        """Arrays for `inputs`; the batch-stage log holds at most n_requests x n_stages entries.

        The per-request arrays are views of one memory block, and so are the log's: one large allocation is backed
        by huge pages (NumPy advises the kernel so), which halves the cost of first touching fresh output memory,
        and the blocks of results that are gone are reused (`_memory`), which avoids it.
        """
        n, n_dev = inputs.n_requests, inputs.n_devices
        n_log = n * inputs.n_stages if inputs.record_batches else 0
        start, finish, stages, prediction, correct, energy, device, queue_len = _block(n, (
            np.float64, np.float64, np.int8, np.int32, np.bool_, np.float64, np.int16, np.int32))
        log = _block(n_log, (np.float64, np.float64, np.int8, np.int32, np.float64, np.int16))
        # open loop: the inputs' arrival times themselves (not copied), followed by +inf sentinels in memory
        arrival = (with_sentinels(inputs.arrival_s) if inputs.clients == 0
                   else np.full(n + ARRIVAL_SENTINELS, np.inf)[:n])    # closed loop: the engine fills them in
        return cls(arrival_s=arrival, start_s=start, finish_s=finish, stages_run=stages, prediction=prediction,
                   correct=correct, energy_j=energy, device=device, queue_len=queue_len,
                   batch_start_s=log[0], batch_end_s=log[1], batch_stage=log[2], batch_size=log[3],
                   batch_energy_j=log[4], batch_device=log[5],
                   device_busy_s=np.zeros(n_dev), device_energy_j=np.zeros(n_dev))

    def trimmed(self, n_log: int) -> "RawOutputs":
        """The same outputs with the batch-stage log cut to its `n_log` used entries."""
        for f in fields(self):
            if f.name.startswith("batch_"):
                setattr(self, f.name, getattr(self, f.name)[:n_log])
        return self


def _block(n: int, dtypes) -> list[np.ndarray]:
    """Uninitialised arrays of `n` elements of each dtype, as 64-byte aligned views of one memory block."""
    sizes = [n * np.dtype(d).itemsize for d in dtypes]
    offsets = np.cumsum([0] + [-(-size // 64) * 64 for size in sizes])
    memory = _memory(int(offsets[-1]))
    return [memory[o:o + size].view(d) for o, size, d in zip(offsets, sizes, dtypes)]


#: Output blocks of at least POOL_MIN_BYTES and at most POOL_MAX_BYTES are pooled (`_memory`), POOL_BLOCKS at most.
POOL_MIN_BYTES, POOL_MAX_BYTES, POOL_BLOCKS = 1 << 20, 64 << 20, 2
_pool: list[np.ndarray] = []
_pool_lock = threading.Lock()


def clear_pool() -> None:
    """Forget the pooled output blocks (their memory is freed once no result refers to it)."""
    with _pool_lock:
        _pool.clear()


def _memory(nbytes: int) -> np.ndarray:
    """An uninitialised block of `nbytes` bytes: a pooled block of that size that no array refers to any more (no
    result's columns are views of it) where there is one, else a new one, pooled where its size is in range.

    Why: a block this large is mapped afresh by every allocation, and first touching fresh memory costs the kernel's
    page faults (~3 ms for the 36 MB of a million requests' outputs on this project's host), a fifth of the engine's
    run; a sweep, or any loop of simulations that drops each result before the next, reuses the pages instead. At
    most `POOL_BLOCKS` blocks (two: a loop that keeps the previous result while it runs the next) of at most
    `POOL_MAX_BYTES` each stay mapped after their results are gone.
    """
    if not POOL_MIN_BYTES <= nbytes <= POOL_MAX_BYTES:
        return np.empty(nbytes, dtype=np.uint8)
    with _pool_lock:
        for block in _pool:
            # references: the pool's list, `block` and getrefcount's argument; any view of it holds one more
            if block.nbytes == nbytes and sys.getrefcount(block) == 3:
                return block
        block = np.empty(nbytes, dtype=np.uint8)
        _pool.append(block)
        del _pool[:-POOL_BLOCKS]
        return block


class _Columns:
    """Column-array records: dict, DataFrame and CSV access."""

    def to_dict(self) -> dict[str, np.ndarray]:
        """Columns by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_frame(self):
        """A pandas DataFrame of the columns (pandas is optional)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError("to_frame() needs pandas; use to_dict() or to_csv() without it") from exc
        return pd.DataFrame(self.to_dict())

    def to_csv(self, path) -> None:
        """Write the columns to `path` as CSV, atomically."""
        with atomic_path(path) as tmp:
            self.write_csv(tmp)

    def write_csv(self, path) -> None:
        """Write the columns to `path` as CSV, in place (`to_csv` writes atomically); FlexsimError naming `path`
        where it cannot be written."""
        from simulator.io import check_output_file, naming

        check_output_file(path, "path")
        with naming(path):
            self._write_csv(path)

    def _write_csv(self, path) -> None:
        columns = self.to_dict()
        header = ",".join(columns)
        table = np.empty((len(next(iter(columns.values()))), len(columns)), dtype=object)
        formats = []
        for j, values in enumerate(columns.values()):
            table[:, j] = values
            formats.append("%.17g" if values.dtype.kind == "f" else "%d")
        np.savetxt(path, table, fmt=formats, delimiter=",", header=header, comments="")

    def __len__(self) -> int:
        return len(getattr(self, fields(self)[0].name))


@dataclass(frozen=True, eq=False)
class RequestRecords(_Columns):
    """One record per request (index = request id, in arrival order)."""

    arrival_s: np.ndarray
    start_s: np.ndarray
    finish_s: np.ndarray
    latency_ms: np.ndarray
    stages_run: np.ndarray
    prediction: np.ndarray
    correct: np.ndarray
    deadline_met: np.ndarray
    energy_j: np.ndarray
    sample: np.ndarray
    device: np.ndarray
    queue_len: np.ndarray


@dataclass(frozen=True, eq=False)
class BatchRecords(_Columns):
    """One record per batch-stage (a stage run on a batch of requests), in order of start time (ties: device)."""

    start_s: np.ndarray
    end_s: np.ndarray
    stage: np.ndarray
    member: np.ndarray
    batch_size: np.ndarray
    energy_j: np.ndarray
    device: np.ndarray


@dataclass(frozen=True)
class Summary:
    """Aggregate figures of a run.

    Energy: ``device_energy_j`` is every batch-stage's energy plus idle power over each device's idle time in
    the horizon (first arrival to last finish); ``energy_per_request_j`` is that over the number of requests;
    ``attributed_energy_per_request_j`` is the mean of the per-request attributed energy (without idle time).
    Energy figures are None where the profile has no energy measurements.
    """

    n_requests: int
    accuracy: float
    latency_mean_ms: float
    latency_p50_ms: float
    latency_p90_ms: float
    latency_p99_ms: float
    deadline_miss_rate: float
    throughput_rps: float
    utilisation: float
    mean_stages: float
    energy_per_request_j: float | None
    attributed_energy_per_request_j: float | None
    device_energy_j: float | None
    average_power_w: float | None
    horizon_s: float

    def to_dict(self) -> dict:
        return {f.name: _json_number(getattr(self, f.name)) for f in fields(self)}

    def text(self) -> str:
        """A short human summary."""
        def energy(x, unit):
            return "not measured" if x is None else f"{x:.4g} {unit}"
        return "\n".join([
            f"requests        {self.n_requests}",
            f"accuracy        {self.accuracy:.4f}",
            f"latency ms      mean {self.latency_mean_ms:.3f}  p50 {self.latency_p50_ms:.3f}  "
            f"p90 {self.latency_p90_ms:.3f}  p99 {self.latency_p99_ms:.3f}",
            f"deadline misses {self.deadline_miss_rate:.2%}",
            f"throughput      {self.throughput_rps:.1f} req/s   utilisation {self.utilisation:.1%}",
            f"mean stages     {self.mean_stages:.3f}",
            f"energy          {energy(self.energy_per_request_j, 'J/request')}   "
            f"average power {energy(self.average_power_w, 'W')}",
        ])


def _json_number(x):
    if isinstance(x, (float, np.floating)):
        return None if not math.isfinite(x) else float(x)
    return x


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """What a simulation returns: records, summary and the engine that produced them."""

    requests: RequestRecords
    batches: BatchRecords
    summary: Summary
    device_busy_s: np.ndarray
    device_energy_j: np.ndarray
    engine: str


def build_result(raw: RawOutputs, inputs, engine: str) -> SimulationResult:
    """Wrap an engine's raw outputs into records and a summary."""
    latency_s = raw.finish_s - raw.arrival_s
    deadline = inputs.deadline_s if inputs.deadline_s.shape[0] > 1 else inputs.deadline_s[0]
    requests = RequestRecords(
        arrival_s=raw.arrival_s, start_s=raw.start_s, finish_s=raw.finish_s, latency_ms=latency_s * 1000.0,
        stages_run=raw.stages_run, prediction=raw.prediction, correct=raw.correct,
        deadline_met=latency_s <= deadline, energy_j=raw.energy_j, sample=inputs.sample, device=raw.device,
        queue_len=raw.queue_len)
    batches = _batches_in_start_order(raw, inputs.n_devices, inputs.members)
    idle_w = np.array([d.idle_power_w for d in inputs.devices])
    summary = summarize(requests, raw.device_busy_s, raw.device_energy_j, idle_w)
    return SimulationResult(requests=requests, batches=batches, summary=summary,
                            device_busy_s=raw.device_busy_s, device_energy_j=raw.device_energy_j, engine=engine)


def _batches_in_start_order(raw: RawOutputs, n_devices: int, members=None) -> BatchRecords:
    """Batch-stage records ordered by start time, ties by device (one device's log is in that order already);
    ``member`` is the cache member of each record's stage (`members[stage]`; the stage itself where None)."""
    member = raw.batch_stage if members is None else np.asarray(members, dtype=raw.batch_stage.dtype)[raw.batch_stage]
    columns = dict(start_s=raw.batch_start_s, end_s=raw.batch_end_s, stage=raw.batch_stage, member=member,
                   batch_size=raw.batch_size, energy_j=raw.batch_energy_j, device=raw.batch_device)
    if n_devices > 1:
        order = np.lexsort((raw.batch_device, raw.batch_start_s))
        columns = {name: values[order] for name, values in columns.items()}
    return BatchRecords(**columns)


def summarize(requests: RequestRecords, busy_s: np.ndarray, active_energy_j: np.ndarray,
              idle_power_w: np.ndarray) -> Summary:
    """Summary figures from per-request records and per-device busy time and active energy."""
    n = len(requests)
    horizon = float(requests.finish_s.max() - requests.arrival_s.min())
    device_energy = float(np.sum(active_energy_j + idle_power_w * np.maximum(horizon - busy_s, 0.0)))
    has_energy = math.isfinite(device_energy)
    p50, p90, p99 = np.percentile(requests.latency_ms, [50, 90, 99])
    return Summary(
        n_requests=n,
        accuracy=float(requests.correct.mean()),
        latency_mean_ms=float(requests.latency_ms.mean()),
        latency_p50_ms=float(p50), latency_p90_ms=float(p90), latency_p99_ms=float(p99),
        deadline_miss_rate=float(1.0 - requests.deadline_met.mean()),
        throughput_rps=n / horizon if horizon > 0 else math.inf,
        utilisation=float(busy_s.sum() / (len(busy_s) * horizon)) if horizon > 0 else 1.0,
        mean_stages=float(requests.stages_run.mean()),
        energy_per_request_j=device_energy / n if has_energy else None,
        attributed_energy_per_request_j=float(requests.energy_j.mean()) if has_energy else None,
        device_energy_j=device_energy if has_energy else None,
        average_power_w=device_energy / horizon if has_energy and horizon > 0 else None,
        horizon_s=horizon,
    )
