"""Figure 2: normal against flexible execution, accuracy against mean latency per input, on the same axes.

    python experiments/fig2_flexible_vs_normal.py [--profile NAME ...] [--out DIR]

Normal: the first k of members 0-5 run in full (k = 1..6). Flexible: the same six members, run one at a time and
stopped when the averaged prediction's score margin reaches the stage's threshold; thresholds chosen on the 60,000
training samples by Tann's objective (latency + lambda x relative error increase) for 13 values of lambda from 0.1
to 1000 times the first member's latency, with the exhaustive 11-point grid and with coordinate descent. Every point
is measured on the 10,000 test samples. One PNG and one CSV per profile: ``fig2-flexible-vs-normal-<profile>``.
"""

import sys

from figure_common import POINT_HEADER, out_dir, parser, point_row, profiles, sweep, write_csv

from simulator.errors import script_exit
from simulator.optimize import normal_ensembles
from simulator.optimize.plots import new_axes, plot_points, save_figure


def main() -> None:
    args = parser(__doc__).parse_args()
    chosen = profiles(args)                 # bad names refused before the folder is made
    out = out_dir(args)
    for profile in chosen:
        train, test, grid = sweep(profile, method="grid")
        _, _, descent = sweep(profile, method="descent")
        normal_train, normal_test = normal_ensembles(train), normal_ensembles(test)
        fig, ax = new_axes(f"Normal vs flexible ensemble of 6 members: Fashion-MNIST test, {profile.name}")
        plot_points(ax, normal_test, "latency", "normal (first k members)", "s--", color="C1")
        plot_points(ax, [s.test for s in grid], "latency", "flexible, grid (lambda sweep)", "o-", color="C0")
        plot_points(ax, [s.test for s in descent], "latency", "flexible, descent (lambda sweep)", "^:", color="C2")
        ax.legend(fontsize=8, loc="lower right")
        stem = out / f"fig2-flexible-vs-normal-{profile.name}"
        save_figure(fig, f"{stem}.png")
        print(f"wrote {stem}.png")
        rows = [point_row(f"normal-{k}", "", a, b) for k, (a, b) in enumerate(zip(normal_train, normal_test), 1)]
        rows += [point_row(f"flexible-{name}", s.lam, s.train, s.test)
                 for name, points in (("grid", grid), ("descent", descent)) for s in points]
        write_csv(f"{stem}.csv", POINT_HEADER, rows)


if __name__ == "__main__":
    sys.exit(script_exit(main))
