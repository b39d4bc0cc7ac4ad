"""Fitting the cost model's per-device parameters to measured points with SciPy (least squares on log ratios).

Latency: the `LatencyParams` of a device, fitted on relative errors ``log(predicted / measured)`` with a soft-L1
loss (robust to the few measurements that the host's noise spoilt) and a weak pull towards the defaults (so that
parameters the data cannot identify, e.g. the CUDA-graph call cost of a profile without graphs, stay put). Every
architecture weighs the same in the fit, however many points it has (`architecture_weights`): the model is meant to
carry over to architectures it was not fitted on, so one architecture measured at many batch sizes (the
Fashion-MNIST members at 16, ResNet-50's members in two modes) must not decide the parameters alone.
The objective has local minima, and a host whose costs lie far from the defaults (a slow CPU) sends one run of
`least_squares` to different ones for nearly equal data: the fit starts from the defaults and from `FIT_STARTS` - 1
seeded points around them, and keeps the lowest minimum (`start_points`; `docs/cost-model.md`, "Accuracy").

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

from simulator.costmodel.latency import CallWork, LatencyParams, call_work, join_calls, work_latency_ms
from simulator.costmodel.layers import KINDS, load_table
from simulator.errors import require

PRIOR_WEIGHT = 0.05
SOFT_L1_SCALE = 0.05
FIT_STARTS = 8        # least-squares runs per fit: the defaults and 7 drawn starts
START_SPREAD = 4.0    # each drawn start's parameters lie within this factor of the defaults'
START_SEED = 0        # the draws are seeded: a fit is repeatable


def _tables(points) -> dict:
    return {a: load_table(a) for a in {p.arch for p in points}}


def point_works(points, tables, spec) -> CallWork:
    """The parameter-free costs of the points' calls (`latency.call_work`), joined and prepared once for a fit."""
    return join_calls([call_work(tables[p.arch].at(p.batch), p.batch, p.dtype, p.mode, spec) for p in points])


def latency_residuals(theta, works: CallWork, measured_ms: np.ndarray) -> np.ndarray:
    """log(predicted / measured) of each point; `works`: their calls (`point_works`), `measured_ms`: their
    measured latencies."""
    return np.log(work_latency_ms(works, LatencyParams.from_log(theta)) / measured_ms)


def architecture_weights(points) -> np.ndarray:
    """Residual weights giving every architecture the same total weight (squared weights of an architecture's
    points sum to the same value), normalised to a mean squared weight of 1."""
    counts = Counter(p.arch for p in points)
    w = np.array([1.0 / np.sqrt(counts[p.arch]) for p in points])
    return w / np.sqrt(np.mean(w ** 2))


def fit_latency(points, spec, start: LatencyParams = LatencyParams(), fixed: dict | None = None,
                starts: int = FIT_STARTS) -> LatencyParams:
    """The latency parameters of device `spec` that best predict the measured `points`; those named in `fixed`
    (``{field: value}``, e.g. a CPU's linear-layer rates measured on the device, `linear.measured_linear_params`)
    are held at their values. The objective has local minima: it is minimised from `start` and from ``starts - 1``
    points drawn around it (`start_points`), and the lowest minimum found wins."""
    require(points, f"cost model: no measured points to fit device {spec.name} on")
    fixed = fixed or {}
    names = [f.name for f in fields(LatencyParams)]
    unknown = sorted(set(fixed) - set(names))
    require(not unknown, f"cost model: unknown latency parameter(s) to hold fixed: {', '.join(unknown)}")
    held = np.array([names.index(k) for k in fixed], dtype=int)
    start = replace(start, **fixed)
    works, theta0, weights = point_works(points, _tables(points), spec), start.to_log(), architecture_weights(points)
    measured_ms = np.array([p.latency_ms for p in points])
    free = np.setdiff1d(np.arange(theta0.size), held)

    def full(x):
        theta = theta0.copy()
        theta[free] = x
        return theta

    def residuals(x):
        return np.concatenate([weights * latency_residuals(full(x), works, measured_ms),
                               PRIOR_WEIGHT * (x - theta0[free])])

    return LatencyParams.from_log(full(lowest_minimum(residuals, start_points(theta0[free], starts))))


def lowest_minimum(residuals, starts: list[np.ndarray]) -> np.ndarray:
    """The parameters of the lowest of the minima that robust least squares (soft-L1 loss) reaches from each of
    `starts`; ties go to the earlier start."""
    results = [least_squares(residuals, x0, loss="soft_l1", f_scale=SOFT_L1_SCALE, diff_step=1e-3) for x0 in starts]
    return min(results, key=lambda r: r.cost).x


def start_points(x0: np.ndarray, n: int) -> list[np.ndarray]:
    """`x0` and ``n - 1`` points drawn around it (log parameters, each within a factor of `START_SPREAD`; seeded,
    so a fit is repeatable)."""
    rng = np.random.default_rng(START_SEED)
    return [x0] + [x0 + rng.uniform(-np.log(START_SPREAD), np.log(START_SPREAD), x0.size) for _ in range(n - 1)]


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
