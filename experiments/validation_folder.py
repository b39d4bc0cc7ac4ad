"""What the scripts that re-simulate a committed validation folder share (`session_band.py`, `serving_levels.py`):
their command line, and the folder's ``results.json`` with the scenarios asked for."""

from __future__ import annotations

import argparse
from pathlib import Path

from simulator.errors import FlexsimError, require, script_exit
from simulator.io import read_json


def parser(description: str, default_scenarios: str) -> argparse.ArgumentParser:
    """A validation folder, ``--scenarios`` (default: `default_scenarios`, as the help says) and ``--seeds``."""
    out = argparse.ArgumentParser(description=description)
    out.add_argument("folder", type=Path, help="a validation folder (results.json, profile-*.json)")
    out.add_argument("--scenarios", default=None, help=f"comma-separated scenario names (default: {default_scenarios})")
    out.add_argument("--seeds", type=int, default=None, help="seeds per simulation (default: as many as the "
                     "folder's validation used)")
    return out


def load_results(args, eligible=lambda sc: True, what: str = "scenario") -> tuple[dict, list]:
    """The folder's ``results.json`` and its scenarios that are `eligible` (named `what` in errors), only those of
    ``--scenarios`` where given; ``--seeds`` defaults to the folder's own (``args.seeds`` set to it); a clear error
    for too few seeds, a missing file or an unknown scenario."""
    path = args.folder / "results.json"
    require(path.is_file(), f"no results.json in {args.folder}")
    results = read_json(path, "results")
    if args.seeds is None:
        args.seeds = results["plan"]["seeds"]
    require(args.seeds >= 2, f"invalid seeds = {args.seeds}: must be >= 2")
    scenarios = [sc for sc in results["scenarios"] if eligible(sc)]
    if args.scenarios:
        wanted = args.scenarios.split(",")
        unknown = sorted(set(wanted) - {sc["name"] for sc in scenarios})
        require(not unknown, f"no {what} {', '.join(unknown)} in {path}")
        scenarios = [sc for sc in scenarios if sc["name"] in wanted]
    return results, scenarios


def shipped_cache():
    """The shipped logit cache of the trained members (`simulator.runner.bundle.CACHE_PATH`), which every
    validation scenario replays."""
    from simulator.logits import load_cache
    from simulator.runner.bundle import CACHE_PATH

    return load_cache(str(CACHE_PATH))


def with_slow_phases(noise, factor: float, share: float, slow_ms: float):
    """The speed process `noise` (a `simulator.speed.SpeedNoise`, None for none) with exactly the slow phases
    ``factor``, ``share``, ``slow_ms`` in place of its own (none for a share of 0)."""
    from dataclasses import replace

    from simulator.runner.validation import LONG_ONLY_MS
    from simulator.speed import SpeedNoise

    base = noise or SpeedNoise(0.0, LONG_ONLY_MS)
    if share <= 0:
        factor, slow_ms = 1.0, 0.0
    return replace(base, slow_factor=factor, slow_share=share, slow_ms=slow_ms)


def guarded(report, args) -> int:
    """`script_exit` of ``report(args)``, with the folder named and a missing key or a bad value in the folder's
    files counted as bad input."""
    def named():
        try:
            report(args)
        except KeyError as exc:
            raise FlexsimError(f"{args.folder}: its results.json or a profile lacks the field {exc}") from None
        except (FlexsimError, ValueError) as exc:
            raise FlexsimError(f"{args.folder}: {exc}") from None

    return script_exit(named)
