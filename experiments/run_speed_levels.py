"""Does the host's speed change within a real run or only between runs? Read the raw traces of a validation.

`flexsim validate` commits every real run's per-stage records (``<out>/<scenario>/real-<i>.npz``: each stage's start,
compute time and decision time, each request's queue length at arrival). This script needs no PyTorch and no GPU:
per scenario and run it prints the median stage time (compute + decision, ms) over each fifth of the run and over
the stages of requests that found a short or a long queue, and then compares the spread within runs (over their
fifths) with the spread between the runs of a scenario. A host whose speed is set per run (a level that holds for
seconds, then changes) shows a small spread within runs and a large one between them; a worker whose own cost
grows with its backlog shows a long-queue median above the short-queue one.

Usage::

    python experiments/run_speed_levels.py docs/validation-cuda
    python experiments/run_speed_levels.py docs/validation --scenarios open-50,closed-4
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from simulator.errors import FlexsimError, script_exit

FIFTHS = 5
SHORT_QUEUE = 2  # requests found waiting at arrival, at most: "short"
LONG_QUEUE = 20  # at least: "long"


def stage_records(path: Path) -> dict:
    """One real run's stage times (ms), and the queue length its request found, in the order the stages ran."""
    with np.load(path) as raw:
        request = raw["stage_request"]
        return {"stage_ms": raw["stage_compute_ms"].astype(float) + raw["stage_decision_ms"],
                "compute_ms": raw["stage_compute_ms"].astype(float), "decision_ms": raw["stage_decision_ms"],
                "queue": raw["queue_len"][request]}


def run_levels(records: dict) -> dict:
    """Median stage time of each fifth of the run, the spread over the fifths, and by queue length."""
    fifths = [float(np.median(part)) for part in np.array_split(records["stage_ms"], FIFTHS)]
    short = records["stage_ms"][records["queue"] <= SHORT_QUEUE]
    long = records["stage_ms"][records["queue"] >= LONG_QUEUE]
    return {"median_ms": float(np.median(records["stage_ms"])),
            "compute_ms": float(np.median(records["compute_ms"])),
            "decision_ms": float(np.median(records["decision_ms"])),
            "fifths_ms": fifths, "within_spread": max(fifths) / min(fifths) - 1,
            "short_ms": float(np.median(short)) if short.size >= 20 else None,
            "long_ms": float(np.median(long)) if long.size >= 20 else None}


def scenario_levels(folder: Path) -> list[dict]:
    runs = sorted(folder.glob("real-*.npz"), key=lambda p: int(p.stem.split("-")[1]))
    return [run_levels(stage_records(p)) for p in runs]


def _ms(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def report(out_dir: Path, scenarios: list[str] | None) -> str:
    """The Markdown tables for every scenario folder of `out_dir` (or those named)."""
    folders = [f for f in sorted(out_dir.iterdir()) if f.is_dir() and any(f.glob("real-*.npz"))]
    if scenarios:
        unknown = sorted(set(scenarios) - {f.name for f in folders})
        if unknown:
            raise FlexsimError(f"no raw traces for {', '.join(unknown)} in {out_dir}")
        folders = [f for f in folders if f.name in scenarios]
    if not folders:
        raise FlexsimError(f"no real-*.npz traces under {out_dir}")
    lines = ["| scenario | run | stage ms (compute + decision) | by fifths of the run | within | "
             f"queue <= {SHORT_QUEUE} / >= {LONG_QUEUE} |", "|---|---|---|---|---|---|"]
    within, between = [], []
    for folder in folders:
        levels = scenario_levels(folder)
        for i, lv in enumerate(levels):
            lines.append(f"| {folder.name} | {i} | {lv['median_ms']:.3f} ({lv['compute_ms']:.3f} + "
                         f"{lv['decision_ms']:.3f}) | {', '.join(f'{v:.3f}' for v in lv['fifths_ms'])} | "
                         f"{100 * lv['within_spread']:.0f}% | {_ms(lv['short_ms'])} / {_ms(lv['long_ms'])} |")
            within.append(lv["within_spread"])
        medians = [lv["median_ms"] for lv in levels]
        if len(medians) > 1:
            between.append(max(medians) / min(medians) - 1)
    lines += ["", f"Spread of the median stage time (max / min - 1): within a run, over its fifths, median "
              f"{100 * np.median(within):.0f}% (max {100 * max(within):.0f}%, {len(within)} runs); between the "
              f"runs of a scenario, median {100 * np.median(between):.0f}% (max {100 * max(between):.0f}%, "
              f"{len(between)} scenarios)." if between else ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="a validation's --out folder (e.g. docs/validation-cuda)")
    parser.add_argument("--scenarios", help="comma-separated scenario names (default: every one with traces)")
    args = parser.parse_args(argv)
    if not args.out_dir.is_dir():
        raise FlexsimError(f"{args.out_dir} is not a folder")
    print(report(args.out_dir, args.scenarios.split(",") if args.scenarios else None))
    return 0


if __name__ == "__main__":
    sys.exit(script_exit(main))
