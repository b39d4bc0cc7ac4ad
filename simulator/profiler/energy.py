"""Energy per call and idle power from an energy counter (RAPL through powercap on the CPU, NVML on a GPU; the
meters themselves are `simulator.runner.energy`'s).

Counters advance in steps (NVML's total-energy counter every ~100 ms), so energy is never read per call: calls run
back to back over a window of at least ``window_s`` that starts and ends on a counter step, and the energy between
the two steps is divided by the number of calls completed between them.
"""

from __future__ import annotations

import time
from pathlib import Path

from simulator.runner.energy import POWERCAP, NvmlMeter, RaplMeter, rapl_package_domains


def find_rapl(root: Path = POWERCAP):
    """A RAPL meter over the package domains under `root`, or None and the reason it cannot be read."""
    if not root.is_dir():
        return None, f"{root} is absent (no RAPL powercap on this host)"
    domains = rapl_package_domains(root)
    if not domains:
        return None, f"no package RAPL domain under {root}"
    try:
        return RaplMeter(domains), ""
    except (OSError, ValueError) as exc:
        return None, f"RAPL under {root} is not readable ({exc}; reading it usually needs root)"


def find_nvml(index: int = 0):
    """An NVML meter for GPU `index`, or None and the reason it cannot be read."""
    try:
        return NvmlMeter(index), ""
    except (OSError, AttributeError) as exc:
        return None, f"NVML energy counter not readable ({exc})"


def _next_step(counter, start_j: float, clock, call=None, sleep=time.sleep, timeout_s: float = 5.0):
    """Wait (running `call` meanwhile, else sleeping 1 ms at a time) until the counter leaves `start_j`;
    return (joules, time, calls)."""
    t0, calls = clock(), 0
    while True:
        value = counter.read_j()
        if value != start_j or clock() - t0 > timeout_s:
            return value, clock(), calls
        if call is not None:
            call()
            calls += 1
        else:
            sleep(0.001)


def energy_per_call_j(call, counter, window_s: float, clock=time.perf_counter) -> dict:
    """Energy per call (J) over a step-aligned window of at least `window_s` of back-to-back calls."""
    e0, t0, _ = _next_step(counter, counter.read_j(), clock, call)
    calls = 0
    while clock() - t0 < window_s:
        call()
        calls += 1
    e1, t1, extra = _next_step(counter, counter.read_j(), clock, call)
    calls += extra
    return {"energy_j": (e1 - e0) / calls, "calls": calls, "window_s": t1 - t0, "avg_power_w": (e1 - e0) / (t1 - t0)}


def idle_power_w(counter, settle_s: float, window_s: float, clock=time.perf_counter, sleep=time.sleep) -> float:
    """Average power (W) over `window_s` of idling, read after waiting `settle_s` for the clocks to settle."""
    sleep(settle_s)
    e0, t0, _ = _next_step(counter, counter.read_j(), clock, sleep=sleep)
    sleep(window_s)
    e1, t1, _ = _next_step(counter, counter.read_j(), clock, sleep=sleep)
    return (e1 - e0) / (t1 - t0)
