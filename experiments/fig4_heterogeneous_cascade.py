"""Figure 4: a heterogeneous cascade (small -> medium -> large member) against the homogeneous flexible ensemble.

    python experiments/fig4_heterogeneous_cascade.py [--profile NAME ...] [--out DIR]

Cascade: members 6 (width 8), 0 (width 32) and 7 (width 64) of the shipped Fashion-MNIST ensemble, each costed as
its own model (``fmnist-cnn-w8``, ``-w32``, ``-w64``), combined by the mean of the softmax (an ensemble that grows)
and by the last stage's softmax (an early-exit cascade). Homogeneous: members 0-5 (``fmnist-cnn-w32`` each),
mean. Thresholds chosen on the training logits by Tann's objective with the exhaustive 11-point grid for a sweep of
lambda; every point measured on the test logits. The normal ensembles of members 0-5 and the three cascade members
alone are drawn for reference. Only profiles that cost the three models are used (others are skipped, with a
message). One PNG and one CSV per profile: ``fig4-heterogeneous-cascade-<profile>``.
"""

import sys

from figure_common import (FMNIST_MODELS, HOMOGENEOUS, POINT_HEADER, config, out_dir, parser, point_row, profiles,
                           sweep, write_csv)

from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

from simulator.errors import script_exit
from simulator.optimize import build_problem, normal_ensembles, train_and_test
from simulator.optimize.plots import new_axes, plot_points, save_figure

CASCADE = (6, 0, 7)
SERIES = (("homogeneous 0-5, mean", HOMOGENEOUS, "mean", "o-"),
          ("cascade 6->0->7, mean", CASCADE, "mean", "^-"),
          ("cascade 6->0->7, last", CASCADE, "last", "v-"))


def main() -> None:
    args = parser(__doc__).parse_args()
    chosen = profiles(args, need_models=FMNIST_MODELS)     # bad names refused before the folder is made
    out = out_dir(args)
    for profile in chosen:
        fig, ax = new_axes(f"Heterogeneous cascade vs homogeneous flexible ensemble: Fashion-MNIST test, "
                           f"{profile.name}")
        rows = []
        for label, members, combiner, style in SERIES:
            _, _, points = sweep(profile, members, combiner)
            plot_points(ax, [s.test for s in points], "latency", f"flexible {label}", style)
            rows += [point_row(label, s.lam, s.train, s.test) for s in points]
        train, test = train_and_test(config(profile))
        plot_points(ax, normal_ensembles(test), "latency", "normal ensembles of members 0-5", "s--", color="0.5")
        rows += [point_row(f"normal-{k}", "", a, b)
                 for k, (a, b) in enumerate(zip(normal_ensembles(train), normal_ensembles(test)), 1)]
        for member in CASCADE:
            alone = normal_ensembles(build_problem(config(profile, (member,)), profile=profile))[0]
            ax.plot([alone.latency_ms], [alone.accuracy], "D", color="k", markersize=4)
            ax.annotate(f"member {member}", (alone.latency_ms, alone.accuracy), textcoords="offset points",
                        xytext=(4, -10), fontsize=7)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.legend(fontsize=7, loc="lower right")
        stem = out / f"fig4-heterogeneous-cascade-{profile.name}"
        save_figure(fig, f"{stem}.png")
        print(f"wrote {stem}.png")
        write_csv(f"{stem}.csv", POINT_HEADER, rows)


if __name__ == "__main__":
    sys.exit(script_exit(main))
