"""Does the profile's member-idle table predict the real runs? A check on a validation folder's raw traces.

A stage whose member last ran t ms ago runs slower, whatever the worker did meanwhile (`docs/semantics.md`,
``member_idle``). The profiles of `flexsim validate` fit that table on their open-loop profiling runs; this script
measures the same effect in the folder's real runs, directly: per bucket of the time since the member last ended,
the median compute time of the stage runs that are not the first of their busy period (so the worker did not idle
right before them: no wake-up), over the median of the same members' runs within 2 ms of their previous run, pooled
over the runs of each scenario; beside it, the scenario's profile's factor at the bucket's median time. No PyTorch,
no GPU: it reads the raw traces (``<scenario>/real-*.npz``) and the profiles.

Usage::

    python experiments/member_idle.py docs/validation
    python experiments/member_idle.py docs/validation --scenarios open-50,cascade-80
"""

from __future__ import annotations

import sys

import numpy as np

from simulator.errors import require
from validation_folder import guarded, load_results, parser

#: Edges (ms) of the buckets of the time since the member last ended; the first is the warm reference.
EDGES_MS = (0.0, 2.0, 4.0, 8.0, 16.0, np.inf)
#: Stage runs a bucket needs to be shown.
MIN_RUNS = 30


def real_ratios(runs) -> list:
    """Per bucket after the first: (median ms since the member last ended, median compute over the warm bucket's,
    stage runs), from the stage runs of `runs` that are not first in their busy period; None where too few."""
    from simulator.runner.idle import busy_periods, member_idle_ms

    idle, ratio = [], []
    for run in runs:
        times = run.stage_times
        position, _ = busy_periods(run)
        since = member_idle_ms(run)
        keep = (position > 0) & np.isfinite(since)
        for k in np.unique(times.stage):
            at = keep & (times.stage == k)
            warm = at & (since < EDGES_MS[1])
            if warm.sum() >= MIN_RUNS:
                idle.append(since[at])
                ratio.append(times.compute_s[at] / np.median(times.compute_s[warm]))
    idle, ratio = (np.concatenate(x) if x else np.zeros(0) for x in (idle, ratio))
    out = []
    for lo, hi in zip(EDGES_MS[1:-1], EDGES_MS[2:]):
        at = (idle >= lo) & (idle < hi)
        out.append((float(np.median(idle[at])), float(np.median(ratio[at])), int(at.sum()))
                   if at.sum() >= MIN_RUNS else None)
    return out


def profile_factor(profile, idle_ms: float) -> float:
    """The profile's member-idle factor at `idle_ms` (1 without a table)."""
    if profile.member_idle is None:
        return 1.0
    points, factors = profile.member_idle
    return float(np.interp(idle_ms, np.r_[0.0, points], np.r_[1.0, factors]))


def main(argv=None) -> int:
    return guarded(report, parser(__doc__.split("\n\n")[0], "all").parse_args(argv))


def report(args) -> None:
    """Print the table for the folder and scenarios of `args`."""
    from simulator.profiles import load_profile
    from simulator.runner.validation import load_raw

    _, scenarios = load_results(args)
    buckets = [f"{lo:g}-{hi:g} ms" for lo, hi in zip(EDGES_MS[1:-1], EDGES_MS[2:])]
    print(f"{args.folder}: per bucket of the time since the member last ended, real runs' median compute time "
          f"over the same members' within {EDGES_MS[1]:g} ms (stage runs) / the profile's factor there")
    print("| scenario | " + " | ".join(buckets) + " |")
    print("|---|" + "---|" * len(buckets))
    for sc in scenarios:
        paths = sorted((args.folder / sc["name"]).glob("real-*.npz"))
        require(paths, f"no raw traces {sc['name']}/real-*.npz")
        profile = load_profile(args.folder / sc["profile"])
        cells = ["–" if cell is None else
                 f"{cell[1]:.3f} ({cell[2]}) / {profile_factor(profile, cell[0]):.3f}"
                 for cell in real_ratios([load_raw(p) for p in paths])]
        print(f"| {sc['name']} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
