"""Leave-one-architecture-out accuracy of the cost model on a measured profile.

For each architecture of the profile: fit the device's parameters on every other architecture's points, predict
the held-out architecture's points (every dtype, mode and batch size), and record the relative error
``predicted / measured - 1``. Reported: the share of points within +-10% and the median absolute error, overall
and per mode; the same for energy where the profile measured it. For a measured CPU with a microbenchmark table, the
kernel model (`simulator.costmodel.kernels`) is checked the same way (`leave_one_architecture_out_kernels`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.costmodel.fit import _tables, fit_energy, fit_latency, predict_energy_j
from simulator.costmodel.latency import predict_latency_ms
from simulator.costmodel.points import Point, typical_ratio
from simulator.errors import require


@dataclass(frozen=True)
class Prediction:
    """A held-out point with its predicted latency and energy."""

    point: Point
    latency_ms: float
    energy_j: float | None

    @property
    def latency_error(self) -> float:
        return self.latency_ms / self.point.latency_ms - 1

    @property
    def energy_error(self) -> float | None:
        if self.energy_j is None or self.point.energy_j is None:
            return None
        return self.energy_j / self.point.energy_j - 1


def leave_one_architecture_out(points: list[Point], spec, fixed: dict | None = None) -> list[Prediction]:
    """Predictions of every point by parameters fitted without its architecture (those in `fixed` held at their
    values: measured on the device, not on any architecture). The energy is predicted for a call of typical
    duration: the predicted point latency times the training points' `typical_ratio`."""
    tables = _tables(points)
    out = []
    for arch in sorted(tables):
        train = [p for p in points if p.arch != arch]
        params, energy = fit_latency(train, spec, fixed=fixed), fit_energy(train, spec)
        for p in (q for q in points if q.arch == arch):
            latency = predict_latency_ms(tables[arch], p.batch, p.dtype, p.mode, spec, params)
            typical = latency * typical_ratio(train, p.mode)
            e = None if energy is None else predict_energy_j(tables[arch], p.batch, p.dtype, spec, typical, energy)
            out.append(Prediction(point=p, latency_ms=latency, energy_j=e))
    return out


def summarise(errors) -> dict:
    """Share within +-10%, median and 90th percentile of absolute relative errors, and the count."""
    errors = np.abs(np.asarray([e for e in errors if e is not None], dtype=float))
    if errors.size == 0:
        return {"n": 0}
    return {"n": int(errors.size), "within_10pct": float(np.mean(errors <= 0.10)),
            "median_abs_error": float(np.median(errors)), "p90_abs_error": float(np.quantile(errors, 0.9))}


def accuracy_report(predictions: list[Prediction]) -> dict:
    """Latency and energy summaries, overall, per mode and per architecture."""
    def by(key):
        groups = {}
        for p in predictions:
            groups.setdefault(key(p.point), []).append(p)
        return {k: summarise(q.latency_error for q in v) for k, v in sorted(groups.items())}

    return {"latency": summarise(p.latency_error for p in predictions),
            "latency_by_mode": by(lambda pt: pt.mode), "latency_by_arch": by(lambda pt: pt.arch),
            "energy": summarise(p.energy_error for p in predictions)}


def leave_one_architecture_out_kernels(points: list[Point], predictor) -> list[Prediction]:
    """Predictions of every point by the kernel model (`simulator.costmodel.kernels`), its call parameters fitted
    without the point's architecture. The kernel predictions themselves use only the microbenchmark table, which
    holds synthetic kernels, none taken from an architecture."""
    from simulator.costmodel.kernels import call_ms, fit_call

    require(all(p.dtype == "fp32" for p in points), "kernel model: the microbenchmarks are fp32 only")
    tables = _tables(points)
    sums = {(p.arch, p.batch): predictor.kernels_ms(tables[p.arch], p.batch) for p in points}
    n_kernels = {a: t.n_kernels for a, t in tables.items()}
    out = []
    for arch in sorted(tables):
        params = fit_call([p for p in points if p.arch != arch], sums, n_kernels)
        out += [Prediction(point=p, latency_ms=call_ms(sums[arch, p.batch], n_kernels[arch], params), energy_j=None)
                for p in points if p.arch == arch]
    return out
