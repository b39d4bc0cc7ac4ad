"""``flexsim sweep [CONFIG.toml] [--flags] --vary FIELD=V1|V2|... [--vary ...]``: one simulation per combination."""

from __future__ import annotations

import argparse
import json
import sys

from simulator.commands.run import add_config_arguments, config_from_args

DESCRIPTION = """Simulate every combination of the values of some configuration fields (and several seeds each),
and tabulate what each gives: accuracy, latency, deadline misses, energy. The what-if study of a deadline and an
energy budget on a device: does the policy meet them, and at what accuracy?

The base configuration is `flexsim run`'s (a TOML file and a flag per field); each --vary FIELD=V1|V2|... gives one
field's values, written as its flag takes them and separated by '|' (quote the argument in a shell). The
combinations are the Cartesian product, the first --vary varying slowest; each runs with seeds SEED, SEED+1, ...
(--seeds). Every combination is checked before the first run. Any field may vary but seed, out and
record_batches (a configuration file's out and record_batches are ignored: a sweep writes only into --out).
A configuration file may hold the sweep too, as a [sweep] table of arrays beside [run] (and seeds = N):
  [run]
  policy = ["threshold", "deadline", "energy"]
  [sweep]
  deadline_ms = [3, 6, 12]
  energy_budget_j = [0.2, 0.3, 0.5]
  seeds = 3
--vary replaces a field's values from the table; --seeds its seeds.

Prints the mean over seeds of each combination's figures. With --out DIR, writes as one set: runs.csv (every run,
every summary figure), sweep.csv (the means per combination, with the p99 latency's and the miss rate's range over
seeds), sweep.json (the base configuration, the varied values and the means) and, where one or two fields vary,
sweep.png (figures against the field, or heatmaps over the two).

Examples:
  flexsim sweep --policy threshold,deadline --vary 'deadline-ms=2|4|8|16' --seeds 5
  flexsim sweep --policy threshold,deadline,energy --vary 'deadline-ms=3|6|12' \\
      --vary 'energy-budget-j=0.2|0.3|0.5' --out runs/sweep
  flexsim sweep --vary 'arrivals=poisson:load=0.5|poisson:load=0.8|poisson:load=0.95' --vary 'profile=h100|a100'
  flexsim sweep --vary 'thresholds=0.9,0.8,0.6,0.4,0.2|inf,inf,inf,inf,inf' --requests 20000
  flexsim sweep --policy threshold,custom --custom-policy my_policy.py:slack_threshold \\
      --custom-params 0.8,0.004,0.3 --vary 'deadline-ms=5|10' --vary 'custom-params=0.8,0.004,0.3|0.9,0.002,0.2'
"""

#: Config fields a sweep has no flag for: its own --out replaces out; its runs never record batch-stages.
NO_FLAG = ("out", "record_batches")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, skip=NO_FLAG)
    parser.add_argument("--vary", action="append", metavar="FIELD=V1|V2|...",
                        help="a field and its values, separated by '|' (repeat for more fields; replaces the "
                             "field's values of the file's [sweep] table)")
    parser.add_argument("--seeds", type=int, default=None, metavar="N",
                        help="runs per combination, with seeds SEED, SEED+1, ..., at most 1000 (default: the "
                             "[sweep] table's seeds, else 1)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="write runs.csv, sweep.csv, sweep.json and sweep.png into DIR (replaced as one set)")
    parser.add_argument("--json", action="store_true", help="print the means per combination as JSON")


def run(args: argparse.Namespace) -> int:
    from simulator.config import load_toml_table
    from simulator.errors import require
    from simulator.io import check_spares_inputs
    from simulator.run import field_input_paths, input_paths, jsonable
    from simulator.sweep import (SWEEP_FILES, check_seeds, check_sweep_folder, parse_vary, sweep, vary_from_table,
                                 write_sweep)
    from simulator.sweep_plot import can_plot

    config = config_from_args(args, skip=NO_FLAG)
    vary, seeds = (vary_from_table(load_toml_table(args.config, "sweep"), args.config) if args.config is not None
                   else ({}, None))
    flags = dict(parse_vary(text) for text in args.vary or ())
    require(len(flags) == len(args.vary or ()), "vary: a field is given twice (give its values in one --vary)")
    vary.update(flags)
    require(vary, "nothing to vary: give --vary FIELD=V1|V2|... or a [sweep] table in the configuration file")
    seeds = check_seeds(args.seeds if args.seeds is not None else seeds if seeds is not None else 1)
    require(args.out is None or args.out.strip(), f"invalid --out = {args.out!r}: an empty path (give a folder, or "
            "leave --out out)")
    if args.out:
        check_sweep_folder(args.out)
        check_spares_inputs(args.out, SWEEP_FILES, [args.config, *input_paths(config),
                                                    *(p for name, values in vary.items() for v in values
                                                      for p in field_input_paths(name, v))])
    result = sweep(config, vary=vary, seeds=seeds, progress=_progress if sys.stderr.isatty() else None)
    if args.out:
        write_sweep(result, args.out)
    if args.json:
        print(json.dumps(jsonable(result.means()), indent=2))
    else:
        print(_header(config, result))
        print(result.text())
        if args.out:
            print(f"wrote {args.out}/runs.csv, sweep.csv, sweep.json" + (", sweep.png" if can_plot(result) else ""))
    return 0


def _header(config, result) -> str:
    """The sweep's first line: its runs and the base configuration's policy, profile, arrivals and requests (the
    fields that vary shown as such)."""
    def shown(name: str, text: str) -> str:
        return "(varied)" if name in result.vary else text

    return (f"flexsim sweep: {len(result.summaries)} runs ({result.seeds} seed(s) each), policy "
            f"{shown('policy', '+'.join(config.policy))}, profile {shown('profile', ','.join(config.profile))}, "
            f"arrivals {shown('arrivals', config.arrivals)}, requests "
            f"{shown('requests', str(config.requests or 'default'))}")


def _progress(done: int, total: int) -> None:
    print(f"\rrun {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)
