"""Device energy over a whole real run, where the hardware exposes a counter.

- CUDA: NVML's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, mJ), read through ``ctypes`` from
  ``libnvidia-ml.so.1``. It advances only every ~100 ms, so it is read over a whole run (seconds), never per call.
- CPU: the powercap RAPL package counters (``/sys/class/powercap/*/energy_uj``), where the kernel offers them.

`open_meter` returns None where no counter is available (this project's CPU machine has neither): the run's
energy is then reported as not measured.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")


class NvmlMeter:
    """Total energy of CUDA device `index` from NVML (J)."""

    def __init__(self, index: int = 0):
        self.lib = ctypes.CDLL("libnvidia-ml.so.1")
        self._check(self.lib.nvmlInit_v2())
        self.handle = ctypes.c_void_p()
        self._check(self.lib.nvmlDeviceGetHandleByIndex_v2(ctypes.c_uint(index), ctypes.byref(self.handle)))
        self.read_j()

    @staticmethod
    def _check(status: int) -> None:
        if status != 0:
            raise OSError(f"NVML call failed with status {status}")

    def read_j(self) -> float:
        millijoules = ctypes.c_ulonglong()
        self._check(self.lib.nvmlDeviceGetTotalEnergyConsumption(self.handle, ctypes.byref(millijoules)))
        return millijoules.value / 1000.0


class RaplMeter:
    """Sum of the RAPL package energy counters (J), corrected for one wrap-around per read interval."""

    def __init__(self, domains: list[Path]):
        self.domains = domains
        self.ranges = [float((d / "max_energy_range_uj").read_text()) for d in domains]
        self.last = [self._raw(d) for d in domains]
        self.total_j = 0.0

    @staticmethod
    def _raw(domain: Path) -> float:
        return float((domain / "energy_uj").read_text())

    def read_j(self) -> float:
        for i, domain in enumerate(self.domains):
            now = self._raw(domain)
            delta = now - self.last[i]
            self.total_j += (delta if delta >= 0 else delta + self.ranges[i]) / 1e6
            self.last[i] = now
        return self.total_j


def rapl_package_domains(root: Path = POWERCAP) -> list[Path]:
    """The package-level powercap domains under `root` (``intel-rapl:N``, not their sub-zones) that have an energy
    counter, readable or not; none where `root` is absent."""
    if not root.is_dir():
        return []
    return sorted(d for d in root.iterdir() if d.name.count(":") == 1 and (d / "energy_uj").exists())


def _readable(domain: Path) -> bool:
    try:
        float((domain / "energy_uj").read_text())
        return True
    except (OSError, ValueError):
        return False    # usually root-only


def open_meter(device: str):
    """An energy meter for `device` ("cpu" or "cuda[:i]"), or None where no counter is available."""
    if device.startswith("cuda"):
        try:
            return NvmlMeter(int(device.partition(":")[2] or 0))
        except (OSError, AttributeError):
            return None
    domains = [d for d in rapl_package_domains() if _readable(d)]
    return RaplMeter(domains) if domains else None


def idle_power_w(device: str, seconds: float = 2.0) -> float | None:
    """Average power (W) of `device` while this process sleeps for `seconds`, or None without a counter."""
    import time

    meter = open_meter(device)
    if meter is None:
        return None
    e0, t0 = meter.read_j(), time.perf_counter()
    time.sleep(seconds)
    return (meter.read_j() - e0) / (time.perf_counter() - t0)
