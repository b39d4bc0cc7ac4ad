"""Interference on the host during a real run: what else used the CPUs, and how often the worker was preempted.

A real run shares its host with everything else that runs there. `HostMonitor` reads, before and after a run,

- ``/proc/stat``: CPU time of the whole host (and the hypervisor's *steal* time on a virtual machine),
- ``/proc/self/stat``: CPU time of this process,
- ``getrusage``: involuntary context switches of this process,

and reports the CPU time others used during the run (in cores), the steal fraction and the preemptions per second.
Where ``/proc`` is absent (not Linux) the figures are NaN.
"""

from __future__ import annotations

import math
import os
import resource
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")
PROC_SELF_STAT = Path("/proc/self/stat")


@dataclass(frozen=True)
class HostReport:
    """What the rest of the host did during a run."""

    wall_s: float
    other_cpu_cores: float
    steal_fraction: float
    preemptions_per_s: float
    cpus: int

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def _host_jiffies() -> tuple[float, float, float]:
    """(busy, steal, total) jiffies of all CPUs since boot; NaN where /proc/stat is unreadable."""
    try:
        fields = PROC_STAT.read_text().splitlines()[0].split()[1:]
    except OSError:
        return math.nan, math.nan, math.nan
    values = [float(x) for x in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)
    steal = values[7] if len(values) > 7 else 0.0
    total = sum(values[:8])
    return total - idle - steal, steal, total


def _own_jiffies() -> float:
    """User + system jiffies of this process (all threads)."""
    try:
        fields = PROC_SELF_STAT.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return float(fields[11]) + float(fields[12])


class HostMonitor:
    """Snapshot the host's counters at `start()`; `stop()` returns a `HostReport` of the interval."""

    def start(self) -> "HostMonitor":
        self.t0 = time.perf_counter()
        self.host0, self.own0 = _host_jiffies(), _own_jiffies()
        self.switches0 = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
        return self

    def stop(self) -> HostReport:
        wall = time.perf_counter() - self.t0
        (busy1, steal1, total1), own1 = _host_jiffies(), _own_jiffies()
        busy0, steal0, total0 = self.host0
        hz = os.sysconf("SC_CLK_TCK")
        switches = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw - self.switches0
        d_total = total1 - total0
        return HostReport(
            wall_s=wall,
            other_cpu_cores=max(0.0, (busy1 - busy0) - (own1 - self.own0)) / hz / wall if wall > 0 else math.nan,
            steal_fraction=(steal1 - steal0) / d_total if d_total > 0 else math.nan,
            preemptions_per_s=switches / wall if wall > 0 else math.nan,
            cpus=os.cpu_count() or 1,
        )
