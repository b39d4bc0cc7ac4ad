"""``flexsim optimize-bench``: time the exhaustive threshold grid against a straightforward NumPy evaluation.

Workload: the 6-member flexible ensemble (mean, margin) on the 60,000 training samples of the shipped Fashion-MNIST
logits, costs from the default profile; a uniform grid of ``--points`` values per threshold (11 -> 11**5 =
161,051 combinations). In one process:

- build: load the logits, compute the stage signals and the per-stage costs (once, reported apart);
- grid: `evaluate_grid` (cumulative counts) over every combination, best of ``--repeat``;
- straightforward: `evaluate_grid_naive` (one vectorised-over-samples evaluation per combination) on a seeded
  random subset of ``--naive-combinations`` combinations, extrapolated to the whole grid; both results are
  compared on that subset;
- descent: the fast method (coordinate descent, continuous thresholds) for ``--lam``, and its objective against
  the grid's best.

The last line printed is the grid's time and its speedup over the straightforward evaluation.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

DESCRIPTION = __doc__


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--points", type=int, default=11, help="grid values per threshold, >= 2 (default 11)")
    parser.add_argument("--repeat", type=int, default=3, help="grid runs; the best is kept (default 3)")
    parser.add_argument("--naive-combinations", type=int, default=200,
                        help="combinations evaluated the straightforward way, at most the grid's size (default 200)")
    parser.add_argument("--lam", type=float, default=10.0, help="lambda of the descent comparison (default 10)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH as JSON")


def run(args: argparse.Namespace) -> int:
    from simulator.errors import require
    from simulator.io import check_output_file

    require(args.points >= 2, f"invalid --points = {args.points}: must be >= 2 (with 1 the grid is the single "
            "all-inf combination: nothing to time)")
    require(args.repeat >= 1, f"invalid --repeat = {args.repeat}: must be >= 1")
    require(args.naive_combinations >= 1, f"invalid --naive-combinations = {args.naive_combinations}: must be >= 1")
    if args.json is not None:
        check_output_file(args.json, "--json")
    figures = measure(args.points, args.repeat, args.naive_combinations, args.lam)
    report(figures)
    if args.json is not None:
        from simulator.io import write_json_atomic
        write_json_atomic(args.json, figures)
    return 0


def _cpu_model() -> str:
    """The CPU's model name (Linux), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as fh:
            names = [line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or "unknown CPU"


def _timed(fn):
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def measure(points: int, repeat: int, n_naive: int, lam: float) -> dict:
    """Time the grid, the straightforward evaluation and the descent on the training samples; return figures."""
    from simulator.config import RunConfig
    from simulator.optimize import (Tann, build_problem, coordinate_descent, evaluate_grid, evaluate_grid_naive,
                                    tann_objective, uniform_grid)

    build_s, problem = _timed(lambda: build_problem(RunConfig(logits="fmnist-train")))
    grid = uniform_grid(problem.n_stages, points)
    runs = [_timed(lambda: evaluate_grid(problem, grid)) for _ in range(repeat)]
    grid_s, result = min(runs, key=lambda r: r[0])
    subset = np.random.default_rng(0).choice(grid.n_combinations, min(n_naive, grid.n_combinations), replace=False)
    naive_s, naive = _timed(lambda: evaluate_grid_naive(problem, grid, subset))
    naive_full_s = naive_s / subset.size * grid.n_combinations
    best = Tann(lam).on_grid(result, problem)
    descent_s, fast = _timed(lambda: coordinate_descent(problem, lam))
    return {
        "machine": f"{_cpu_model()}, {os.cpu_count()} logical CPUs, {platform.machine()}",
        "samples": problem.n_samples, "stages": problem.n_stages, "points": points,
        "combinations": grid.n_combinations, "build_s": build_s, "grid_s": grid_s, "grid_first_s": runs[0][0],
        "naive_combinations": int(subset.size), "naive_s": naive_s, "naive_full_s": naive_full_s,
        "speedup": naive_full_s / grid_s,
        "max_abs_diff": float(max(np.abs(result.accuracy[subset] - naive.accuracy).max(),
                                  np.abs(result.latency_ms[subset] - naive.latency_ms).max())),
        "lam": lam, "grid_objective": float(tann_objective(best.latency_ms, best.accuracy, problem, lam)),
        "descent_s": descent_s, "descent_objective": float(tann_objective(fast.latency_ms, fast.accuracy, problem, lam)),
    }


def report(f: dict) -> None:
    print(f"machine: {f['machine']}")
    print(f"problem: {f['stages']} stages, {f['samples']} training samples; build (logits, signals, costs) "
          f"{f['build_s']:.3f} s (not counted below)")
    print(f"exhaustive grid   : {f['combinations']} combinations ({f['points']} values per threshold) in "
          f"{f['grid_s']:.3f} s (best of runs; first run {f['grid_first_s']:.3f} s; target <= 10 s)")
    print(f"straightforward   : {f['naive_s'] / f['naive_combinations'] * 1e3:.3f} ms per combination over "
          f"{f['naive_combinations']} combinations -> {f['naive_full_s']:.1f} s for the grid (extrapolated); "
          f"largest difference from the grid {f['max_abs_diff']:.2e}")
    print(f"descent (lambda {f['lam']:g}): {f['descent_s']:.3f} s, J = {f['descent_objective']:.6f} "
          f"(grid's best J = {f['grid_objective']:.6f})")
    print(f"grid: {f['combinations'] / f['grid_s']:,.0f} combinations/s, {f['grid_s']:.3f} s; "
          f"speedup over the straightforward NumPy evaluation: {_times(f['speedup'])}")


def _times(ratio: float) -> str:
    """A speedup ``ratio`` as ``1,234x``, or with two significant digits below 10 (``0.83x``)."""
    return f"{ratio:,.0f}x" if ratio >= 10 else f"{ratio:.2g}x"
