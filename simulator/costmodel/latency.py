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

On a CPU whose vector width is known (``spec.channel_block``: 16 fp32 lanes with AVX-512, 8 with AVX2), oneDNN's
dense convolutions count their output channels rounded up to a multiple of it: its blocked layouts compute whole
blocks (`channel_padding`).

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
from simulator.errors import require


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


def channel_padding(table: LayerTable, spec) -> np.ndarray:
    """Per kernel, how many times its FLOPs a dense convolution computes on a CPU whose oneDNN holds output channels
    in blocks of ``spec.channel_block`` fp32 lanes (16 with AVX-512, 8 with AVX2: `devices.CHANNEL_BLOCK`): its output
    channels rounded up to a multiple of the block, over its output channels (a width-8 member's convolutions: 2 on
    AVX-512). 1 for other kernels, on a GPU, where the block is unknown and for a table without shapes; the caller
    applies it to oneDNN's convolutions only (PyTorch's native path is a plain GEMM)."""
    block = getattr(spec, "channel_block", None)
    if spec.executes != "cpu" or block is None or table.shapes is None:
        return np.ones(table.n_kernels)
    out = np.array([s[0] if s else 1 for s in table.shapes["out_shape"]], dtype=float)
    return np.where(table.kind_mask("conv"), np.ceil(out / block) * block / np.maximum(out, 1.0), 1.0)


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


#: The efficiency that applies to each kind of kernel with a compute roof (others are costed by bytes only).
_EFFICIENCY = {"conv": "eff_conv", "dwconv": "eff_dwconv", "matmul": "eff_matmul"}


@dataclass(frozen=True, eq=False)
class CallWork:
    """What calls of a model cost before any fitted parameter: per kernel, the work and the unit it runs on
    (`call_work`); the kernels of several calls of one device end to end (`join_calls`). A fit prices the same
    calls under many parameter sets, so it prepares them once and prices them all in one pass (`work_latency_ms`)."""

    flops: np.ndarray  # FLOPs of each kernel at the call's batch size
    moved: np.ndarray  # bytes each kernel moves
    reorder: np.ndarray  # oneDNN's dense convolutions: conv_half_intensity FLOP-times per byte moved
    gemm: np.ndarray  # a CPU's linear layers multiplied as a GEMM: matmul_half_intensity FLOP-times per byte moved
    native: np.ndarray  # dense convolutions on PyTorch's native CPU path (`native_conv_mask`)
    kind: np.ndarray  # index into KINDS
    peak: np.ndarray  # datasheet FLOP/s of the unit that runs each kernel (the kind's; native: dense convolutions')
    streamed: np.ndarray  # bytes a CPU's row-by-row linear layer streams (rows x weights; 0 elsewhere)
    pool_work: np.ndarray  # a CPU's max-pooling window comparisons over the FP32 dense-convolution peak (s at eff 1)
    first: np.ndarray  # index of each call's first kernel
    graph: np.ndarray  # each call runs as a CUDA graph (a GPU's; a CPU runs every call eagerly)
    bandwidth: float  # bytes/s of the device's memory
    on_cpu: bool


def call_work(table: LayerTable, batch: int, dtype: str, mode: str, spec) -> CallWork:
    """The parameter-free costs of one call of `table` (already at `batch`: `LayerTable.at`) in `mode` on device
    `spec`."""
    moved = table.bytes_at(batch, dtype)
    native = native_conv_mask(table, batch, spec)
    rows = gemv_rows(table, batch, spec)
    on_cpu = spec.executes == "cpu"
    conv_peak = spec.peak_flops("conv", dtype)
    per_kind = np.array([spec.peak_flops(k, dtype) if k in _EFFICIENCY else np.inf for k in KINDS])
    reorder = table.kind_mask("conv") & ~native
    return CallWork(flops=table.flops_at(batch) * np.where(reorder, channel_padding(table, spec), 1.0),
                    moved=moved, reorder=reorder,
                    gemm=table.kind_mask("matmul") & (rows == 0) & on_cpu, native=native, kind=table.kind,
                    peak=np.where(native, conv_peak, per_kind[table.kind]),
                    streamed=rows * DTYPE_BYTES[dtype] * table.param_elems,
                    pool_work=batch * pool_window_elems(table, spec) / conv_peak,
                    first=np.zeros(1, dtype=int), graph=np.array([mode == "graph"]),
                    bandwidth=spec.mem_bw_gbs * 1e9, on_cpu=on_cpu)


def join_calls(works: list[CallWork]) -> CallWork:
    """Calls of one device (`call_work`) as one: their kernels end to end, each call's first kernel recorded."""
    require(works, "cost model: no calls to join")
    require(len({(w.bandwidth, w.on_cpu) for w in works}) == 1, "cost model: calls of different devices to join")
    sizes = np.array([w.flops.size for w in works])
    per_kernel = {f.name: np.concatenate([getattr(w, f.name) for w in works]) for f in fields(CallWork)
                  if f.name not in ("first", "bandwidth", "on_cpu")}
    return CallWork(**per_kernel, first=np.concatenate([[0], np.cumsum(sizes)[:-1]]),
                    bandwidth=works[0].bandwidth, on_cpu=works[0].on_cpu)


def _efficiency(work: CallWork, p: LatencyParams) -> np.ndarray:
    """The share of its unit's peak that each kernel reaches (1 for kernels without a compute roof)."""
    per_kind = np.array([getattr(p, _EFFICIENCY[k]) if k in _EFFICIENCY else 1.0 for k in KINDS])
    return np.where(work.native, p.eff_conv_native, per_kind[work.kind])


def work_roofline_ms(work: CallWork, p: LatencyParams) -> np.ndarray:
    """Roofline time (ms) of each kernel of prepared calls at the fitted efficiencies (no fixed costs)."""
    # oneDNN's dense convolutions: F / (eff_conv * I / (I + half) * peak) = (F + half * B) / (eff_conv * peak);
    # the native path's are a GEMM without oneDNN's layout reorders: F / (eff_conv_native * peak)
    # a CPU's linear layers: a GEMM packs its weights first (a cost per byte, as oneDNN's reorders), while at most
    # GEMV_MAX_ROWS rows are multiplied row by row, each streaming the weights at eff_gemv x the bandwidth
    flops = (work.flops + np.where(work.reorder, p.conv_half_intensity * work.moved, 0.0)
             + np.where(work.gemm, p.matmul_half_intensity * work.moved, 0.0))
    compute_s = flops / (_efficiency(work, p) * work.peak)
    compute_s = np.where(work.streamed > 0, work.streamed / (p.eff_gemv * work.bandwidth), compute_s)
    # a CPU's max pooling (``max_pool2d_with_indices``) compares window by window, far below the memory's rate
    compute_s = compute_s + work.pool_work / p.eff_pool
    memory_s = work.moved / (p.eff_memory * work.bandwidth)
    return np.maximum(compute_s, memory_s) * 1e3


def roofline_ms(table: LayerTable, batch: int, dtype: str, spec, p: LatencyParams) -> np.ndarray:
    """Roofline time (ms) of each kernel at the fitted efficiencies (no fixed costs)."""
    return work_roofline_ms(call_work(table, batch, dtype, "eager", spec), p)   # the mode adds fixed costs only


def launch_ms(kind: np.ndarray, p: LatencyParams, native=None) -> np.ndarray:
    """Host time (ms) spent issuing each kernel of kind `kind` (index into KINDS); `native`: the convolutions on
    PyTorch's native CPU path (`native_conv_mask`), which cost ``launch_native_ms`` instead of ``launch_conv_ms``."""
    ms = np.where(kind <= KINDS.index("dwconv"), p.launch_conv_ms, p.launch_other_ms)
    return ms if native is None else np.where(native, p.launch_native_ms, ms)


def predict_latency_ms(table: LayerTable, batch: int, dtype: str, mode: str, spec, p: LatencyParams) -> float:
    """Predicted wall time (ms) of one call of the model of `table` at `batch` in `dtype` and `mode` (the table's
    kernels at that batch size: `LayerTable.at`)."""
    return float(work_latency_ms(call_work(table.at(batch), batch, dtype, mode, spec), p)[0])


def work_latency_ms(work: CallWork, p: LatencyParams) -> np.ndarray:
    """Predicted wall time (ms) of each prepared call (`call_work`, `join_calls`)."""
    device_ms = work_roofline_ms(work, p) + p.kernel_ms
    host_ms = launch_ms(work.kind, p, work.native)
    if work.on_cpu:
        return np.add.reduceat(device_ms + host_ms, work.first) + p.call_eager_ms
    return np.where(work.graph, np.add.reduceat(device_ms, work.first) + p.call_graph_ms,
                    _pipeline_ms(device_ms, host_ms, work.first) + p.call_eager_ms)


def _pipeline_ms(device_ms: np.ndarray, host_ms: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Finish time of each call's in-order kernels (those from ``first[c]`` on) on a device fed by a host that
    issues a call's kernel ``i`` once it has spent ``host_ms`` on every kernel of the call up to ``i``."""
    host_done = np.concatenate([[0.0], np.cumsum(host_ms)])
    device_done = np.concatenate([[0.0], np.cumsum(device_ms)])
    # kernel j's issue time minus the device time of its call's kernels before it, counted from the first call
    lead = host_done[1:] - device_done[:-1]
    return (np.add.reduceat(device_ms, first) + np.maximum.reduceat(lead, first)
            - (host_done[first] - device_done[first]))
