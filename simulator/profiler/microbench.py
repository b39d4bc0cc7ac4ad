"""Attainable peaks of this host's CPU, measured (the cost model's roof for a CPU without datasheet figures):
a large matrix product (GFLOP/s) and a large tensor copy (GB/s read + written); and a linear layer too large for
the caches at a few row counts, from which the cost model takes the CPU's linear-layer rates
(`simulator.costmodel.linear`).

Each is a probe, timed for a short window in every round of a profile's measurement (`simulator.profiler.session`),
and its peak is the best time over all the rounds: a shared host runs slow for stretches of up to ten seconds or
more, and one window of half a second taken at the end (as before 2026-12-03) could land in one (83 GFLOP/s against
100 on this project's host)."""

from __future__ import annotations

import functools
import time

#: Matrix size of the matmul probe and bytes of the copy probe.
MATMUL_N = 1024
COPY_BYTES = 256 * 2**20
#: Features (in and out) of the linear probe's layer (64 MiB of fp32 weights) and the rows it is timed at: row by
#: row up to three rows on this project's host, a GEMM from four.
LINEAR_FEATURES = 4096
LINEAR_ROWS = (1, 2, 4, 32)


def peak_probes(torch, dtypes=("fp32",)) -> dict:
    """The probes of `cpu_peaks`: ``{name: call}``, one matmul per dtype (``matmul-<dtype>``) and one ``copy``."""
    from simulator.profiler.targets import torch_dtype

    probes = {}
    for d in dtypes:
        a = torch.randn(MATMUL_N, MATMUL_N).to(torch_dtype(torch, d))
        b = torch.randn(MATMUL_N, MATMUL_N).to(torch_dtype(torch, d))
        probes[f"matmul-{d}"] = functools.partial(torch.mm, a, b)
    src = torch.randn(COPY_BYTES // 4)
    dst = torch.empty_like(src)
    probes["copy"] = lambda: dst.copy_(src)
    layer = torch.nn.Linear(LINEAR_FEATURES, LINEAR_FEATURES)
    for rows in LINEAR_ROWS:
        probes[f"linear-{rows}"] = functools.partial(_no_grad_call, torch, layer, torch.randn(rows, LINEAR_FEATURES))
    for call in probes.values():
        call()
    return probes


def best_s(fn, seconds: float, clock=time.perf_counter) -> float:
    """Shortest time (s) of one call of `fn` over about `seconds` (at least one call)."""
    best, t_end = float("inf"), clock() + seconds
    while clock() < t_end or best == float("inf"):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def _no_grad_call(torch, layer, x):
    with torch.inference_mode():
        return layer(x)


def cpu_peaks(best_times_s: dict, dtypes=("fp32",), rounds: int = 1) -> dict:
    """Measured attainable peaks from the probes' best times (s) over `rounds` rounds:
    ``{"peak_gflops": {dtype: x}, "mem_bw_gbs": y, "method": ..., "linear": {...}}`` (``linear``: the linear
    probe's best time per row count, where it was timed)."""
    peaks = {"peak_gflops": {d: round(2.0 * MATMUL_N**3 / best_times_s[f"matmul-{d}"] / 1e9, 1) for d in dtypes},
             "mem_bw_gbs": round(2.0 * COPY_BYTES / best_times_s["copy"] / 1e9, 1),
             "method": f"simulator.profiler.microbench: best {MATMUL_N}^3 matmul and {COPY_BYTES // 2**20} MiB "
                       f"tensor copy over {rounds} windows, one in each round of the latency measurement"}
    if all(f"linear-{r}" in best_times_s for r in LINEAR_ROWS):
        peaks["linear"] = {"features": LINEAR_FEATURES, "rows": list(LINEAR_ROWS),
                           "best_ms": [round(1e3 * best_times_s[f"linear-{r}"], 4) for r in LINEAR_ROWS],
                           "method": f"fp32 {LINEAR_FEATURES} x {LINEAR_FEATURES} linear layer with bias, weights "
                                     f"from DRAM (64 MiB), best time over the same {rounds} windows"}
    return peaks
