"""Does the host's speed process during each real run explain what the speed-calibrated simulation misses?

`flexsim validate`'s diagnostic **calibrated** simulates each real run at the run's own mean stage and decision
times, with the profile's speed process (fitted on the profiling runs, minutes before). This script repeats it for
every real run of a committed validation folder with three processes:

- **profile**: the profile's, as the report's diagnostic;
- **phases**: the profile's sigma and correlation time with the slow phases (20 ms windows more than 1.3x slower
  than the run's median window, `simulator.runner.speed_fit`) pooled over the scenario's real runs, however few
  they are (the profile keeps slow phases only where its runs show at least five);
- **run**: the run's own process (`simulator.runner.speed_fit.fit_speed_noise` on that run alone).

The last two are not predictions: they are fitted on the runs they are compared with. Where they put a run's mean
and p99 latency where the first does not, what the calibrated simulation misses is the host's speed process during
the runs, which differs from the profiling runs' (and from run to run), not the model of the served system.

It needs no PyTorch and no GPU: the raw traces (``<scenario>/real-<i>.npz``), the profiles and ``results.json``
of the folder.

Usage::

    python experiments/run_speed_process.py docs/validation
    python experiments/run_speed_process.py docs/validation --scenarios deadline-80 --seeds 50
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from simulator.errors import require
from simulator.speed import SpeedNoise
from validation_folder import guarded, load_results, parser, shipped_cache, with_slow_phases

METRICS = ("latency_mean_ms", "latency_p99_ms")
#: The process of a run in which the fit finds none (a flat speed; the config's None would mean the profile's).
NO_PROCESS = SpeedNoise(0.0, 1.0)


def real_slow_phases(runs) -> dict:
    """The slow phases of `runs` pooled, however few (`simulator.runner.speed_fit.slow_phase_windows`)."""
    from simulator.runner.speed_fit import log_residuals, slow_phase_windows

    return slow_phase_windows(runs, [log_residuals(run) for run in runs])[0]


def run_check(figures: dict, folder: Path, plan: dict, seeds: int, cache, scratch: Path) -> tuple[dict, list]:
    """The slow phases of the scenario's real runs (`figures`: its ``results.json`` entry) and, per real run, its
    own speed process and the errors (real / simulated median - 1) of the calibrated simulation with each process
    of the module docstring."""
    from simulator.profiles import load_profile
    from simulator.run import prepare, run_inputs
    from simulator.runner.calibrate import calibrated, speed_factors
    from simulator.runner.speed_fit import fit_speed_noise
    from simulator.runner.validation import SCENARIOS, ValidationPlan, load_raw, prepare_scenario, sim_figures

    scenario = {s.name: s for s in SCENARIOS}[figures["name"]]
    profile = load_profile(folder / figures["profile"])
    state = prepare_scenario(ValidationPlan(out_dir=scratch, requests=plan["requests"], seeds=seeds,
                                            seed=plan["seed"]), scenario, folder / figures["profile"], profile, cache)
    paths = [folder / scenario.name / f"real-{i}.npz" for i in range(len(figures["runs"]))]
    missing = [p.name for p in paths if not p.is_file()]
    require(not missing, f"no raw traces {scenario.name}/{', '.join(missing)} (the real runs' stage times)")
    reals = [load_raw(p) for p in paths]
    phases = real_slow_phases(reals)
    slow = with_slow_phases(profile.speed_noise, phases["slow_factor"], phases["slow_share"], phases["slow_ms"])
    pooled = replace(state.config, speed_noise=slow.as_tuple())
    out = []
    for i, real in enumerate(reals):
        stage_factors, decision_factor = speed_factors(real, state.config.models, profile, waited_only=True)
        noise, _ = fit_speed_noise([real])
        own = replace(state.config, speed_noise=(noise or NO_PROCESS).as_tuple())
        row = {"index": i, "noise": noise, "real": {m: figures["runs"][i][m] for m in METRICS}}
        for label, config in (("profile", state.config), ("phases", pooled), ("run", own)):
            drawn = [prepare(replace(config, seed=config.seed + k), cache) for k in range(seeds)]
            sim = sim_figures([run_inputs(calibrated(x, stage_factors, decision_factor), "numba") for x in drawn])
            row[label] = {m: row["real"][m] / sim[m] - 1.0 for m in METRICS}
        out.append(row)
    return phases, out


def _noise_cell(noise) -> str:
    if noise is None:
        return "none"
    slow = f"; {noise.slow_factor:.2f}x {noise.slow_share:.0%}" if noise.has_slow_phases else ""
    return f"{noise.sigma:.3f}, {noise.correlation_ms:.0f} ms{slow}"


def _pct(x: float) -> str:
    return f"{x:+.1%}"


def main(argv=None) -> int:
    return guarded(report, parser(__doc__.split("\n\n")[0], "all").parse_args(argv))


def report(args) -> None:
    """Print the table for the folder and scenarios of `args`."""
    results, scenarios = load_results(args)

    from simulator.profiles import load_profile

    cache = shipped_cache()
    print(f"{args.folder}: the calibrated simulation ({args.seeds} seeds) with the profile's speed process / the "
          "profile's with the real runs' slow phases / the run's own; error = real / simulated median - 1")
    print("| scenario | profile's process | real runs' slow phases (phases) | run | run's process | mean error | "
          "p99 error |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for sc in scenarios:
            profiled = _noise_cell(load_profile(args.folder / sc["profile"]).speed_noise)
            phases, rows = run_check(sc, args.folder, results["plan"], args.seeds, cache, Path(scratch))
            slow = (f"{phases['slow_factor']:.2f}x, {phases['slow_share']:.1%}, {phases['slow_ms']:.0f} ms "
                    f"({phases['phases']})")
            for row in rows:
                cells = [" / ".join(_pct(row[k][m]) for k in ("profile", "phases", "run")) for m in METRICS]
                print(f"| {sc['name']} | {profiled} | {slow} | {row['index']} | {_noise_cell(row['noise'])} | "
                      + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
