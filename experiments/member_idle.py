"""Does the profile's member-idle table predict the real runs? A check on a validation folder's raw traces.

A stage whose member last ran t ms ago runs slower, whatever the worker did meanwhile (`docs/semantics.md`,
``member_idle``). The profiles of `flexsim validate` fit that table on their open-loop profiling runs; this script
measures the same effect in the folder's real runs, directly (`simulator.runner.idle.member_idle_effect`: per
bucket of the time since the member last ended, the median compute time of the stage runs that are not the first of
their busy period, over the median of the same members' runs within 2 ms of their previous run) and prints it beside
the scenario's profile's factor at the bucket's median time: the report's section "Members that idled", computed
from the raw traces, so that it also works on folders written before the report had it (their profiles have no
table: "–"). No PyTorch, no GPU: it reads the raw traces (``<scenario>/real-*.npz``) and the profiles.

Where the folder keeps each scenario's own profiling run (``<scenario>/own-run.npz``, since run AR), a second table
sets the profile's own measure (`simulator.runner.idle.member_idle_table`, the factor the profile took) of that run
beside the same measure of the real runs, pooled and run by run (their range): whether the profile's table was off
because of how it is measured or because the host's effect moved between the profiling and the real runs.

Usage::

    python experiments/member_idle.py docs/validation
    python experiments/member_idle.py docs/validation --scenarios open-50,cascade-80
"""

from __future__ import annotations

import sys

from simulator.errors import require
from validation_folder import guarded, load_results, parser


def main(argv=None) -> int:
    return guarded(report, parser(__doc__.split("\n\n")[0], "all").parse_args(argv))


def report(args) -> None:
    """Print the section for the folder and scenarios of `args`."""
    from simulator.profiles import load_profile
    from simulator.runner.idle import member_idle_effect
    from simulator.runner.report import member_idle_section
    from simulator.runner.validation import load_raw

    _, scenarios = load_results(args)
    measured = []
    for sc in scenarios:
        paths = sorted((args.folder / sc["name"]).glob("real-*.npz"))
        require(paths, f"no raw traces {sc['name']}/real-*.npz")
        measured.append({**sc, "member_idle": member_idle_effect([load_raw(p) for p in paths])})
    profiles = [load_profile(args.folder / name) for name in sorted({sc["profile"] for sc in measured})]
    print(f"{args.folder}:")
    print("\n".join(member_idle_section(measured, profiles)), flush=True)
    rows = [row for sc in scenarios for row in own_run_rows(args.folder / sc["name"], sc["name"])]
    if rows:
        print("\nThe profile's measure (member_idle_table) of the scenario's own profiling run against the real runs'"
              " (from 2 ms since the member last ran):\n")
        print("| scenario | ms since the member ran | own run | real runs pooled | real runs, each |")
        print("|---|---|---|---|---|")
        print("\n".join(rows), flush=True)


def own_run_rows(folder, name: str) -> list[str]:
    """The table's rows of scenario `name` (its folder `folder`): one per bucket of the real runs' pooled table from
    2 ms on; none without a kept own run."""
    from simulator.runner.idle import member_idle_table
    from simulator.runner.profiling import OWN_RUN_FILE
    from simulator.runner.validation import load_raw

    if not (folder / OWN_RUN_FILE).is_file():
        return []
    reals = [load_raw(p) for p in sorted(folder.glob("real-*.npz"))]
    by_bucket = lambda points: {tuple(p["bucket_ms"]): p["factor"] for p in points}    # noqa: E731
    own, pooled = by_bucket(member_idle_table([load_raw(folder / OWN_RUN_FILE)])), by_bucket(member_idle_table(reals))
    each = [by_bucket(member_idle_table([r])) for r in reals]
    rows = []
    for bucket, factor in pooled.items():
        if bucket[0] < 2.0:
            continue
        single = [t[bucket] for t in each if bucket in t]
        span = f"{min(single):.3f}-{max(single):.3f}" if single else "–"
        mine = f"{own[bucket]:.3f}" if bucket in own else "–"
        upper = "inf" if bucket[1] is None else f"{bucket[1]:g}"
        rows.append(f"| {name} | {bucket[0]:g}-{upper} | {mine} | "
                    f"{factor:.3f} | {span} |")
    return rows


if __name__ == "__main__":
    sys.exit(main())
