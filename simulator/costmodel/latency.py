"""Latency of one call predicted from a layer table, a device's datasheet figures and fitted efficiencies.

Per kernel ``i`` (FLOPs ``F``, bytes ``B``, kind ``k``): a roofline plus a fixed per-kernel cost,

    d_i = max(F / (eff_i * peak_k), B / (eff_memory * bandwidth)) + kernel_ms

where ``eff_i = eff_k`` for depthwise convolutions and linear layers, and for dense convolutions a saturating curve
of the kernel's arithmetic intensity ``I = F / B`` (FLOP per byte, at the call's batch size):

    eff_i = eff_conv * I / (I + conv_half_intensity)

Small, low-intensity convolutions (few channels, 1x1, late layers at batch 1) reach a smaller share of the peak than
large 3x3 ones. Equivalently, ``F / (eff_i * peak) = (F + conv_half_intensity * B) / (eff_conv * peak)``: every
byte a convolution moves costs ``conv_half_intensity`` FLOP-times of extra work (im2col/layout reorders, packing,
edge handling), so the curve adds no discontinuity and keeps latency increasing in the batch size.

On a CPU, PyTorch runs some dense convolutions on its native path (``Slow2d``: a GEMM, after im2col where the kernel
is not 1x1) instead of oneDNN (`native_conv_mask`, PyTorch's own selection rule): those cost
``F / (eff_conv_native * peak)``, without the curve's cost per byte (oneDNN reorders weights and activations into
its blocked layouts at every call of an eager model; the native path does not), and their fixed host cost is
``launch_native_ms`` rather than oneDNN's ``launch_conv_ms`` (a tiny convolution took ~12 us on the native path at
batch 1 and ~46 us through oneDNN at batch 2 on this project's host).

Per call:

- GPU, eager: the host issues kernel ``i`` after spending ``launch_ms(k)`` on each kernel before it (``launch_conv_ms``
  for convolutions, ``launch_other_ms`` otherwise); the GPU runs kernels in order, each when issued and when the
  previous one is done. The call ends when the last kernel is done, plus ``call_eager_ms`` (synchronising copy of the
  output, Python). Closed form: ``max_j (issue_j + d_j + ... + d_n)``.
- GPU, CUDA graph: all kernels are issued at once: ``sum(d) + call_graph_ms``.
- CPU: the host runs each kernel itself: ``sum(d + launch) + call_eager_ms``.

Elementwise kernels (kind ``other``) are costed by bytes only, except a CPU's max pooling, which also costs its
window comparisons at ``eff_pool`` times the FP32 peak (`pool_window_elems`).

A CPU's linear layers follow its BLAS: up to `GEMV_MAX_ROWS` rows, ``rows * weight bytes / (eff_gemv *
bandwidth)`` (each row streams the weights); from there a GEMM, ``(F + matmul_half_intensity * B) / (eff_matmul *
peak)`` (packing the weights costs per byte, like oneDNN's reorders). Their three parameters are measured on the
device rather than fitted on the architectures (`simulator.costmodel.linear`).
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields

import numpy as np

from simulator.costmodel.layers import DTYPE_BYTES, KINDS, LayerTable


@dataclass(frozen=True)
class LatencyParams:
    """Per-device efficiencies (fractions of the datasheet peaks) and fixed costs (ms)."""

    eff_conv: float = 0.3
    eff_dwconv: float = 0.05
    eff_matmul: float = 0.2
    eff_memory: float = 0.5
    conv_half_intensity: float = 20.0  # FLOP/byte at which a dense convolution reaches half of eff_conv
    kernel_ms: float = 0.005
    launch_conv_ms: float = 0.03
    launch_other_ms: float = 0.02
    call_eager_ms: float = 0.1
    call_graph_ms: float = 0.1
    eff_conv_native: float = 0.3  # CPU: dense convolutions on PyTorch's native path (`native_conv_mask`)
    eff_pool: float = 0.003  # CPU: max-pooling window elements compared per second, as a share of the FP32 peak
    eff_gemv: float = 0.7  # CPU: a linear layer of at most GEMV_MAX_ROWS rows streams its weights once per row
    matmul_half_intensity: float = 10.0  # CPU: FLOP-times per byte moved that a linear layer's GEMM pays (packing)
    launch_native_ms: float = 0.01  # CPU: host cost of a dense convolution on PyTorch's native path

    def to_log(self) -> np.ndarray:
        return np.log(np.array(astuple(self), dtype=float))

    @classmethod
    def from_log(cls, theta) -> "LatencyParams":
        return cls(*(float(v) for v in np.exp(theta)))

    def to_json(self) -> dict:
        return {f.name: float(f"{getattr(self, f.name):.6g}") for f in fields(self)}


def native_conv_mask(table: LayerTable, batch: int, spec) -> np.ndarray:
    """The dense convolutions that PyTorch runs on its native CPU path (``Slow2d``) rather than oneDNN at `batch`.

    PyTorch's rule for fp32 on a CPU (``ConvParams::use_mkldnn``; checked against
    ``torch._C._select_conv_backend`` by the tests): oneDNN when (strided, or batch >= 16, or not 1x1, or more
    than one thread) and (grouped, or kernel > 3, or batch > 1, or the input has more than 20480 elements);
    native otherwise: every unstrided 1x1 convolution below batch 16 on one thread, and at batch 1 every small
    convolution with a kernel of at most 3. None on a GPU or for a table without shapes.
    """
    native = np.zeros(table.n_kernels, dtype=bool)
    if spec.executes != "cpu" or table.shapes is None:
        return native
    kernel, stride, groups = (np.asarray(table.shapes[c]) for c in ("kernel", "stride", "groups"))
    elements = batch * table.in_elems
    first = (stride > 1) | (batch >= 16) | (kernel != 1) | (spec.threads > 1)
    second = (groups > 1) | (kernel > 3) | (batch > 1) | (elements > 20480)
    return table.kind_mask("conv") & ~(first & second)


def pool_window_elems(table: LayerTable, spec) -> np.ndarray:
    """Per sample, the input elements each max-pooling kernel compares on a CPU (its output elements times the
    window's ``kernel ** 2``); 0 for other kernels, on a GPU, and for a table without shapes."""
    if spec.executes != "cpu" or table.shapes is None:
        return np.zeros(table.n_kernels)
    pooling = np.array([op.startswith("max_pool2d") for op in table.op])
    return np.where(pooling, table.out_elems * np.asarray(table.shapes["kernel"], dtype=float) ** 2, 0.0)


#: Rows up to which a CPU's BLAS (MKL's sgemm in PyTorch's x86 wheels) multiplies row by row, each row streaming the
#: weights: on this project's host a 4096 x 4096 linear layer takes 4.4 / 8.6 / 11.0 ms at 1 / 2 / 3 rows and 9.3 ms
#: at 4 (the committed microbenchmark table shows the same step at 4 rows in its large configurations).
GEMV_MAX_ROWS = 3


def gemv_rows(table: LayerTable, batch: int, spec) -> np.ndarray:
    """Rows of each linear layer that a CPU multiplies as matrix-vector products, each streaming the weights: all
    of its rows when there are at most `GEMV_MAX_ROWS`, else 0 (a GEMM); 0 for other kernels (a product of two
    activations, as in attention, has no weights to stream), on a GPU, and for a table without shapes."""
    if spec.executes != "cpu" or table.shapes is None:
        return np.zeros(table.n_kernels)
    features = np.array([s[-1] if s else 1 for s in table.shapes["in_shape"]], dtype=float)
    rows = batch * table.in_elems / np.maximum(features, 1.0)
    return np.where(table.kind_mask("matmul") & (table.param_elems > 0) & (rows <= GEMV_MAX_ROWS), rows, 0.0)


def _peaks(table: LayerTable, native: np.ndarray, dtype: str, spec, p: LatencyParams) -> np.ndarray:
    """Asymptotic attainable FLOP/s of each kernel (infinite for kernels costed by bytes only); `native`: the
    convolutions on PyTorch's native CPU path (`native_conv_mask`)."""
    effective = {"conv": p.eff_conv, "dwconv": p.eff_dwconv, "matmul": p.eff_matmul}
    per_kind = np.array([effective[k] * spec.peak_flops(k, dtype) if k in effective else np.inf for k in KINDS])
    return np.where(native, p.eff_conv_native * spec.peak_flops("conv", dtype), per_kind[table.kind])


def roofline_ms(table: LayerTable, batch: int, dtype: str, spec, p: LatencyParams) -> np.ndarray:
    """Roofline time (ms) of each kernel at the fitted efficiencies (no fixed costs)."""
    flops, moved = table.flops_at(batch), table.bytes_at(batch, dtype)
    # oneDNN's dense convolutions: F / (eff_conv * I / (I + half) * peak) = (F + half * B) / (eff_conv * peak);
    # the native path's are a GEMM without oneDNN's layout reorders: F / (eff_conv_native * peak)
    native = native_conv_mask(table, batch, spec)
    work = flops + np.where(table.kind_mask("conv") & ~native, p.conv_half_intensity * moved, 0.0)
    # a CPU's linear layers: a GEMM packs its weights first (a cost per byte, as oneDNN's reorders), while at most
    # GEMV_MAX_ROWS rows are multiplied row by row, each streaming the weights at eff_gemv x the bandwidth
    rows = gemv_rows(table, batch, spec)
    cpu_gemm = table.kind_mask("matmul") & (rows == 0) & (spec.executes == "cpu")
    work = work + np.where(cpu_gemm, p.matmul_half_intensity * moved, 0.0)
    compute_s = work / _peaks(table, native, dtype, spec, p)
    streamed_s = rows * DTYPE_BYTES[dtype] * table.param_elems / (p.eff_gemv * spec.mem_bw_gbs * 1e9)
    compute_s = np.where(rows > 0, streamed_s, compute_s)
    # a CPU's max pooling (``max_pool2d_with_indices``) compares window by window, far below the memory's rate
    compute_s = compute_s + batch * pool_window_elems(table, spec) / (p.eff_pool * spec.peak_flops("conv", dtype))
    memory_s = moved / (p.eff_memory * spec.mem_bw_gbs * 1e9)
    return np.maximum(compute_s, memory_s) * 1e3


def launch_ms(table: LayerTable, p: LatencyParams, native=None) -> np.ndarray:
    """Host time (ms) spent issuing each kernel; `native`: the convolutions on PyTorch's native CPU path
    (`native_conv_mask`), which cost ``launch_native_ms`` instead of ``launch_conv_ms``."""
    is_conv = table.kind <= KINDS.index("dwconv")
    ms = np.where(is_conv, p.launch_conv_ms, p.launch_other_ms)
    return ms if native is None else np.where(native, p.launch_native_ms, ms)


def predict_latency_ms(table: LayerTable, batch: int, dtype: str, mode: str, spec, p: LatencyParams) -> float:
    """Predicted wall time (ms) of one call of the model of `table` at `batch` in `dtype` and `mode` (the table's
    kernels at that batch size: `LayerTable.at`)."""
    table = table.at(batch)
    device_ms = roofline_ms(table, batch, dtype, spec, p) + p.kernel_ms
    host_ms = launch_ms(table, p, native_conv_mask(table, batch, spec))
    if spec.executes == "cpu":
        return float(device_ms.sum() + host_ms.sum() + p.call_eager_ms)
    if mode == "graph":
        return float(device_ms.sum() + p.call_graph_ms)
    return float(_pipeline_ms(device_ms, host_ms) + p.call_eager_ms)


def _pipeline_ms(device_ms: np.ndarray, host_ms: np.ndarray) -> float:
    """Finish time of in-order kernels on a device fed by a host that issues kernel ``i`` at ``sum(host[:i+1])``."""
    issue = np.cumsum(host_ms)
    done_before = np.concatenate([[0.0], np.cumsum(device_ms)[:-1]])
    return float(device_ms.sum() + np.max(issue - done_before))
