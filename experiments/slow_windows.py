"""Slower phases of the seconds scale in a validation folder: how often the host had them, and what they cost.

The profile's slow phases are found in 20 ms windows at 1.3x (`simulator.runner.speed_fit`); the real runs also
show phases of a few hundred milliseconds at 1.1-1.3x, which those windows do not catch and which, at 80% load,
raise the load past 1 for as long as they last. This script reads a validation folder and prints, per scenario, the
share of 250 ms windows more than 1.1x slower than their run's median window (`speed_fit.window_levels`) in the
profiling runs (recorded in the profiles since run AJ) and in the real runs (recorded in results.json since run AJ,
else computed from the raw traces), and the mean latency of the real runs with such a window against those without;
then the phases pooled over the session (`speed_fit.long_phases`: factor, share of the time, mean length).

With ``--simulate`` it also re-simulates the verdict's prediction (the profile at the session's speed level, times
the verdict's serving factor: `session_speed.py`'s ``session``) without and with the profiling runs' pooled phases
as the speed process's long phases (`simulator.runner.validation.session_long_phases`, what the verdict uses since
run AK), and prints the mean and p99 errors against the real runs used, over the seeds' median (the verdict's
statistic) and their mean (the counterpart of the real runs' mean). No PyTorch, no GPU.

Usage::

    python experiments/slow_windows.py docs/validation
    python experiments/slow_windows.py docs/validation --simulate --seeds 100
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from validation_folder import guarded, load_results, parser, shipped_cache


def real_levels(sc: dict, folder: Path) -> list:
    """Per real run of scenario `sc`: its window levels, as recorded or from its raw trace."""
    from simulator.runner.speed_fit import window_levels
    from simulator.runner.validation import load_raw

    if all("window_levels" in r for r in sc["runs"]):
        return [r["window_levels"] for r in sc["runs"]]
    return [window_levels(load_raw(folder / sc["name"] / f"real-{i}.npz")) for i in range(len(sc["runs"]))]


def profiling_levels(sc: dict, folder: Path) -> list:
    """The window levels of scenario `sc`'s profiling runs (empty for a profile measured before run AJ)."""
    from simulator.profiles import load_profile

    recorded = load_profile(folder / sc["profile"]).provenance.get("window_levels_measured", {})
    return list(recorded.get("levels", {}).values())


def _share(levels: list) -> str:
    from simulator.runner.speed_fit import long_slow_share

    share, n = long_slow_share(levels)
    return "–" if share is None else f"{share:.1%} ({n})"


def _phases(levels: list) -> str:
    from simulator.runner.speed_fit import long_phases

    facts = long_phases(levels)
    return (f"{facts['phases']} phases: factor {facts['slow_factor']:.3f}, share {facts['slow_share']:.1%}, "
            f"mean {facts['slow_ms']:.0f} ms")


def simulated(sc: dict, folder: Path, results: dict, seeds: int, facts: dict | None, cache, scratch: Path):
    """Per-seed mean and p99 latency (ms) of the verdict's prediction of `sc` as it was before run AK (its median
    seeds, without the long phases), with the long phases `facts` (`speed_fit.long_phases`) where given."""
    from session_speed import factors

    from simulator.profiles import load_profile
    from simulator.run import prepare, run_inputs
    from simulator.runner.calibrate import scaled
    from simulator.runner.validation import SCENARIOS, ValidationPlan, latency_figures, scenario_config, with_level

    scenario = {s.name: s for s in SCENARIOS}[sc["name"]]
    path = folder / sc["profile"]
    profile = load_profile(path)
    plan = ValidationPlan(out_dir=scratch, requests=results["plan"]["requests"], seeds=seeds,
                          seed=results["plan"]["seed"])
    config = scenario_config(plan, scenario, path, profile, cache, scratch)
    simulation = with_level(config, profile, sc.get("level_sigma_profiling", sc["level_sigma"]), facts)
    scale = factors(sc, folder)[1]
    figures = [latency_figures(run_inputs(scaled(prepare(replace(simulation, seed=config.seed + i), cache), scale),
                                          "numba").requests.latency_ms) for i in range(seeds)]
    return {m: np.array([f[m] for f in figures]) for m in ("latency_mean_ms", "latency_p99_ms")}


def _errors(sc: dict, per_seed) -> tuple[str, np.ndarray]:
    """The cell of `sc`'s errors against `per_seed` (`simulated`), and whether the timing target is met over the
    seeds' median, within 5% / 10% or the real-vs-real spread and within 5% / 10% outright (only meaningful at
    loads <= 80%)."""
    from simulator.runner.report import TARGET_MEAN, TARGET_P99, meets_target
    from simulator.runner.validation import used_index

    used = used_index(sc["runs"])
    cells, versus = [], {}
    for metric, values in per_seed.items():
        real = np.mean([sc["runs"][i][metric] for i in used])
        cells.append(f"{real / np.median(values) - 1:+.1%} / {real / np.mean(values) - 1:+.1%}")
        versus[metric] = {"error": real / np.median(values) - 1, "spread": sc[metric]["spread"]}
    met = np.array([meets_target(versus, "latency_mean_ms", TARGET_MEAN, spread)
                    and meets_target(versus, "latency_p99_ms", TARGET_P99, spread) for spread in (True, False)])
    return " ; ".join(cells) + (" (met)" if met[0] else " (missed)"), met.astype(int)


def main(argv=None) -> int:
    cli = parser(__doc__.split("\n\n")[0], "all")
    cli.add_argument("--simulate", action="store_true", help="re-simulate the verdict's prediction without and "
                     "with the profiling runs' pooled phases")
    return guarded(report, cli.parse_args(argv))


def report(args) -> None:
    """Print the tables for the folder and scenarios of `args`."""
    results, scenarios = load_results(args)
    from simulator.runner.report import LONG_PHASE_HEADER, long_phase_row
    from simulator.runner.speed_fit import LONG_SLOW_THRESHOLD, LONG_WINDOW_MS, long_phases

    print(f"{args.folder}: {LONG_WINDOW_MS:.0f} ms windows more than {LONG_SLOW_THRESHOLD}x slower than their "
          "run's median window")
    print("\n".join(LONG_PHASE_HEADER))
    pooled_profiling, pooled_real = [], []
    for sc in scenarios:
        own, real = profiling_levels(sc, args.folder), real_levels(sc, args.folder)
        pooled_profiling += own
        pooled_real += real
        print(long_phase_row(sc["name"], own, real, [r["latency_mean_ms"] for r in sc["runs"]]))
    print(f"pooled, profiling runs: {_share(pooled_profiling)}, {_phases(pooled_profiling)}")
    print(f"pooled, real runs: {_share(pooled_real)}, {_phases(pooled_real)}")
    if not args.simulate:
        return
    facts = long_phases(pooled_profiling)
    if not facts["phases"]:
        print("no slow window in the profiling runs: nothing to add")
        return
    from simulator.runner.report import TARGET_LOAD

    cache = shipped_cache()
    print(f"\nthe verdict's prediction ({args.seeds} seeds), mean error ; p99 error, each over the seeds' median / "
          "mean")
    print("| scenario | as measured | with the profiling runs' pooled phases |")
    print("|---|---|---|")
    met = np.zeros((2, 2), dtype=int)          # as measured / with the phases; met / outright
    with tempfile.TemporaryDirectory() as scratch:
        for sc in scenarios:
            checked = [_errors(sc, simulated(sc, args.folder, results, args.seeds, f, cache, Path(scratch)))
                       for f in (None, facts)]
            met += np.array([ok for _, ok in checked]) if sc["load"] is None or sc["load"] <= TARGET_LOAD else 0
            print(f"| {sc['name']} | " + " | ".join(cell for cell, _ in checked) + " |", flush=True)
    print(f"timing targets met at loads <= {TARGET_LOAD:.0%} (over the median): {met[0, 0]} as measured ({met[0, 1]} "
          f"outright), {met[1, 0]} with the phases ({met[1, 1]} outright)")


if __name__ == "__main__":
    sys.exit(main())
