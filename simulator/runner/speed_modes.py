"""The host's speed modes: how a shared host's speed for one fixed call changes from second to second.

On this project's VM the same forward pass runs at one of two speeds about 1.6x apart and the host switches between
them every few seconds (`docs/validation-history.md`). `speed_modes` summarises a series of per-window medians of
one call's latency (``experiments/host_speed_modes.py`` measures them): which windows were slow, the share of time
in the fast mode, how long the slow stretches lasted and how much slower they were. It tells whether a host is
quiet enough for ``flexsim validate`` or a profile: on a host with one mode, no window is slow.
"""

from __future__ import annotations

import numpy as np

from simulator.errors import require

#: A window is slow when its median exceeds the fast reference (the 10th percentile of the window medians) by more
#: than this factor.
SLOW_ABOVE = 1.2


def speed_modes(window_ms, slow_above: float = SLOW_ABOVE) -> dict:
    """Summary of per-window median latencies `window_ms` (ms, in time order, one per window of equal length).

    Returns
    -------
    dict
        ``windows``; ``fast_ms`` (the windows' 10th percentile, the fast mode's latency); ``slow`` (bool per
        window); ``fast_share`` (of windows); ``slow_over_fast`` (median slow window over ``fast_ms``, NaN when none
        is slow); ``slow_stretches`` (lengths, in windows, of the runs of consecutive slow windows).
    """
    ms = np.asarray(window_ms, dtype=float)
    require(ms.ndim == 1 and ms.size >= 2, "speed modes: need at least two window medians")
    require(bool(np.all(np.isfinite(ms) & (ms > 0))), "speed modes: window medians must be finite and > 0")
    require(slow_above > 1, f"speed modes: slow_above = {slow_above} must be > 1")
    fast_ms = float(np.percentile(ms, 10))
    slow = ms > slow_above * fast_ms
    edges = np.diff(np.concatenate([[0], slow.astype(int), [0]]))
    stretches = (np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).tolist()
    return {"windows": int(ms.size), "fast_ms": fast_ms, "slow": slow.tolist(),
            "fast_share": float(1 - slow.mean()),
            "slow_over_fast": float(np.median(ms[slow]) / fast_ms) if slow.any() else float("nan"),
            "slow_stretches": stretches}
