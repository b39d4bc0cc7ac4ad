"""Would the verdict do better with one set of slow phases for the whole session than with each profile's own?

Each profile's speed process has slow phases (20 ms windows more than 1.3x slower than the run's median window,
`simulator.runner.speed_fit`) only where its two open-loop profiling runs, about ten seconds, show at least five;
run AX's profiles put them at 5.6% and 15.5% of the time (open-50, open-80) and at none in the seven others,
while the real runs that followed showed 2-4% in every round. The phases are the host's, as the long phases are
(which the verdict already pools over the session). This script re-simulates the verdict's prediction of every
scenario of a validation folder with the slow phases given by ``--phases FACTOR,SHARE,MS`` in place of each
profile's own, with the scenario's own-run serving factor fitted again on that profile (the factor is fitted on the
same model of time, so it takes up what the phases change in the own run's busy time), and prints the mean and
p99 errors and the timing verdicts beside those of the recorded prediction, re-simulated with the same seeds.

The recorded profiles keep no 20 ms window levels of their profiling runs, so the pooled phases cannot be
recomputed from a folder: ``--phases`` is an estimate (for run AX: open-50's 12 phases and open-80's 20 over all nine
profiles' windows, with none to four phases in each of the others). No PyTorch, no GPU: it reads ``results.json``,
the profiles and the own runs.

Usage::

    python experiments/verdict_slow_phases.py docs/validation --phases 1.42,0.03,57 --seeds 40
"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from own_run_factor import own_run_factor
from serving_levels import errors, verdict_cell
from simulator.errors import require
from validation_folder import guarded, load_results, parser, shipped_cache, with_slow_phases


def phased_folder(folder: Path, figures: dict, phases: tuple, scratch: Path) -> Path:
    """A copy under `scratch` of what `figures`' scenario reads from `folder` (its profile, with the slow phases
    `phases`, and its own run)."""
    from simulator.profiles import load_profile, save_profile
    from simulator.runner.profiling import OWN_RUN_FILE

    out = scratch / "phased"
    (out / figures["name"]).mkdir(parents=True, exist_ok=True)
    profile = load_profile(folder / figures["profile"])
    save_profile(out / figures["profile"], replace(profile, speed_noise=with_slow_phases(profile.speed_noise, *phases)))
    own = folder / figures["name"] / OWN_RUN_FILE
    if own.is_file():
        shutil.copyfile(own, out / figures["name"] / OWN_RUN_FILE)
    return out


def parse_phases(text: str) -> tuple:
    """``FACTOR,SHARE,MS`` as three floats; a clear error for anything else."""
    try:
        factor, share, ms = (float(x) for x in text.split(","))
    except ValueError:
        factor = share = ms = float("nan")
    finite = all(math.isfinite(x) for x in (factor, share, ms))
    require(finite and factor > 1 and 0 < share < 1 and ms > 0, f"--phases {text!r}: give FACTOR,SHARE,MS with FACTOR > 1, "
            "0 < SHARE < 1 and MS > 0 (e.g. 1.42,0.03,57)")
    return factor, share, ms


def main(argv=None) -> int:
    args = parser(__doc__.split("\n\n")[0], "all")
    args.add_argument("--phases", required=True, help="the session's slow phases: FACTOR,SHARE,MS")
    return guarded(report, args.parse_args(argv))


def report(args) -> None:
    """Print the table for the folder and scenarios of `args`, then the verdicts and errors over them."""
    phases = parse_phases(args.phases)
    results, scenarios = load_results(args)

    from simulator.runner.report import TARGET_LOAD

    cache, plan = shipped_cache(), results["plan"]
    print(f"{args.folder}: the verdict's prediction re-simulated ({args.seeds} seeds) with each profile's slow phases / "
          f"with {phases[0]:.2f}x for {phases[1]:.1%} of the time, {phases[2]:.0f} ms, in every profile: scale "
          "(session speed x own-run factor): mean / p99 error (timing verdict at loads <= 80%)")
    print("| scenario | spread mean / p99 | each profile's phases | the session's |")
    print("|---|---|---|---|")
    met, abs_p99 = np.zeros(2, dtype=int), ([], [])
    with tempfile.TemporaryDirectory() as scratch:
        for sc in scenarios:
            session, timed = sc["session"], sc["load"] is None or sc["load"] <= TARGET_LOAD
            phased = phased_folder(args.folder, sc, phases, Path(scratch))
            factor = session["serving_factor"] if sc["load"] is None else \
                own_run_factor(phased, sc, plan, cache, Path(scratch))
            checked = [errors(sc, folder, [session["speed"] * f], args.seeds, plan, cache, Path(scratch))[0]
                       for folder, f in ((args.folder, session["serving_factor"]), (phased, factor))]
            if timed:
                met += [m for _, m in checked]
                for i, (e, _) in enumerate(checked):
                    abs_p99[i].append(abs(e[1]))
            cells = [verdict_cell(session["speed"] * f, e, m, timed)
                     for f, (e, m) in zip((session["serving_factor"], factor), checked)]
            print(f"| {sc['name']} | {sc['latency_mean_ms']['spread']:.0%} / {sc['latency_p99_ms']['spread']:.0%} "
                  "| " + " | ".join(cells) + " |", flush=True)
    medians = [f"{np.median(e):.1%}" if e else "-" for e in abs_p99]
    print(f"loads <= 80%: timing targets met {met[0]} with each profile's phases, {met[1]} with the session's; "
          f"median absolute p99 error {medians[0]} and {medians[1]}")


if __name__ == "__main__":
    sys.exit(main())
