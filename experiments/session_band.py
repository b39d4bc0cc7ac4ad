"""How wide must the simulated band be to hold the real runs? Re-simulate a committed validation's band.

`flexsim validate` simulates every scenario over seeds whose speed traces carry a level uncertainty: one constant
speed level per seed, log-normal with standard deviation ``level_sigma``. Until 2026-12-04 that uncertainty came
from the profiling runs alone (their drift over seconds, `simulator.runner.validation.session_level`); since then
the band takes it from the closed-loop bursts measured right before every real run, spread over the session as the
runs are (`simulator.runner.validation.session_level_sigma`). This script needs no PyTorch and no GPU: from a
validation folder's ``results.json`` and profiles it recomputes, per scenario, the band (5-95% over the seeds) with
each of the two level uncertainties and counts the real runs used whose mean and p99 latency fall inside, beside
the band's width (its high end over its low end).

The bursts' levels are recomputed from ``results.json``, which keeps each burst's mean stage factor and its
decision factor: exact for the scenarios whose stages all run one model, approximate for the heterogeneous cascade.

Usage::

    python experiments/session_band.py docs/validation-cuda
    python experiments/session_band.py docs/validation --scenarios open-80,open-95 --seeds 10
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from validation_folder import guarded, load_results, parser, shipped_cache


def bursts(figures: dict) -> list:
    """The scenario's bursts as ``(per-stage factors, decision factor)`` from its ``results.json`` entry."""
    fresh, n = figures["fresh"], len(figures["models"])
    return [(np.full(n, s), d) for s, d in zip(fresh["burst_stage_factors"], fresh["burst_decision_factors"])]


def session_sigma(results: dict, folder: Path) -> float:
    """`session_level_sigma` of every scenario's bursts against its own profile."""
    from types import SimpleNamespace

    from simulator.profiles import load_profile
    from simulator.runner.validation import session_level_sigma

    states = [SimpleNamespace(config=SimpleNamespace(models=tuple(sc["models"])),
                              profile=load_profile(folder / sc["profile"]), bursts=bursts(sc))
              for sc in results["scenarios"]]
    return session_level_sigma(states)


def band_check(figures: dict, folder: Path, level: float, seeds: int, requests: int, seed: int, cache,
               scratch: Path) -> dict:
    """The scenario's band with the level uncertainty `level`: per metric, its ends, its width and how many of the
    real runs used fall inside."""
    from simulator.profiles import load_profile
    from simulator.run import run_inputs
    from simulator.runner.calibrate import scaled
    from simulator.runner.validation import (SCENARIOS, ValidationPlan, prepare_scenario, serving_factor,
                                             sim_figures, used_index)

    scenario = {s.name: s for s in SCENARIOS}[figures["name"]]
    profile_path = folder / figures["profile"]
    profile = load_profile(profile_path)
    plan = ValidationPlan(out_dir=scratch, requests=requests, seeds=seeds, seed=seed)
    state = prepare_scenario(plan, scenario, profile_path, profile, cache, level)
    factor = serving_factor(profile, state.drawn[0])
    band = sim_figures([run_inputs(scaled(x, factor), "numba") for x in state.drawn])["band"]
    used = used_index(figures["runs"])
    out = {}
    for metric in ("latency_mean_ms", "latency_p99_ms"):
        low, high = band[metric]
        real = [figures["runs"][i][metric] for i in used]
        out[metric] = {"band": (low, high), "width": high / low, "inside": sum(low <= x <= high for x in real),
                       "runs": len(real)}
    return out


def _cell(check: dict) -> str:
    return (f"{check['band'][0]:.3f}-{check['band'][1]:.3f} ({check['width']:.1f}x): "
            f"{check['inside']} of {check['runs']}")


def main(argv=None) -> int:
    return guarded(report, parser(__doc__.split("\n\n")[0], "all").parse_args(argv))


def report(args) -> None:
    """Print the table for the folder and scenarios of `args`."""
    results, scenarios = load_results(args)
    cache, plan = shipped_cache(), results["plan"]
    session = session_sigma(results, args.folder)
    profiling = scenarios[0].get("level_sigma_profiling", scenarios[0]["level_sigma"])
    print(f"{args.folder}: level uncertainty between the profiling runs {profiling:.3f}, "
          f"over the session's bursts {session:.3f}; band 5-95% over {args.seeds} seeds: low-high ms "
          "(width), real runs used inside")
    print("| scenario | mean: profiling runs | mean: session | p99: profiling runs | p99: session |")
    print("|---|---|---|---|---|")
    totals, used = np.zeros((2, 2), dtype=int), 0
    with tempfile.TemporaryDirectory() as scratch:
        for sc in scenarios:
            checks = [band_check(sc, args.folder, level, args.seeds, plan["requests"], plan["seed"], cache,
                                 Path(scratch)) for level in (profiling, session)]
            cells = [_cell(c[m]) for m in ("latency_mean_ms", "latency_p99_ms") for c in checks]
            totals += [[c[m]["inside"] for c in checks] for m in ("latency_mean_ms", "latency_p99_ms")]
            used += checks[0]["latency_mean_ms"]["runs"]
            print(f"| {sc['name']} | " + " | ".join(cells) + " |", flush=True)
    print(f"real runs used inside the band, mean / p99: {totals[0, 0]} / {totals[1, 0]} of {used} with the "
          f"profiling runs' level uncertainty, {totals[0, 1]} / {totals[1, 1]} with the session's")


if __name__ == "__main__":
    sys.exit(main())
