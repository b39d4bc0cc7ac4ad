"""What the scripts that re-simulate a committed validation folder share (`session_band.py`, `serving_levels.py`):
their command line, and the folder's ``results.json`` with the scenarios asked for."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from simulator.errors import FlexsimError, require


def parser(description: str, default_scenarios: str) -> argparse.ArgumentParser:
    """A validation folder, ``--scenarios`` (default: `default_scenarios`, as the help says) and ``--seeds``."""
    out = argparse.ArgumentParser(description=description)
    out.add_argument("folder", type=Path, help="a validation folder (results.json, profile-*.json)")
    out.add_argument("--scenarios", default=None, help=f"comma-separated scenario names (default: {default_scenarios})")
    out.add_argument("--seeds", type=int, default=20, help="seeds per simulation (default 20)")
    return out


def load_results(args, eligible=lambda sc: True, what: str = "scenario") -> tuple[dict, list]:
    """The folder's ``results.json`` and its scenarios that are `eligible` (named `what` in errors), only those of
    ``--scenarios`` where given; a clear error for too few seeds, a missing file or an unknown scenario."""
    require(args.seeds >= 2, f"invalid seeds = {args.seeds}: must be >= 2")
    path = args.folder / "results.json"
    require(path.is_file(), f"no results.json in {args.folder}")
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise FlexsimError(f"{path} is not valid JSON ({exc})") from None
    scenarios = [sc for sc in results["scenarios"] if eligible(sc)]
    if args.scenarios:
        wanted = args.scenarios.split(",")
        unknown = sorted(set(wanted) - {sc["name"] for sc in scenarios})
        require(not unknown, f"no {what} {', '.join(unknown)} in {path}")
        scenarios = [sc for sc in scenarios if sc["name"] in wanted]
    return results, scenarios


def guarded(report, args) -> int:
    """Run ``report(args)``; 0, or 2 with a one-line error on stderr for bad input (`FlexsimError`, a missing key
    or value in the folder's files)."""
    try:
        report(args)
    except KeyError as exc:
        print(f"error: {args.folder}: its results.json or a profile lacks the field {exc}", file=sys.stderr)
        return 2
    except (FlexsimError, ValueError) as exc:
        print(f"error: {args.folder}: {exc}", file=sys.stderr)
        return 2
    return 0
