"""Figure 1: accuracy against mean latency per input of normal ensembles of 1-6 members.

    python experiments/fig1_normal_ensembles.py [--profile NAME ...] [--out DIR]

Members 0-5 of the shipped Fashion-MNIST ensemble (same architecture, different seeds), run in full: the first k
members for k = 1..6, softmax averaged. Accuracy on the 10,000 test samples; latency = mean service time per input
at batch 1 on the profile (every member's mean latency plus the decision overhead per stage). One PNG and one CSV
per profile: ``fig1-normal-ensembles-<profile>.{png,csv}``.
"""

import sys

from figure_common import config, out_dir, parser, profiles, write_csv

from simulator.errors import script_exit
from simulator.optimize import build_problem, normal_ensembles
from simulator.optimize.plots import new_axes, plot_points, save_figure


def main() -> None:
    args = parser(__doc__).parse_args()
    chosen = profiles(args)                 # bad names refused before the folder is made
    out = out_dir(args)
    for profile in chosen:
        test = build_problem(config(profile), profile=profile)
        points = normal_ensembles(test)
        fig, ax = new_axes(f"Normal ensembles of 1-6 members: Fashion-MNIST test, {profile.name}")
        plot_points(ax, points, "latency", "normal ensemble (first k members)", color="C1")
        for k, p in enumerate(points, start=1):
            ax.annotate(f"{k}", (p.latency_ms, p.accuracy), textcoords="offset points", xytext=(4, -10))
        ax.legend(fontsize=8, loc="lower right")
        stem = out / f"fig1-normal-ensembles-{profile.name}"
        save_figure(fig, f"{stem}.png")
        print(f"wrote {stem}.png")
        write_csv(f"{stem}.csv", ["members", "accuracy", "latency_ms", "energy_j"],
                  [[k, p.accuracy, p.latency_ms, "" if p.energy_j is None else p.energy_j]
                   for k, p in enumerate(points, start=1)])


if __name__ == "__main__":
    sys.exit(script_exit(main))
