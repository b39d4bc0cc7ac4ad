"""How steady is this host? Time one Fashion-MNIST member's forward pass back to back and summarise its speed modes.

    python experiments/host_speed_modes.py [--seconds 120] [--window-s 1] [--width 8] [--threads 1] [--out CSV]

Prints the median latency of every window (ms), then the share of time in the fast mode, how much slower the slow
windows were and how long the slow stretches lasted (`simulator.runner.speed_modes`). A host fit for timing work
shows no slow windows; this project's VM showed two modes about 1.6x apart, switching every few seconds
(`docs/validation-history.md`). Random weights: only the time matters. Needs PyTorch.
"""

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from simulator.errors import script_exit  # noqa: E402
from simulator.io import check_output_file, write_text_atomic  # noqa: E402
from simulator.models.fmnist import FashionCNN  # noqa: E402
from simulator.runner.speed_modes import speed_modes  # noqa: E402


def window_medians_ms(seconds: float, window_s: float, width: int, threads: int) -> list[float]:
    """Median latency (ms) of back-to-back batch-1 calls (with the copy to NumPy) per window of `window_s`."""
    torch.set_num_threads(threads)
    model, x = FashionCNN(width).eval(), torch.randn(1, 1, 28, 28)
    medians, samples = [], []
    with torch.inference_mode():
        for _ in range(200):  # warm-up
            model(x).numpy()
        end = time.perf_counter() + seconds
        window_end = time.perf_counter() + window_s
        while time.perf_counter() < end:
            t0 = time.perf_counter()
            model(x).numpy()
            t1 = time.perf_counter()
            samples.append(t1 - t0)
            if t1 >= window_end:
                medians.append(float(np.median(samples)) * 1e3)
                print(f"{medians[-1]:.3f}", end=" ", flush=True)
                samples, window_end = [], t1 + window_s
    print()
    return medians


def describe(modes: dict, window_s: float) -> str:
    """One line on the host's speed modes."""
    head = (f"{modes['windows']} windows of {window_s:g} s: fast mode {modes['fast_ms']:.3f} ms (10th percentile of "
            f"the windows), {100 * modes['fast_share']:.0f}% of windows fast")
    stretches = modes["slow_stretches"]
    if not stretches:
        return head + "; no slow window: one speed mode"
    return (head + f"; slow windows {modes['slow_over_fast']:.2f}x the fast mode, in {len(stretches)} stretches "
            f"(median {np.median(stretches):g}, longest {max(stretches)} windows)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=120.0, help="how long to measure (default 120)")
    p.add_argument("--window-s", type=float, default=1.0, help="window length in seconds (default 1)")
    p.add_argument("--width", type=int, default=8, help="member width (default 8: the validation's members)")
    p.add_argument("--threads", type=int, default=1, help="PyTorch intra-op threads (default 1)")
    p.add_argument("--out", help="also write the window medians as CSV (window, median_ms, slow)")
    args = p.parse_args()
    finite = math.isfinite(args.seconds) and math.isfinite(args.window_s)
    if not finite or args.seconds < 2 * args.window_s or args.window_s <= 0 or args.width < 1 or args.threads < 1:
        p.error("need finite --seconds >= 2 windows, --window-s > 0, --width >= 1 and --threads >= 1")
    if args.out:
        check_output_file(args.out, "--out")             # before minutes of measuring, not after
    medians = window_medians_ms(args.seconds, args.window_s, args.width, args.threads)
    modes = speed_modes(medians)
    print(describe(modes, args.window_s))
    if args.out:
        rows = [f"{i},{m:.6f},{int(s)}" for i, (m, s) in enumerate(zip(medians, modes["slow"]))]
        write_text_atomic(args.out, "window,median_ms,slow\n" + "\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(script_exit(main))
