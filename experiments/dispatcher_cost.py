"""What does a request's release cost the busy worker? A check on a validation folder's raw traces.

With a dispatcher thread (``release = "thread"``, `thread-50`) a thread of the process wakes at every arrival and
puts the request on the worker's queue, also while the worker serves. This script compares, per scenario, the
stage runs (compute + decision) during which a request was released (with a dispatcher thread: at its recorded
release time; otherwise at its arrival time) with those during which none was, over the stage runs that are not the
first of a request that found the worker idle (the wake-up and the idle dispatch are modelled apart), each against
the stage runs of the same stage position without one (so that a cascade's larger members, which contain more
arrivals, are not counted as a cost). With poll release an arrival during a stage costs the worker nothing but the
longer stages' better odds of containing one (a stage twice as long is twice as likely to contain an arrival), so
the poll scenarios are the control. The last column is the statistic that `flexsim validate`'s profiling measures
as the profile's ``release_cost_ms`` (`simulator.runner.measure.release_cost`: releases counted within the
position's median duration from the start, not within the run's own, which takes the longer runs' odds out; 0
without a dispatcher), on the same runs.
No PyTorch, no GPU: it reads the raw traces (``<scenario>/real-*.npz``).

Usage::

    python experiments/dispatcher_cost.py docs/validation
    python experiments/dispatcher_cost.py docs/validation --scenarios open-50,spin-50,thread-50
"""

from __future__ import annotations

import sys

import numpy as np

from simulator.errors import require
from validation_folder import guarded, load_results, parser


def stage_releases(real) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per stage run of a real run (`simulator.runner.validation.load_raw`) that is not the first of a request that
    found the worker idle (`warm_stage_runs`): its stage position, its compute + decision time (ms) and the number
    of requests released while it ran (`release_times_s`)."""
    from simulator.runner.measure import release_times_s, warm_stage_runs

    times, released_s, used = real.stage_times, release_times_s(real), warm_stage_runs(real)
    work_ms = (times.compute_s + times.decision_s) * 1000.0
    during = (np.searchsorted(released_s, times.start_s + work_ms / 1000.0)
              - np.searchsorted(released_s, times.start_s))
    return times.stage[used], work_ms[used], during[used]


def _mean_without(stage: np.ndarray, work_ms: np.ndarray, during: np.ndarray) -> np.ndarray:
    """Per stage run: the mean time of the stage runs of its stage position during which nothing was released."""
    out = np.full(work_ms.size, np.nan)
    for k in np.unique(stage):
        at = stage == k
        quiet = at & (during == 0)
        out[at] = work_ms[quiet].mean() if quiet.any() else np.nan
    return out


def main(argv=None) -> int:
    return guarded(report, parser(__doc__.split("\n\n")[0], "all").parse_args(argv))


def report(args) -> None:
    """Print the table for the folder and scenarios of `args`."""
    from simulator.runner.measure import release_cost
    from simulator.runner.validation import load_raw

    _, scenarios = load_results(args)
    print(f"{args.folder}: stage runs (not the first after idle) with and without a release while they ran")
    print("| scenario | release | stage runs | with one or more | mean ms without | with one | with two or more "
          "| cost of one (ms, against its stage position) | release cost (ms) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for sc in scenarios:
        paths = sorted((args.folder / sc["name"]).glob("real-*.npz"))
        require(paths, f"no raw traces {sc['name']}/real-*.npz")
        reals = [load_raw(p) for p in paths]
        parts = [stage_releases(real) for real in reals]
        stage, work_ms, during = (np.concatenate([part[i] for part in parts]) for i in range(3))
        excess_ms = work_ms - _mean_without(stage, work_ms, during)
        means = [work_ms[sel].mean() if sel.any() else np.nan for sel in (during == 0, during == 1, during >= 2)]
        cost = excess_ms[during == 1].mean() if (during == 1).any() else np.nan
        print(f"| {sc['name']} | {sc.get('release', 'poll')} | {work_ms.size} | {np.mean(during > 0):.1%} | "
              f"{means[0]:.4f} | {means[1]:.4f} | {means[2]:.4f} | {cost:+.4f} | "
              f"{release_cost(reals)['mean']:.4f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
