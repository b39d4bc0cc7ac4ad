"""Would the scenario's own profiling run set a better serving factor than the one the verdict uses?

`flexsim validate`'s verdict scales each open-loop scenario's stages by the host's speed level over the session
times what open-loop serving costs beyond it (`simulator.runner.validation.session_simulations`): up to run AW, for
a dispatcher thread the factor of the every-stage open-loop profiling runs, for poll release their factors pooled
over the session (`simulator.runner.serving`). Those runs serve every stage of every request, so they release
requests several times more rarely than the scenario does, while each profile also has a run of the scenario itself
(its policy and arrivals, another seed; ``<scenario>/own-run.npz``), measured before the real runs too. This script
fits the serving factor on that run the same way (busy time per queued request, real over simulated at the host's
speed level of the burst right before it, with the code `flexsim validate` fits it with) and re-simulates the
verdict's prediction with each factor, printing the mean and p99 errors against the same real runs and the timing
verdict at loads <= 80%, and over those scenarios the verdicts met and the median absolute mean error. No PyTorch,
no GPU: it reads ``results.json``, the profiles and the own runs.

Since run AX the verdict takes the own run's factor (fitted while profiling, `simulator.runner.profiling.
with_own_run_factor`, as here), so on a folder measured since the two columns agree: a check that the recorded
factor is the one this refit gives. On earlier folders it compares the two rules (`docs/validation-history.md`,
runs AV-AX).

Usage::

    python experiments/own_run_factor.py docs/validation
    python experiments/own_run_factor.py docs/validation --scenarios thread-50,open-50 --seeds 20
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from serving_levels import errors, verdict_cell
from simulator.errors import require
from validation_folder import guarded, load_results, parser, shipped_cache

def own_run_factor(folder: Path, figures: dict, plan: dict, cache, scratch: Path) -> float:
    """The serving factor beyond the host's drift of the scenario's own profiling run, refitted as `flexsim
    validate` fits it while profiling (`simulator.runner.profiling.own_run_factor_facts`): its busy time per queued
    request over the simulated one, the profile at the level of the last burst before it times the factor."""
    from simulator.profiles import load_profile
    from simulator.runner.profiling import OWN_RUN_FILE, own_run_factor_facts
    from simulator.runner.validation import SCENARIOS, ValidationPlan, load_raw

    own_path = folder / figures["name"] / OWN_RUN_FILE
    require(own_path.is_file(), f"{figures['name']} has no {OWN_RUN_FILE} (kept since run AR)")
    scenario = {s.name: s for s in SCENARIOS}[figures["name"]]
    profile_path = folder / figures["profile"]
    profile = load_profile(profile_path)
    level = profile.provenance["serving_factor_measured"]["burst_levels"][-1]
    run_plan = ValidationPlan(out_dir=scratch, requests=plan["requests"], seed=plan["seed"])
    facts = own_run_factor_facts(run_plan, cache, scenario, profile, profile_path, load_raw(own_path), level,
                                 scratch / f"{scenario.name}-own.csv")
    return facts["factor_at_level"]


def main(argv=None) -> int:
    return guarded(report, parser(__doc__.split("\n\n")[0], "all open loops").parse_args(argv))


def report(args) -> None:
    """Print the table for the folder and scenarios of `args`, then the verdicts and errors over them."""
    results, scenarios = load_results(args, lambda sc: sc["load"] is not None, "open-loop scenario")

    from simulator.runner.report import TARGET_LOAD

    cache = shipped_cache()
    print(f"{args.folder}: per open-loop scenario, the serving factor beyond the drift and the verdict's scale "
          "(session speed x factor): mean / p99 error (timing verdict at loads <= 80%)")
    print("| scenario | spread mean / p99 | factor used | its own run's factor | used | own run's |")
    print("|---|---|---|---|---|---|")
    met, abs_errors = np.zeros(2, dtype=int), ([], [])
    with tempfile.TemporaryDirectory() as scratch:
        for sc in scenarios:
            own = own_run_factor(args.folder, sc, results["plan"], cache, Path(scratch))
            session = sc["session"]
            scales = [session["speed"] * session["serving_factor"], session["speed"] * own]
            checked = errors(sc, args.folder, scales, args.seeds, results["plan"], cache, Path(scratch))
            timed = sc["load"] <= TARGET_LOAD
            if timed:
                met += [m for _, m in checked]
                for i, (e, _) in enumerate(checked):
                    abs_errors[i].append(abs(e[0]))
            cells = [verdict_cell(f, e, m, timed) for f, (e, m) in zip(scales, checked)]
            print(f"| {sc['name']} | {sc['latency_mean_ms']['spread']:.0%} / {sc['latency_p99_ms']['spread']:.0%} "
                  f"| {session['serving_factor']:.3f} | {own:.3f} | " + " | ".join(cells) + " |", flush=True)
    medians = [f"{np.median(e):.1%}" if e else "-" for e in abs_errors]
    print(f"loads <= 80%: timing targets met {met[0]} with the factor used, {met[1]} with the own run's; median "
          f"absolute mean error {medians[0]} and {medians[1]}")


if __name__ == "__main__":
    sys.exit(main())
