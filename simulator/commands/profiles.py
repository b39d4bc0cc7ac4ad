"""``flexsim profiles``: list the shipped device profiles."""

from __future__ import annotations

import argparse

DESCRIPTION = "List the shipped device profiles with kind, source and the models and batch sizes they cover."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", action="store_true", help="list every model with its batch sizes")


def run(args: argparse.Namespace) -> int:
    from simulator.profiles import PROFILES_DIR, load_profile, shipped_profiles

    shipped = shipped_profiles()
    if not shipped:
        print(f"no profiles in {PROFILES_DIR} (FLEXSIM_PROFILES, where set, names the folder)")
    for name, path in shipped.items():
        p = load_profile(path)
        energy = "energy" if any(b.energy_j is not None for m in p.models.values() for b in m.batches.values()) \
            else "no energy"
        print(f"{name:<24} {p.kind:<10} {p.provenance['source']:<8} {p.device.get('name', '')}  "
              f"[{len(p.models)} models, {energy}]")
        print(f"    covers: {_coverage(p)}")
        if p.provenance.get("source") == "derived":
            origin = p.provenance.get("derived_from", {})
            print(f"    derived from profile {origin.get('reference_profile')} by the cost model "
                  f"(device table entry {origin.get('device_table_entry')})")
        if args.models:
            for model, entry in p.models.items():
                sizes = sorted(entry.batches)
                print(f"    {model:<32} batch {_ranges(sizes)}")
    return 0


def _coverage(profile) -> str:
    """Architectures grouped by the forms (dtype, mode) and batch sizes they are covered in, e.g.
    ``resnet18, resnet50 (fp16 eager, fp32 eager) at batch 1-64 (7 sizes)``."""
    forms, sizes = {}, {}
    for name, model in profile.models.items():
        arch = str(model.info.get("arch", name)).replace("_", "-")
        form = " ".join(str(model.info[k]) for k in ("dtype", "mode") if k in model.info)
        forms.setdefault(arch, set()).add(form)
        sizes.setdefault(arch, set()).update(model.batches)
    groups = {}
    for arch in forms:
        key = (", ".join(sorted(f for f in forms[arch] if f)), _ranges(sorted(sizes[arch])))
        groups.setdefault(key, []).append(arch)
    return "; ".join(f"{', '.join(archs)}{f' ({f})' if f else ''} at batch {b}" for (f, b), archs in groups.items())


def _ranges(sizes) -> str:
    return ",".join(map(str, sizes)) if len(sizes) < 6 else f"{sizes[0]}-{sizes[-1]} ({len(sizes)} sizes)"
