"""Does the prediction at the host's speed level over the session predict a validation's real runs better?

Since 2026-12-06 (run Y) the verdict of `flexsim validate` uses the profile at the host's speed level over the
session: the geometric mean of the levels of the closed-loop bursts right before each of the scenario's real runs
(`simulator.runner.validation.session_simulations`), times what open-loop serving costs beyond the drift
(``factor_at_levels``); before, it used the profile as measured before the runs, times the serving factor with the
drift (``factor``). This script re-simulates every scenario of a validation folder four ways (200 seeds unless
``--seeds`` says otherwise) and prints the mean and p99 latency errors against the same real runs and the timing
verdict at loads <= 80% (within 5% / 10% or the real-vs-real spread):

- ``profile``: ``factor`` alone (the verdict's prediction before run Y);
- ``session``: the session's level times the verdict's serving factor, as ``results.json`` records it: since run
  AH a poll-release open loop's ``factor_at_levels`` pooled (median) over the session's poll-release open loops,
  before each profile's own ``factor_at_levels`` (``factor`` where a profile predates the levels);
- ``session x factor``: the session's level times ``factor`` (the drift counted twice);
- ``session alone``: the session's level, no serving factor.

Since run AK the verdict's prediction also has the long phases of the session's profiling runs
(``session.long_phases`` in ``results.json``); every variant here has them too where the folder recorded them.

The bursts' levels come from ``results.json``: as recorded (``session.burst_levels``, in results written after
run AA), or, in older folders, from each burst's stage factors, stored as their mean, so that a scenario with
several models, ``cascade-80``, is approximated there. No PyTorch, no GPU.

Usage::

    python experiments/session_speed.py docs/validation
    python experiments/session_speed.py docs/validation --scenarios open-50,cascade-80 --seeds 50
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from serving_levels import errors, verdict_cell
from session_band import bursts
from validation_folder import guarded, load_results, parser, shipped_cache

VARIANTS = ("profile", "session", "session x factor", "session alone")


def factors(figures: dict, folder: Path) -> list[float]:
    """The stage scale of each of `VARIANTS` for the scenario of `figures` (closed loops: no serving factor), the
    serving factors chosen as `flexsim validate` chooses them."""
    from types import SimpleNamespace

    from simulator.profiles import load_profile
    from simulator.runner.validation import burst_levels, serving_factor, serving_factor_beyond_drift, session_speed

    profile = load_profile(folder / figures["profile"])
    loop = SimpleNamespace(clients=int(figures["load"] is None))      # what the choice reads of the inputs
    used, beyond = serving_factor(profile, loop), serving_factor_beyond_drift(profile, loop)
    levels = (figures.get("session", {}).get("burst_levels")
              or burst_levels(bursts(figures), tuple(figures["models"]), profile))
    speed = session_speed(levels)
    verdict = figures.get("session", {}).get("serving_factor", beyond)     # pooled over the session since run AH
    return [used, speed * verdict, speed * used, speed]


def main(argv=None) -> int:
    return guarded(report, parser(__doc__.split("\n\n")[0], "all").parse_args(argv))


def report(args) -> None:
    """Print the table for the folder and scenarios of `args`."""
    results, scenarios = load_results(args)

    from simulator.runner.report import TARGET_LOAD

    cache = shipped_cache()
    print(f"{args.folder}: per scenario, stage scale: mean / p99 error (timing verdict at loads <= 80%), "
          f"{args.seeds} seeds")
    print("| scenario | spread mean / p99 | " + " | ".join(VARIANTS) + " |")
    print("|---" * (len(VARIANTS) + 2) + "|")
    met = np.zeros(len(VARIANTS), dtype=int)
    with tempfile.TemporaryDirectory() as scratch:
        for sc in scenarios:
            scales = factors(sc, args.folder)
            checked = errors(sc, args.folder, scales, args.seeds, results["plan"], cache, Path(scratch))
            timed = sc["load"] is None or sc["load"] <= TARGET_LOAD
            met += [m for _, m in checked] if timed else 0
            cells = [verdict_cell(f, e, m, timed) for f, (e, m) in zip(scales, checked)]
            print(f"| {sc['name']} | {sc['latency_mean_ms']['spread']:.0%} / {sc['latency_p99_ms']['spread']:.0%} "
                  f"| " + " | ".join(cells) + " |", flush=True)
    print("timing targets met at loads <= 80%: " + ", ".join(f"{n} {v}" for n, v in zip(met, VARIANTS)))


if __name__ == "__main__":
    sys.exit(main())
