"""``flexsim profiles``: list the shipped device profiles."""

from __future__ import annotations

import argparse

DESCRIPTION = "List the shipped device profiles with kind, source and the models and batch sizes they cover."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", action="store_true", help="list every model with its batch sizes")


def run(args: argparse.Namespace) -> int:
    from simulator.profiles import load_profile, shipped_profiles

    for name, path in shipped_profiles().items():
        p = load_profile(path)
        energy = "energy" if any(b.energy_j is not None for m in p.models.values() for b in m.batches.values()) \
            else "no energy"
        print(f"{name:<24} {p.kind:<10} {p.provenance['source']:<8} {p.device.get('name', '')}  "
              f"[{len(p.models)} models, {energy}]")
        if args.models:
            for model, entry in p.models.items():
                sizes = sorted(entry.batches)
                print(f"    {model:<32} batch {_ranges(sizes)}")
    return 0


def _ranges(sizes) -> str:
    return ",".join(map(str, sizes)) if len(sizes) < 6 else f"{sizes[0]}-{sizes[-1]} ({len(sizes)} sizes)"
