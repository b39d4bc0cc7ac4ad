"""Attainable peaks of this host's CPU, measured (the cost model's roof for a CPU without datasheet figures):
a large matrix product (GFLOP/s) and a large tensor copy (GB/s read + written)."""

from __future__ import annotations

import time


def matmul_gflops(torch, dtype, n: int = 1024, seconds: float = 0.5) -> float:
    """Best GFLOP/s of an ``n x n`` by ``n x n`` matrix product over about `seconds`."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    return 2.0 * n**3 / _best_s(lambda: torch.mm(a, b), seconds) / 1e9


def copy_bandwidth_gbs(torch, n_bytes: int = 256 * 2**20, seconds: float = 0.5) -> float:
    """Best GB/s (bytes read + bytes written) of copying an `n_bytes` float32 tensor over about `seconds`."""
    src = torch.randn(n_bytes // 4)
    dst = torch.empty_like(src)
    dst.copy_(src)
    return 2.0 * n_bytes / _best_s(lambda: dst.copy_(src), seconds) / 1e9


def _best_s(fn, seconds: float) -> float:
    best, t_end = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < t_end or best == float("inf"):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def cpu_peaks(torch, dtypes=("fp32",)) -> dict:
    """Measured attainable peaks of this CPU: ``{"peak_gflops": {dtype: x}, "mem_bw_gbs": y}``."""
    from simulator.profiler.targets import torch_dtype

    return {"peak_gflops": {d: round(matmul_gflops(torch, torch_dtype(torch, d)), 1) for d in dtypes},
            "mem_bw_gbs": round(copy_bandwidth_gbs(torch), 1),
            "method": "simulator.profiler.microbench: best of ~0.5 s of 1024^3 matmuls; 256 MiB tensor copy"}
