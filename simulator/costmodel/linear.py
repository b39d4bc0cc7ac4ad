"""A CPU's linear layers: their three rates, measured on the device and held fixed when the rest is fitted.

A CPU's BLAS (MKL's sgemm in PyTorch's x86 wheels) multiplies a product of at most `latency.GEMV_MAX_ROWS` rows
row by row, each row streaming the weights from memory (twice the rows, twice the time), and a larger one as a
GEMM that first packs the weights and then computes near the matmul peak. On this project's host a 4096 x 4096
layer took 4.4, 8.6 and 11.0 ms at 1, 2 and 3 rows, 9.3 ms at 4 and 18.3 ms at 32 (one thread, weights from DRAM).
The latency model describes that with ``eff_gemv``, ``eff_matmul`` and ``matmul_half_intensity``
(`latency.roofline_ms`).

Among the architectures only AlexNet's and VGG-16's classifiers have large linear layers, so leave one of them out
and the other cannot tell these rates apart from the convolutions'. They are measured instead, on synthetic layers
of the device itself: the profiler's linear probes (``device.measured_peaks.linear`` of a profile measured since
2026-12-03) or the linear family of the kernel model's microbenchmark table. `fit_linear_params` fits them to those
measurements through the latency model itself, and `fit.fit_latency` holds them fixed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

from simulator.costmodel.latency import LatencyParams, roofline_ms
from simulator.costmodel.layers import KINDS, SHAPE_COLUMNS, LayerTable
from simulator.errors import malformed, require

#: The latency parameters set by the linear-layer measurements.
LINEAR_PARAMS = ("eff_gemv", "eff_matmul", "matmul_half_intensity")
#: Per-call fixed cost (ms) a benchmarked layer starts from; fitted with the rates, not used beyond them.
START_FIXED_MS = 0.005
PRIOR_WEIGHT = 0.05
SOFT_L1_SCALE = 0.05


def linear_layers(in_features, out_features) -> LayerTable:
    """A layer table with one linear layer (with bias, one row per sample) per pair of features."""
    n_in, n_out = np.asarray(in_features, dtype=float), np.asarray(out_features, dtype=float)
    n = n_in.size
    shapes = {"in_shape": [[int(i)] for i in n_in], "in2_shape": [[] for _ in range(n)],
              "out_shape": [[int(o)] for o in n_out], **{c: [0] * n for c in SHAPE_COLUMNS[3:]}}
    return LayerTable(model="linear-layers", input_shape=(), params=int(np.sum(n_in * n_out + n_out)),
                      op=("addmm",) * n, kind=np.full(n, KINDS.index("matmul"), dtype=np.int64),
                      flops=2.0 * n_in * n_out, act_elems=n_in + n_out, param_elems=n_in * n_out + n_out,
                      shapes=shapes)


def fit_linear_params(in_features, out_features, batch, latency_ms, spec) -> dict:
    """``{parameter: value}`` of `LINEAR_PARAMS` for CPU `spec` that best predict the measured latencies (ms) of
    linear layers (fp32) at the given batch sizes, each plus one fitted per-call cost."""
    batch, latency_ms = np.asarray(batch, dtype=int), np.asarray(latency_ms, dtype=float)
    require(spec.executes == "cpu", f"linear-layer rates: {spec.name} is not a CPU")
    require(latency_ms.size > 0 and np.all(np.isfinite(latency_ms) & (latency_ms > 0)) and np.all(batch > 0),
            "linear-layer rates: need positive batch sizes and positive, finite latencies")
    table = linear_layers(in_features, out_features)
    base = LatencyParams(eff_memory=1e6)  # the rates alone bound a layer here, not the memory roof
    theta0 = np.log([getattr(base, k) for k in LINEAR_PARAMS] + [START_FIXED_MS])
    at = {b: batch == b for b in np.unique(batch)}

    def predicted_ms(theta):
        p = replace(base, **dict(zip(LINEAR_PARAMS, np.exp(theta[:-1]))))
        out = np.empty_like(latency_ms)
        for b, mask in at.items():
            out[mask] = roofline_ms(table, int(b), "fp32", spec, p)[mask]
        return out + np.exp(theta[-1])

    def residuals(theta):
        return np.concatenate([np.log(predicted_ms(theta) / latency_ms), PRIOR_WEIGHT * (theta - theta0)])

    result = least_squares(residuals, theta0, loss="soft_l1", f_scale=SOFT_L1_SCALE)
    return {k: float(v) for k, v in zip(LINEAR_PARAMS, np.exp(result.x[:-1]))}


def probe_measurements(linear: dict) -> tuple:
    """(in_features, out_features, batch, latency_ms) of a profile's linear probes (``measured_peaks.linear``)."""
    try:
        n, rows = int(linear["features"]), [int(r) for r in linear["rows"]]
        ms = [float(t) for t in linear["best_ms"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise malformed("measured_peaks.linear", exc) from None
    require(len(rows) == len(ms) > 0, "measured_peaks.linear: rows and best_ms must be non-empty and of equal length")
    return [n] * len(rows), [n] * len(rows), rows, ms


def table_measurements(kernel_table) -> tuple:
    """(in_features, out_features, batch, latency_ms) of the linear family of a microbenchmark table."""
    require("linear" in kernel_table.configs, "microbenchmark table: no linear family to take the linear rates from")
    configs = kernel_table.configs["linear"]
    return configs[:, 0], configs[:, 1], kernel_table.batch["linear"], kernel_table.latency_ms["linear"]


def measured_linear_params(profile, spec, kernels_path=None) -> tuple[dict | None, str]:
    """The linear-layer parameters of a measured CPU profile and where they come from: its own linear probes, else
    the microbenchmark table at `kernels_path`, else the committed microbenchmark table of the profile (where there
    is one). ``(None, why)`` for a GPU or a CPU with none of them: the fit then sets them with the rest."""
    from simulator.costmodel.kernels import has_kernel_table, kernel_table_path, load_kernel_table_file

    if spec.executes != "cpu":
        return None, "not a CPU"
    linear = profile.device.get("measured_peaks", {}).get("linear")
    if linear is not None:
        return fit_linear_params(*probe_measurements(linear), spec), "the profile's linear probes"
    if kernels_path is None and has_kernel_table(profile.name):
        kernels_path = kernel_table_path(profile.name)
    if kernels_path is None:
        return None, "no linear probes or microbenchmark table: fitted with the architectures"
    table = load_kernel_table_file(kernels_path)
    return fit_linear_params(*table_measurements(table), spec), f"the linear layers of {Path(kernels_path).name}"
