"""Tables of docs/optimizer.md: the fast method against the grid, grid resolution, and train -> test generalisation.

    python experiments/optimizer_tables.py [--profile NAME] [--out DIR]

Writes ``optimizer-tables-<profile>.md`` (Markdown tables) into the output folder (default docs/figures).
Thresholds are chosen on the shipped Fashion-MNIST training logits and measured on the test logits. Times are
wall-clock seconds on the machine that runs the script (noisy where the machine is shared).
"""

import datetime
import platform
import sys
import time

from figure_common import FMNIST_MODELS, config, out_dir, parser, profile_names

from simulator.config import with_overrides
from simulator.errors import script_exit
from simulator.io import write_text_atomic
from simulator.optimize import (ExitFractions, MaxAccuracy, MinCost, MsdnetBudget, Tann, evaluate, evaluate_grid,
                                search, tann_objective, train_and_test, uniform_grid)
from simulator.profiles import load_profile

#: (label, members, combiner, signal, grid points) of the fast-method comparison.
SETUPS = (("0-5 mean margin", (0, 1, 2, 3, 4, 5), "mean", "margin", 11),
          ("0-5 mean entropy", (0, 1, 2, 3, 4, 5), "mean", "entropy", 11),
          ("0-5 last maxprob", (0, 1, 2, 3, 4, 5), "last", "maxprob", 11),
          ("6,0,7 last margin", (6, 0, 7), "last", "margin", 11),
          ("0-7 mean margin (K=8)", (0, 1, 2, 3, 4, 5, 6, 7), "mean", "margin", 6))
LAMBDA_FACTORS = (1.0, 10.0, 100.0)


def _models(profile, members):
    """None (the cache's own models, else the profile's defaults) where that covers `members`, else the profile's
    first default model for every stage (noted under the table)."""
    defaults = profile.default_stage_models or ()
    if all(m in profile.models for m in FMNIST_MODELS) or len(members) <= len(defaults):
        return None
    return defaults[:1]


def _objective(problem, point, lam):
    return float(tann_objective(point.latency_ms, point.accuracy, problem, lam))


def _table(header, rows) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]


def fast_vs_grid(profile) -> list[str]:
    rows = []
    for label, members, combiner, signal, points in SETUPS:
        cfg = with_overrides(config(profile, members, combiner), signal=signal, models=_models(profile, members))
        train, _ = train_and_test(cfg)
        grid = uniform_grid(train.n_stages, points)
        t0 = time.perf_counter()
        result = evaluate_grid(train, grid)
        grid_s = time.perf_counter() - t0
        stage_ms = float(train.latency_ms[0].mean())
        for factor in LAMBDA_FACTORS:
            lam = factor * stage_ms
            on_grid = Tann(lam).on_grid(result, train)
            fast = search(train, Tann(lam), "descent")
            j_grid, j_fast = _objective(train, on_grid, lam), _objective(train, fast.point, lam)
            rows.append([label, f"{points}^{train.n_stages - 1} = {grid.n_combinations}", f"{lam:.3g}",
                         f"{j_grid:.5f}", f"{j_fast:.5f}", f"{j_fast - j_grid:+.5f}",
                         f"{on_grid.accuracy:.5f} / {fast.point.accuracy:.5f}",
                         f"{on_grid.latency_ms:.4f} / {fast.point.latency_ms:.4f}", f"{grid_s:.3f}",
                         f"{fast.seconds:.3f}"])
    return _table(["setup", "grid", "lambda (ms)", "J grid", "J descent", "J descent - J grid",
                   "train accuracy grid / descent", "latency ms grid / descent", "grid s", "descent s"], rows)


def resolution(profile) -> list[str]:
    train, _ = train_and_test(config(profile))
    lam = 10.0 * float(train.latency_ms[0].mean())
    rows = []
    for points in (3, 6, 11, 16, 21):
        grid = uniform_grid(train.n_stages, points)
        found = search(train, Tann(lam), "grid", grid)
        rows.append([f"grid {points}", grid.n_combinations, f"{_objective(train, found.point, lam):.5f}",
                     f"{found.point.accuracy:.5f}", f"{found.point.latency_ms:.4f}", f"{found.seconds:.3f}"])
    fast = search(train, Tann(lam), "descent")
    rows.append(["descent", "-", f"{_objective(train, fast.point, lam):.5f}", f"{fast.point.accuracy:.5f}",
                 f"{fast.point.latency_ms:.4f}", f"{fast.seconds:.3f}"])
    return [f"lambda = {lam:.4g} ms (10 x the first member's latency), members 0-5, mean, margin", ""] + _table(
        ["method", "combinations", "J (train)", "train accuracy", "latency ms", "seconds"], rows)


def generalisation(profile) -> list[str]:
    train, test = train_and_test(config(profile))
    stage_ms = float(train.latency_ms[0].mean())
    budget = round(1.5 * stage_ms, 3)
    cases = [(Tann(10 * stage_ms), "grid"), (Tann(10 * stage_ms), "descent"), (Tann(100 * stage_ms), "grid"),
             (Tann(100 * stage_ms), "descent"), (MinCost(0.0), "grid"), (MinCost(0.001), "grid"),
             (MaxAccuracy(budget), "grid"), (MsdnetBudget(budget), "grid"),
             (ExitFractions((0.8, 0.1, 0.05, 0.03, 0.01, 0.01)), "grid")]
    if train.energy_j is not None:
        cases.insert(6, (MinCost(0.001, cost="energy"), "grid"))
    full = (float("inf"),) * 5
    rows = [["full ensemble (normal, 6 members)", "-", *_split_columns(train, test, full)]]
    for criterion, method in cases:
        point = search(train, criterion, method).point
        rows.append([criterion.describe(), method if criterion.needs_grid else "-",
                     *_split_columns(train, test, point.thresholds)])
    return _table(["criterion", "method", "train accuracy", "test accuracy", "accuracy train -> test",
                   "train drop vs full", "test drop vs full", "train latency ms", "test latency ms", "latency train -> test"], rows)


def _split_columns(train, test, thresholds) -> list[str]:
    a, b = evaluate(train, thresholds), evaluate(test, thresholds)
    return [f"{a.accuracy:.5f}", f"{b.accuracy:.5f}", f"{b.accuracy - a.accuracy:+.5f}",
            f"{train.accuracy_full - a.accuracy:+.5f}", f"{test.accuracy_full - b.accuracy:+.5f}", f"{a.latency_ms:.4f}", f"{b.latency_ms:.4f}",
            f"{(b.latency_ms - a.latency_ms) / a.latency_ms:+.2%}"]


def main() -> None:
    args = parser(__doc__, default_profiles=("h100",)).parse_args()
    names = profile_names(args)
    chosen = [load_profile(name) for name in names]   # bad names refused before the folder is made
    out = out_dir(args)
    for name, profile in zip(names, chosen):
        lines = [f"# Optimizer tables: profile {profile.name}", "",
                 f"Generated by `python experiments/optimizer_tables.py --profile {name}` on "
                 f"{datetime.date.today()}, {platform.machine()} host; times are wall-clock seconds.", "",
                 "## Fast method (coordinate descent) against the exhaustive grid, on the training samples", "",
                 *fast_vs_grid(profile), "", "Where the profile has no costs for the Fashion-MNIST models, the stages "
                 "take the profile's default stage models; K = 8 exceeds them, and every stage is then costed as the "
                 "first default model.", "", "## Grid resolution", "", *resolution(profile), "",
                 "## Chosen on train, measured on test", "", *generalisation(profile), ""]
        path = out / f"optimizer-tables-{profile.name}.md"
        write_text_atomic(path, "\n".join(lines))
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(script_exit(main))
