"""Which serving factor predicts a validation's real runs better: the one used, or the one at the bursts' levels?

`flexsim validate` scales every open-loop scenario's stages by the serving factor of its profile
(`simulator.runner.serving`): the open-loop profiling runs' busy time per queued request, real over simulated. With
poll release that factor is mostly the host's drift between the closed-loop profiling run and the open-loop ones.
Since 2026-12-06 closed-loop bursts around the open-loop runs measure the host's speed level during each, and the
profile also records ``factor_at_levels``, the factor fitted with the runs simulated at those levels (what serving
costs beyond the drift). The profile's prediction uses ``factor`` (the verdict's, since 2026-12-06, takes
``factor_at_levels`` at the session's speed level instead); this script re-simulates each open-loop scenario of a
validation folder with ``factor``, with ``factor_at_levels`` and with no factor, and prints the mean and p99 latency
errors against the same real runs and the timing verdict at loads <= 80% (within 5% / 10% or the real-vs-real
spread), so that the choice can be checked on every new run. No PyTorch, no GPU: it reads ``results.json`` and the
profiles.

Usage::

    python experiments/serving_levels.py docs/validation
    python experiments/serving_levels.py docs/validation --scenarios open-50,open-80 --seeds 10
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from simulator.errors import require
from validation_folder import guarded, load_results, parser, shipped_cache

METRICS = (("latency_mean_ms", 0.05), ("latency_p99_ms", 0.10))


def errors(figures: dict, folder: Path, factors: list, seeds: int, plan: dict, cache, scratch: Path) -> list:
    """Per factor: the mean and p99 errors (real runs used over the simulated median) and the timing verdict; the
    simulations have the session's long phases where the verdict's had them (since run AK)."""
    from simulator.profiles import load_profile
    from simulator.run import run_inputs
    from simulator.runner.calibrate import scaled
    from simulator.runner.report import meets_target
    from simulator.runner.validation import SCENARIOS, ValidationPlan, prepare_scenario, sim_figures, used_index

    scenario = {s.name: s for s in SCENARIOS}[figures["name"]]
    profile_path = folder / figures["profile"]
    state = prepare_scenario(ValidationPlan(out_dir=scratch, requests=plan["requests"], seeds=seeds, seed=plan["seed"]),
                             scenario, profile_path, load_profile(profile_path), cache,
                             figures.get("level_sigma_profiling", figures["level_sigma"]),
                             figures.get("session", {}).get("long_phases"))
    used = used_index(figures["runs"])
    out = []
    for factor in factors:
        sim = sim_figures([run_inputs(scaled(x, factor), "numba") for x in state.drawn])
        errs = [float(np.mean([figures["runs"][i][m] for i in used]) / sim[m] - 1) for m, _ in METRICS]
        versus = {m: {"error": e, "spread": figures[m]["spread"]} for e, (m, _) in zip(errs, METRICS)}
        met = all(meets_target(versus, m, target) for m, target in METRICS)
        out.append((errs, met))
    return out


def verdict_cell(factor: float, errs: list, met: bool, timed: bool) -> str:
    """A table cell: the factor, the mean / p99 errors with it and the timing verdict (loads <= 80% only)."""
    verdict = ("met" if met else "missed") if timed else "band only"
    return f"{factor:.3f}: {errs[0]:+.1%} / {errs[1]:+.1%} ({verdict})"


def main(argv=None) -> int:
    return guarded(report, parser(__doc__.split("\n\n")[0], "all open loops").parse_args(argv))


def report(args) -> None:
    """Print the table for the folder and scenarios of `args`."""
    results, scenarios = load_results(args, lambda sc: sc["load"] is not None, "open-loop scenario")

    from simulator.profiles import load_profile
    from simulator.runner.report import TARGET_LOAD

    cache = shipped_cache()
    print(f"{args.folder}: per open-loop scenario, factor: mean / p99 error (timing verdict at loads <= 80%)")
    print("| scenario | spread mean / p99 | factor used | at the bursts' levels | none |")
    print("|---|---|---|---|---|")
    met = np.zeros(3, dtype=int)
    with tempfile.TemporaryDirectory() as scratch:
        for sc in scenarios:
            facts = load_profile(args.folder / sc["profile"]).provenance.get("serving_factor_measured", {})
            require("factor_at_levels" in facts, f"{sc['profile']} has no factor at the bursts' levels "
                                                 "(measured since 2026-12-06)")
            factors = [facts["factor"], facts["factor_at_levels"], 1.0]
            checked = errors(sc, args.folder, factors, args.seeds, results["plan"], cache, Path(scratch))
            timed = sc["load"] <= TARGET_LOAD
            met += [m for _, m in checked] if timed else 0
            cells = [verdict_cell(f, e, m, timed) for f, (e, m) in zip(factors, checked)]
            print(f"| {sc['name']} | {sc['latency_mean_ms']['spread']:.0%} / {sc['latency_p99_ms']['spread']:.0%} "
                  f"| " + " | ".join(cells) + " |", flush=True)
    print(f"timing targets met at loads <= 80%: {met[0]} with the factor used, {met[1]} at the bursts' levels, "
          f"{met[2]} with none")


if __name__ == "__main__":
    sys.exit(main())
