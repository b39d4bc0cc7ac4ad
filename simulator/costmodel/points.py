"""Measured points of a profile that the cost model fits and is checked on: (architecture, dtype, mode, batch) ->
the latency's 10th percentile (ms), its median (ms) and the energy per call (J, where measured).

Why the 10th percentile: the shared host runs the same call at two speeds about 1.6x apart, switching every few
seconds (a Fashion-MNIST member's batch-1 call: 0.27 or 0.41-0.46 ms, second by second), so a point's median says
which speed the host was in while that point was measured. Measured twice with the same command, far more of the
CPU profile's points agree within +-10% by their 10th percentile than by their median (the accuracy report's
repeatability table, `simulator.costmodel.report.repeatability`): the low quantile is the host's fast speed,
reached in every measurement. It is also the lowest quantile
every profile carries (the H100's keeps quantiles, not samples). The energy per call was measured over windows of
back-to-back calls, at the host's typical speed, so the energy model uses the median."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from simulator.costmodel.layers import DTYPE_BYTES, known_tables
from simulator.errors import require

#: The latency quantile a point stands for (see the module's docstring).
POINT_QUANTILE = 0.1


@dataclass(frozen=True)
class Point:
    """One measured configuration; repeated measurements (ensemble members of one architecture) are merged by
    their median. ``latency_ms`` is the latency's `POINT_QUANTILE` quantile, ``median_ms`` its median (the same
    where not given)."""

    arch: str
    dtype: str
    mode: str
    batch: int
    latency_ms: float
    energy_j: float | None
    n_merged: int = 1
    median_ms: float | None = None

    @property
    def typical_ms(self) -> float:
        """The median latency: the duration of a call at the host's typical speed."""
        return self.latency_ms if self.median_ms is None else self.median_ms


def entry_arch(info: dict) -> str | None:
    """The architecture of a profile entry from its ``info`` (hyphenated, as layer tables name it), or None."""
    arch = info.get("arch")
    return None if arch is None else str(arch).replace("_", "-")


def entry_mode(info: dict) -> str:
    """The mode (``eager`` or ``graph``) of a profile entry from its ``info`` (``graph`` or ``cuda-graph``)."""
    return "graph" if info.get("mode") in ("graph", "cuda-graph") else "eager"


def point_statistics(entry) -> tuple[float, float]:
    """A profile entry's latency at `POINT_QUANTILE` and its median (ms)."""
    low, median = entry.latency.icdf_ms(np.array([POINT_QUANTILE, 0.5]))
    return float(low), float(median)


def profile_points(profile) -> list[Point]:
    """Every (architecture with a layer table, dtype, mode, batch) of `profile` with its latency statistics;
    energies that were interpolated rather than measured are left out (None)."""
    known = set(known_tables())
    groups = defaultdict(lambda: ([], [], []))
    for name, model in profile.models.items():
        arch = entry_arch(model.info)
        if arch not in known:
            continue
        dtype = model.info.get("dtype", "fp32")
        require(isinstance(dtype, str) and dtype in DTYPE_BYTES, f"profile {profile.name}: model {name}'s dtype = "
                f"{dtype!r:.40} must be one of {', '.join(DTYPE_BYTES)}")
        key = (arch, dtype, entry_mode(model.info))
        for batch, entry in model.batches.items():
            low, median, energies = groups[key + (batch,)]
            stats = point_statistics(entry)
            low.append(stats[0])
            median.append(stats[1])
            if entry.energy_j is not None and not entry.extra.get("energy_interpolated"):
                energies.append(entry.energy_j)
    return [Point(*key, latency_ms=float(np.median(low)), energy_j=float(np.median(en)) if en else None,
                  n_merged=len(low), median_ms=float(np.median(med)))
            for key, (low, med, en) in sorted(groups.items())]


def untabled_models(profile) -> list[str]:
    """The models of `profile` that no layer table describes (a user's model whose table was not given; an entry
    that records no architecture, by its name): the cost model cannot cost them, so the checks leave them out, and
    say so."""
    known = set(known_tables())
    return sorted({entry_arch(m.info) or name for name, m in profile.models.items()} - known)


def untabled_note(missing: list[str], what: str = "Not checked") -> str:
    """One sentence naming the models `untabled_models` found (after `what`; the callers write it where there are
    some)."""
    return (f"{what}: {', '.join(missing)}, measured in this profile without a layer table (trace it with "
            "flexsim costmodel trace and give the table with --table).")


def typical_ratio(points, mode: str) -> float:
    """Median over `points` in `mode` (all points where none is in it) of the median latency over the point
    latency: what turns a predicted point latency into a typical call's duration."""
    chosen = [p for p in points if p.mode == mode] or list(points)
    return float(np.median([p.typical_ms / p.latency_ms for p in chosen]))
