"""``flexsim optimize``: choose thresholds on the training logits, check them on held-out logits."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """Choose the per-stage thresholds of a flexible ensemble (or cascade) on the training logits, with
costs from a device profile, and report what they give on the held-out logits.

Criteria (one; default --lambda 100):
  --lambda L           Tann's objective: lowest mean cost + L x (error - error_full) / error_full  (L in ms or J)
  --max-drop EPS       lowest mean cost whose accuracy drop against the full ensemble is <= EPS
  --budget B           highest accuracy whose mean cost is <= B (ms or J)
  --exit-fractions F   thresholds that stop fractions F0,F1,... of the samples at each stage
  --msdnet-budget B    MSDNet's budgeted exits: geometric exit fractions meeting a mean cost budget B
Methods: grid (exhaustive, every criterion) or descent (coordinate descent, --lambda only).
The last line printed is a `flexsim run` command with the chosen thresholds.

Examples:
  flexsim optimize
  flexsim optimize --max-drop 0.002 --cost energy --out runs/opt
  flexsim optimize --lambda 10 --method descent --compare
  flexsim optimize --members 6,0,7 --combiner last --profile cpu-amd-epyc-2c --budget 1.0
"""

DEFAULT_LAMBDA = 100.0
_CONFIG_FLAGS = ("logits", "members", "models", "combiner", "signal", "profile")
#: Every file `--out` may get (the frontiers only where a grid was searched, energy only where the profile has it).
OUT_FILES = ("chosen.toml", "summary.json", *(f"frontier-{cost}.{ext}" for cost in ("latency", "energy")
                                                for ext in ("csv", "png")))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from simulator.config import RunConfig

    defaults = RunConfig()
    ensemble = parser.add_argument_group("ensemble and device (as in flexsim run)")
    ensemble.add_argument("--logits", default=defaults.logits,
                          help=f"held-out logit cache (default: {defaults.logits})")
    ensemble.add_argument("--train-logits", help="training logit cache (default: the training split of --logits)")
    ensemble.add_argument("--members", default=",".join(map(str, defaults.members)),
                          help="cache members run at each stage, in order (default: 0,1,2,3,4,5)")
    ensemble.add_argument("--models", default=None, help="profile model of each stage (default as in flexsim run)")
    ensemble.add_argument("--combiner", default=defaults.combiner, help="mean | last (default: mean)")
    ensemble.add_argument("--signal", default=defaults.signal, help="margin | maxprob | entropy (default: margin)")
    ensemble.add_argument("--profile", default=defaults.profile[0], help="device profile: shipped name or path "
                          f"(default: {defaults.profile[0]})")
    ensemble.add_argument("--use-cost-scale", action=argparse.BooleanOptionalAction, default=True,
                          help="apply the cache's per-input cost_scale where it has one (default: yes)")
    what = parser.add_argument_group("criterion").add_mutually_exclusive_group()
    what.add_argument("--lambda", dest="lam", type=float, help="Tann's objective with weight L, in the cost's unit "
                      "(default 100: 1%% more relative error is worth 1 ms)")
    what.add_argument("--max-drop", type=float, help="largest accuracy drop against the full ensemble")
    what.add_argument("--budget", type=float, help="mean cost budget (ms or J)")
    what.add_argument("--exit-fractions", help="fraction of the samples stopping at each stage, F0,F1,...")
    what.add_argument("--msdnet-budget", type=float, help="mean cost budget of MSDNet's budgeted exits")
    how = parser.add_argument_group("search")
    how.add_argument("--cost", default="latency", help="latency (ms) | energy (J) (default: latency)")
    how.add_argument("--method", default="grid", help="grid | descent (default: grid)")
    how.add_argument("--grid-points", type=int, default=11, help="values per threshold (default 11)")
    how.add_argument("--grid-kind", default="uniform", help="uniform | quantile (default: uniform)")
    how.add_argument("--grid-values", help="explicit values for every threshold, V1,V2,... (overrides the above)")
    how.add_argument("--compare", action="store_true", help="also run the other method and compare (--lambda)")
    parser.add_argument("--out", metavar="DIR", help="write chosen.toml, summary.json, Pareto tables and plots here")


def _config(args: argparse.Namespace):
    from simulator.config import RunConfig, parse_flag
    from simulator.errors import require

    values = {name: parse_flag(name, getattr(args, name)) for name in _CONFIG_FLAGS
              if getattr(args, name) is not None}
    values["use_cost_scale"] = args.use_cost_scale
    require(len(values["profile"]) == 1, f"invalid profile = {args.profile!r}: give one profile")
    return RunConfig(**values)


def _numbers(text: str, flag: str) -> tuple:
    """Comma-separated numbers of option `flag`."""
    from simulator.errors import FlexsimError

    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise FlexsimError(f"invalid {flag} = {text!r}: expected comma-separated numbers") from None


def _criterion(args: argparse.Namespace):
    import math

    from simulator.errors import require
    from simulator.optimize import ExitFractions, MaxAccuracy, MinCost, MsdnetBudget, Tann

    for flag, budget in (("--budget", args.budget), ("--msdnet-budget", args.msdnet_budget)):
        require(budget is None or (math.isfinite(budget) and budget > 0),
                f"invalid {flag} = {budget!r}: must be a finite number > 0 (ms, or J with --cost energy)")
    if args.max_drop is not None:
        return MinCost(args.max_drop, cost=args.cost)
    if args.budget is not None:
        return MaxAccuracy(args.budget, cost=args.cost)
    if args.exit_fractions is not None:
        return ExitFractions(_numbers(args.exit_fractions, "--exit-fractions"))
    if args.msdnet_budget is not None:
        return MsdnetBudget(args.msdnet_budget, cost=args.cost)
    return Tann(DEFAULT_LAMBDA if args.lam is None else args.lam, cost=args.cost)


def _grid(args: argparse.Namespace, problem):
    from simulator.optimize import make_grid

    values = None if args.grid_values is None else _numbers(args.grid_values, "--grid-values")
    return make_grid(problem, args.grid_points, args.grid_kind, values)


def run(args: argparse.Namespace) -> int:
    from simulator.errors import require
    from simulator.io import check_output_dir, check_spares_inputs
    from simulator.optimize import Tann, evaluate, run_command, search, train_and_test
    from simulator.run import input_paths

    config = _config(args)
    criterion = _criterion(args)
    if args.out is not None:
        check_output_dir(args.out, "--out")
        check_spares_inputs(args.out, OUT_FILES, [*input_paths(config), args.train_logits], "--out")
    require(not args.compare or isinstance(criterion, Tann), "--compare needs the --lambda criterion")
    train, test = train_and_test(config, args.train_logits)
    # the grid is built only where it is searched: descent never enumerates it (12 stages at 11 values would be
    # 2.9e11 combinations, far over the grid's limit)
    needs = criterion.needs_grid and (args.method == "grid" or args.compare)
    grid = _grid(args, train) if needs else None
    found = search(train, criterion, args.method, grid)
    held_out = evaluate(test, found.point.thresholds)
    print(_report(config, criterion, args, found, grid, train, test, held_out))
    if args.compare:
        other = "descent" if args.method == "grid" else "grid"
        print(_comparison(train, criterion, found, search(train, criterion, other, grid), args.method, other))
    if args.out:
        _write(Path(args.out), config, criterion, args, found, train, test, held_out)
    print(run_command(config, found.point.thresholds))
    return 0


def _row(name: str, point, problem) -> str:
    energy = "-" if point.energy_j is None else f"{point.energy_j:.4g}"
    return (f"{name:<10} {point.accuracy:9.5f} {problem.accuracy_full - point.accuracy:+13.5f} "
            f"{point.latency_ms:11.4g} {energy:>9} {point.mean_stages:12.3f}")


def _report(config, criterion, args, found, grid, train, test, held_out) -> str:
    how = "no search (thresholds follow from the fractions)" if not criterion.needs_grid else (
        f"method {args.method}" + (f" ({grid.n_combinations} combinations, {grid.points} values per threshold)"
                                   if found.result is not None else ""))
    point = found.point
    change = (held_out.latency_ms - point.latency_ms) / point.latency_ms
    return "\n".join([
        f"flexsim optimize: train {train.description}",
        f"                  held out {test.description}",
        f"criterion: {criterion.describe()}; {how}: {found.seconds:.3f} s",
        f"thresholds: {','.join(repr(t) for t in point.thresholds)}",
        "",
        f"{'':<10} {'accuracy':>9} {'drop vs full':>13} {'latency ms':>11} {'energy J':>9} {'mean stages':>12}",
        _row("train", point, train),
        _row("held out", held_out, test),
        f"train -> held out: accuracy {held_out.accuracy - point.accuracy:+.5f}, latency {change:+.2%}",
        "",
    ])


def _comparison(problem, criterion, first, second, first_name: str, second_name: str) -> str:
    from simulator.optimize import tann_objective

    def objective(found):
        return float(tann_objective(found.point.cost(criterion.cost), found.point.accuracy, problem, criterion.lam))

    lines = [f"compare on the training samples ({criterion.describe()}):"]
    for name, found in ((first_name, first), (second_name, second)):
        lines.append(f"  {name:<8} J = {objective(found):.6f}  accuracy {found.point.accuracy:.5f}  "
                     f"{criterion.cost} {found.point.cost(criterion.cost):.5g}  in {found.seconds:.3f} s  "
                     f"thresholds {','.join(repr(t) for t in found.point.thresholds)}")
    lines.append(f"  J({second_name}) - J({first_name}) = {objective(second) - objective(first):+.6f}")
    return "\n".join(lines) + "\n"


def _write(out: Path, config, criterion, args, found, train, test, held_out) -> None:
    """The chosen thresholds, the summary and the frontiers (CSV and plot per cost), replaced in `out` as one set:
    a failure leaves the folder as it was."""
    from simulator.io import atomic_paths, output_dir, write_json_atomic, write_text_atomic
    from simulator.optimize import normal_ensembles, toml_snippet
    from simulator.optimize.pareto import write_frontier_csv
    from simulator.optimize.plots import plot_frontier

    comments = [f"chosen by: flexsim optimize ({criterion.describe()}, method {args.method})",
                f"on {train.description}"]
    summary = {"criterion": criterion.describe(), "method": args.method, "train": found.point.to_dict(),
               "held_out": held_out.to_dict(), "seconds": found.seconds}
    writers = {"chosen.toml": lambda p: write_text_atomic(p, toml_snippet(config, found.point.thresholds, comments)),
               "summary.json": lambda p: write_json_atomic(p, summary)}
    costs = [] if found.result is None else ["latency"] + (["energy"] if train.energy_j is not None else [])
    for cost in costs:
        writers[f"frontier-{cost}.csv"] = lambda p, c=cost: write_frontier_csv(p, found.result, c)
        writers[f"frontier-{cost}.png"] = lambda p, c=cost: plot_frontier(
            p, found.result, c, f"train: {train.description}", found.point, normal_ensembles(train))
    written = list(writers)
    stale = [out / name for name in OUT_FILES if name not in writers]   # an earlier run's (with energy, or a grid)
    with output_dir(out, "--out"), atomic_paths([out / name for name in written], stale) as tmps:
        for tmp, write in zip(tmps, writers.values()):
            write(tmp)
    print(f"wrote {', '.join(str(out / name) for name in written)}")
