"""Figure 5: which device meets a deadline, at what accuracy and energy? A deadline sweep on several devices.

    python experiments/fig5_deadline_study.py [--profile NAME ...] [--out DIR]

The shipped flexible ensemble (members 0-5, the default thresholds) with the deadline-aware policy (a request
stops before a stage its median latency would make miss the deadline; `docs/semantics.md`), Poisson arrivals at 80%
of each device's own capacity, 20,000 requests (every test sample twice), 3 seeds per point: accuracy, the
deadline-miss rate and the energy per request against the deadline, one line per device (`flexsim sweep` on each
profile; `docs/sweeps.md`). The devices are those that cost the Fashion-MNIST members themselves: by default the
measured H200 and this project's CPU, and the derived AGX Orin 30 W, Orin Nano, Jetson Nano and Raspberry Pi 5
(derived profiles are the cost model's estimates, `docs/cost-model.md`). Writes ``fig5-deadline-study.{png,csv}``.
"""

import sys

import numpy as np
from figure_common import FMNIST_MODELS, out_dir, parser, profiles, write_csv

from simulator.errors import script_exit
from simulator.sweep import sweep

#: Devices drawn by default (each has costs of the Fashion-MNIST members).
STUDY_PROFILES = ("h200", "cpu-amd-epyc-2c", "agx-orin-30w", "orin-nano", "jetson-nano", "rpi5")
#: Deadlines swept (ms), the same for every device.
DEADLINES_MS = tuple(float(x) for x in np.round(np.geomspace(0.5, 50.0, 11), 3))
#: (summary field, axis label, scale)
PANELS = (("accuracy", "accuracy", 1.0), ("deadline_miss_rate", "deadline misses (%)", 100.0),
          ("energy_per_request_j", "energy (mJ/request)", 1000.0))


def main() -> None:
    args = parser(__doc__, default_profiles=STUDY_PROFILES).parse_args()
    chosen = profiles(args, need_models=FMNIST_MODELS[1:2])      # bad names refused before the folder is made
    out = out_dir(args)
    results = {profile.name: sweep(vary={"deadline_ms": DEADLINES_MS}, seeds=3, policy=("threshold", "deadline"),
                                   profile=(str(profile.origin),), requests=20_000) for profile in chosen}
    rows = [[name, m["deadline_ms"], m["accuracy"], m["deadline_miss_rate"], m["latency_p99_ms"],
             "" if m["energy_per_request_j"] is None else m["energy_per_request_j"], m["mean_stages"]]
            for name, result in results.items() for m in result.means()]
    write_csv(out / "fig5-deadline-study.csv", ["profile", "deadline_ms", "accuracy", "deadline_miss_rate",
                                                 "latency_p99_ms", "energy_per_request_j", "mean_stages"], rows)
    plot(out / "fig5-deadline-study.png", results)


def plot(path, results: dict) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from simulator.optimize.plots import save_figure

    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.3 * len(PANELS), 3.6))
    for ax, (field, label, scale) in zip(axes, PANELS):
        for i, (name, result) in enumerate(results.items()):
            means = result.means()
            if any(m[field] is None for m in means):
                continue                                  # no energy figures (measured CPUs, the Pi)
            ax.plot([m["deadline_ms"] for m in means], [m[field] * scale for m in means], marker="o", ms=3,
                    color=f"C{i}", label=name)
        ax.set_xscale("log")
        if field == "energy_per_request_j":
            ax.set_yscale("log")                          # a data-center GPU spends ten times an embedded one
        ax.set_xlabel("deadline (ms)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle("Flexible ensemble (6 members, deadline-aware) at 80% load: Fashion-MNIST test", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(script_exit(main))
