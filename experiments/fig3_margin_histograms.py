"""Figure 3: score-margin histograms of correct and wrong predictions of a single member.

    python experiments/fig3_margin_histograms.py [--member M] [--bins N] [--out DIR]

The score margin (top-1 minus top-2 softmax probability, `simulator.signals`) of member M (default 0) of the shipped
Fashion-MNIST ensemble, on the 10,000 test and the 60,000 training samples, split by whether the member's
prediction is right. Each histogram is normalised to its own total, so that the two shapes compare. Independent of
the device: one PNG and one CSV (``fig3-margin-histograms.{png,csv}``).
"""

import sys

import numpy as np
from figure_common import out_dir, parser, write_csv

from simulator.errors import require, script_exit
from simulator.logits import load_cache
from simulator.optimize.plots import save_figure
from simulator.signals import stage_signals


def margins(cache, member: int):
    """Score margin and correctness of `member` alone on every sample of `cache`."""
    stages = stage_signals(cache.logits, cache.labels, [member], "mean", "margin")
    return stages.signal[0], stages.correct[0]


def main() -> None:
    p = parser(__doc__, default_profiles=None)
    p.add_argument("--member", type=int, default=0, help="ensemble member (default 0)")
    p.add_argument("--bins", type=int, default=40, help="histogram bins over [0, 1] (default 40)")
    args = p.parse_args()
    require(1 <= args.bins <= 10_000, f"invalid --bins = {args.bins}: must be from 1 to 10000")
    caches = {"test": load_cache("fmnist"), "train": load_cache("fmnist-train")}
    members = caches["test"].logits.shape[0]
    require(0 <= args.member < members,
            f"invalid --member = {args.member}: the ensemble has members 0 to {members - 1}")
    out = out_dir(args)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.linspace(0.0, 1.0, args.bins + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=120, sharey=True)
    rows = []
    for ax, (split, cache) in zip(axes, caches.items()):
        margin, correct = margins(cache, args.member)
        for label, mask, color in (("correct", correct, "C0"), ("wrong", ~correct, "C3")):
            counts, _ = np.histogram(margin[mask], bins=edges)
            ax.stairs(counts / max(counts.sum(), 1), edges, fill=True, alpha=0.45, color=color,
                      label=f"{label} ({mask.sum()}, median margin {np.median(margin[mask]):.2f})")
            rows += [[split, label, lo, hi, c] for lo, hi, c in zip(edges[:-1], edges[1:], counts)]
        ax.set_title(f"member {args.member}, {split} ({margin.size} samples, accuracy {correct.mean():.4f})",
                     fontsize=9)
        ax.set_xlabel("score margin (top-1 - top-2 probability)")
        ax.legend(fontsize=8, loc="upper center")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("fraction of the group's samples")
    stem = out / "fig3-margin-histograms"
    save_figure(fig, f"{stem}.png")
    print(f"wrote {stem}.png")
    write_csv(f"{stem}.csv", ["split", "prediction", "margin_from", "margin_to", "samples"], rows)


if __name__ == "__main__":
    sys.exit(script_exit(main))
