"""Fitting the cost model's per-device parameters to measured points with SciPy (least squares on log ratios).

Latency: the `LatencyParams` of a device, fitted on relative errors ``log(predicted / measured)`` with a soft-L1
loss (robust to the few measurements that the host's noise spoilt) and a weak pull towards the defaults (so that
parameters the data cannot identify, e.g. the CUDA-graph call cost of a profile without graphs, stay put). Every
architecture weighs the same in the fit, however many points it has (`architecture_weights`): the model is meant to
carry over to architectures it was not fitted on, so one architecture measured at many batch sizes (the
Fashion-MNIST members at 16, ResNet-50's members in two modes) must not decide the parameters alone.

Energy: ``static_w * latency + pj_per_flop * FLOPs + pj_per_byte * bytes`` (capped at the power envelope times the
latency), fitted on measured energies per call given their measured median latencies (the energy was measured over
windows of back-to-back calls at the host's typical speed; `points.Point.typical_ms`). Each kernel's FLOPs count in
proportion to the FP16 tensor peak over the peak of the unit that runs it (`reference_flops`): a unit with half the
peak (TF32 against FP16 on tensor cores) draws about the same power per cycle and so spends about twice the energy
per FLOP, the reasoning by which `EnergyParams.scaled` carries the energy per FLOP from one device to another.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields, replace

import numpy as np
from scipy.optimize import least_squares

from simulator.costmodel.latency import LatencyParams, predict_latency_ms
from simulator.costmodel.layers import KINDS, load_table
from simulator.errors import require

PRIOR_WEIGHT = 0.05
SOFT_L1_SCALE = 0.05


def _tables(points) -> dict:
    return {a: load_table(a) for a in {p.arch for p in points}}


def latency_residuals(theta, points, tables, spec) -> np.ndarray:
    """log(predicted / measured) of each point."""
    params = LatencyParams.from_log(theta)
    return np.array([np.log(predict_latency_ms(tables[p.arch], p.batch, p.dtype, p.mode, spec, params)
                            / p.latency_ms) for p in points])


def architecture_weights(points) -> np.ndarray:
    """Residual weights giving every architecture the same total weight (squared weights of an architecture's
    points sum to the same value), normalised to a mean squared weight of 1."""
    counts = Counter(p.arch for p in points)
    w = np.array([1.0 / np.sqrt(counts[p.arch]) for p in points])
    return w / np.sqrt(np.mean(w ** 2))


def fit_latency(points, spec, start: LatencyParams = LatencyParams(), fixed: dict | None = None) -> LatencyParams:
    """The latency parameters of device `spec` that best predict the measured `points`; those named in `fixed`
    (``{field: value}``, e.g. a CPU's linear-layer rates measured on the device, `linear.measured_linear_params`)
    are held at their values."""
    require(points, f"cost model: no measured points to fit device {spec.name} on")
    fixed = fixed or {}
    names = [f.name for f in fields(LatencyParams)]
    unknown = sorted(set(fixed) - set(names))
    require(not unknown, f"cost model: unknown latency parameter(s) to hold fixed: {', '.join(unknown)}")
    held = np.array([names.index(k) for k in fixed], dtype=int)
    start = replace(start, **fixed)
    tables, theta0, weights = _tables(points), start.to_log(), architecture_weights(points)
    free = np.setdiff1d(np.arange(theta0.size), held)

    def full(x):
        theta = theta0.copy()
        theta[free] = x
        return theta

    def residuals(x):
        return np.concatenate([weights * latency_residuals(full(x), points, tables, spec),
                               PRIOR_WEIGHT * (x - theta0[free])])

    result = least_squares(residuals, theta0[free], loss="soft_l1", f_scale=SOFT_L1_SCALE, diff_step=1e-3)
    return LatencyParams.from_log(full(result.x))


@dataclass(frozen=True)
class EnergyParams:
    """Energy of a call: static power over its duration plus dynamic energy per FLOP (at the FP16 tensor rate, see
    `reference_flops`) and per byte moved."""

    static_w: float
    pj_per_flop: float
    pj_per_byte: float

    def to_json(self) -> dict:
        return {k: float(f"{v:.6g}") for k, v in vars(self).items()}

    def scaled(self, reference, target) -> "EnergyParams":
        """These parameters carried from device `reference` to device `target` (both `DeviceSpec`s): static power
        in proportion to the power envelope; energy per FLOP (per byte) in proportion to the envelope divided by
        the peak FP16 tensor FLOP/s (by the memory bandwidth)."""
        power = target.power_w / reference.power_w
        flop = power * reference.peak_flops("conv", "fp16") / target.peak_flops("conv", "fp16")
        byte = power * reference.mem_bw_gbs / target.mem_bw_gbs
        return EnergyParams(self.static_w * power, self.pj_per_flop * flop, self.pj_per_byte * byte)


def reference_flops(table, batch: int, dtype: str, spec) -> float:
    """FLOPs of one call counted at the FP16 tensor rate of device `spec`.

    Parameters
    ----------
    table : LayerTable
        The kernels of the call.
    batch : int
        Batch size.
    dtype : str
        Data type of the call.
    spec : DeviceSpec
        Device, whose peaks say which unit runs each kernel (`DeviceSpec.peak_flops`).

    Returns
    -------
    float
        Sum over kernels of FLOPs times ``peak(FP16 tensor) / peak(unit running the kernel)``: a TF32 convolution
        counts twice, an FP32 linear layer on CUDA cores ~15 times on an H100; on a CPU with one peak, the FLOPs.
    """
    table = table.at(batch)
    unit_peak = np.array([spec.peak_flops(kind, dtype) for kind in KINDS])
    return float((table.flops_at(batch) * (spec.peak_flops("conv", "fp16") / unit_peak)[table.kind]).sum())


def predict_energy_j(table, batch: int, dtype: str, spec, latency_ms: float, e: EnergyParams) -> float:
    """Energy (J) of one call lasting `latency_ms`; never more than the device's power envelope over that time."""
    table = table.at(batch)
    flops, moved = reference_flops(table, batch, dtype, spec), table.bytes_at(batch, dtype).sum()
    dynamic_j = 1e-12 * (e.pj_per_flop * flops + e.pj_per_byte * moved)
    energy_j = e.static_w * latency_ms / 1e3 + dynamic_j
    return energy_j if spec.power_w is None else min(energy_j, spec.power_w * latency_ms / 1e3)


def fit_energy(points, spec) -> EnergyParams | None:
    """Energy parameters fitted on the points with a measured energy, given their measured median latency (None
    when no point has an energy)."""
    points = [p for p in points if p.energy_j is not None]
    if not points:
        return None
    tables = _tables(points)

    def residuals(theta):
        e = EnergyParams(*np.exp(theta))
        return np.array([np.log(predict_energy_j(tables[p.arch], p.batch, p.dtype, spec, p.typical_ms, e)
                                / p.energy_j) for p in points])

    start = np.log([0.2 * (spec.power_w or 100.0), 1.0, 100.0])
    result = least_squares(residuals, start, loss="soft_l1", f_scale=SOFT_L1_SCALE)
    return EnergyParams(*(float(v) for v in np.exp(result.x)))
