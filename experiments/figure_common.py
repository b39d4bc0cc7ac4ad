"""What the figure scripts of ``experiments/`` share: their command line, the profiles they run on, the lambda
sweep, and atomic CSV output.

Every figure uses the shipped Fashion-MNIST ensemble: thresholds are chosen on the training logits
(``fmnist-train``), every plotted point is measured on the held-out test logits (``fmnist``).
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import numpy as np

from simulator.io import make_output_dir, write_text_atomic
from simulator.profiles import load_profile, shipped_profiles

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ROOT / "docs" / "figures"
HOMOGENEOUS = (0, 1, 2, 3, 4, 5)
#: Profiles drawn by default: the measured datacenter GPU and CPU, two derived embedded devices.
DEFAULT_PROFILES = ("h100", "cpu-amd-epyc-2c", "agx-orin-30w", "jetson-nano")
#: Own models of the Fashion-MNIST members (small, medium, large).
FMNIST_MODELS = ("fmnist-cnn-w8", "fmnist-cnn-w32", "fmnist-cnn-w64")


def parser(description: str, default_profiles: tuple | None = DEFAULT_PROFILES) -> argparse.ArgumentParser:
    """The command line every figure script takes: profiles (by default `default_profiles`, those shipped; no
    ``--profile`` where None: a figure that no profile changes) and output folder."""
    p = argparse.ArgumentParser(description=description)
    if default_profiles is not None:
        p.add_argument("--profile", action="append", help="device profile (name or path; repeatable; 'all': every "
                       f"shipped profile; default: {', '.join(default_profiles)}, those shipped)")
        p.set_defaults(default_profiles=tuple(default_profiles))
    p.add_argument("--out", default=str(FIGURES), help=f"output folder (default: {FIGURES.relative_to(ROOT)})")
    return p


def profile_names(args: argparse.Namespace) -> list[str]:
    """The profiles asked for: those given (every shipped one for 'all'), else the shipped ones of the parser's
    default."""
    shipped = list(shipped_profiles())
    names = args.profile or [name for name in args.default_profiles if name in shipped]
    return shipped if "all" in names else names


def profiles(args: argparse.Namespace, need_models=()) -> list:
    """The profiles of `profile_names` loaded, less those without the models in `need_models` (each skipped one
    named)."""
    loaded = [load_profile(name) for name in profile_names(args)]
    usable = [p for p in loaded if all(m in p.models for m in need_models)]
    for p in loaded:
        if p not in usable:
            print(f"skipping profile {p.name}: it has no costs for {', '.join(m for m in need_models if m not in p.models)}")
    return usable


def out_dir(args: argparse.Namespace) -> Path:
    """The output folder ``--out``, created if needed (a one-line error where it cannot be)."""
    return make_output_dir(args.out, "--out")


def lambdas(first_stage_ms: float, n: int = 13) -> np.ndarray:
    """A geometric sweep of lambda from 0.1 to 1000 times the first stage's mean latency (ms)."""
    return first_stage_ms * np.logspace(-1, 3, n)


def write_csv(path: Path, header, rows) -> None:
    """Rows of values as CSV, atomically (floats in shortest round-trip form)."""
    def text(v):
        return repr(float(v)) if isinstance(v, (float, np.floating)) else str(v)

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([text(v) for v in row] for row in rows)
    write_text_atomic(path, buffer.getvalue())
    print(f"wrote {path}")


def point_row(label: str, lam, train, test) -> list:
    """A CSV row: series, lambda, thresholds, and the point's figures on the training and test samples."""
    return [label, lam, "/".join(repr(t) for t in train.thresholds), train.accuracy, train.latency_ms,
            "" if train.energy_j is None else train.energy_j, test.accuracy, test.latency_ms,
            "" if test.energy_j is None else test.energy_j, test.mean_stages]


POINT_HEADER = ["series", "lambda", "thresholds", "train_accuracy", "train_latency_ms", "train_energy_j",
                "test_accuracy", "test_latency_ms", "test_energy_j", "test_mean_stages"]


def config(profile, members=HOMOGENEOUS, combiner: str = "mean"):
    """The run configuration of `members` on `profile`, on the held-out test logits."""
    from simulator.config import RunConfig

    return RunConfig(logits="fmnist", members=tuple(members), combiner=combiner, profile=(str(profile.origin),))


def sweep(profile, members=HOMOGENEOUS, combiner: str = "mean", method: str = "grid"):
    """Thresholds chosen on the training logits for a sweep of lambda, each measured on the test logits."""
    from simulator.optimize import lambda_sweep, train_and_test

    train, test = train_and_test(config(profile, members, combiner))
    return train, test, lambda_sweep(train, test, lambdas(float(train.latency_ms[0].mean())), method=method)
