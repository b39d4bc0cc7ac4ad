"""Does the profile's member-idle table predict the real runs? A check on a validation folder's raw traces.

A stage whose member last ran t ms ago runs slower, whatever the worker did meanwhile (`docs/semantics.md`,
``member_idle``). The profiles of `flexsim validate` fit that table on their open-loop profiling runs; this script
measures the same effect in the folder's real runs, directly (`simulator.runner.idle.member_idle_effect`: per
bucket of the time since the member last ended, the median compute time of the stage runs that are not the first of
their busy period, over the median of the same members' runs within 2 ms of their previous run) and prints it beside
the scenario's profile's factor at the bucket's median time: the report's section "Members that idled", computed
from the raw traces, so that it also works on folders written before the report had it (their profiles have no
table: "–"). No PyTorch, no GPU: it reads the raw traces (``<scenario>/real-*.npz``) and the profiles.

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


if __name__ == "__main__":
    sys.exit(main())
