"""Measured points of a profile that the cost model fits and is checked on: (architecture, dtype, mode, batch) ->
median latency (ms) and energy per call (J, where measured)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from simulator.costmodel.layers import committed_tables


@dataclass(frozen=True)
class Point:
    """One measured configuration; repeated measurements (ensemble members of one architecture) are merged by
    their median."""

    arch: str
    dtype: str
    mode: str
    batch: int
    latency_ms: float
    energy_j: float | None
    n_merged: int = 1


def _arch(info: dict) -> str | None:
    arch = info.get("arch")
    return None if arch is None else str(arch).replace("_", "-")


def _mode(info: dict) -> str:
    return "graph" if info.get("mode") in ("graph", "cuda-graph") else "eager"


def profile_points(profile) -> list[Point]:
    """Every (architecture with a layer table, dtype, mode, batch) of `profile` with its median latency; energies
    that were interpolated rather than measured are left out (None)."""
    known = set(committed_tables())
    groups = defaultdict(lambda: ([], []))
    for model in profile.models.values():
        arch = _arch(model.info)
        if arch not in known:
            continue
        key = (arch, model.info.get("dtype", "fp32"), _mode(model.info))
        for batch, entry in model.batches.items():
            latencies, energies = groups[key + (batch,)]
            latencies.append(float(entry.latency.icdf_ms(np.array([0.5]))[0]))
            if entry.energy_j is not None and not entry.extra.get("energy_interpolated"):
                energies.append(entry.energy_j)
    return [Point(*key, latency_ms=float(np.median(lat)), energy_j=float(np.median(en)) if en else None,
                  n_merged=len(lat)) for key, (lat, en) in sorted(groups.items())]
