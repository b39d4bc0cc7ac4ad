"""``flexsim profiles``: list the shipped device profiles."""

from __future__ import annotations

import argparse

DESCRIPTION = """List device profiles with kind, source and the models and batch sizes they cover: the shipped ones,
or those named (shipped names or profile files, e.g. one you measured or derived).

Examples:
  flexsim profiles
  flexsim profiles orin-nano-mynet.json --models   # each model: batch sizes, median latency and energy per call
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("profiles", nargs="*", help="profiles to list: shipped names or files (default: every shipped "
                        "profile)")
    parser.add_argument("--models", action="store_true", help="list every model with its batch sizes, and its median "
                        "latency (ms) and energy (J) per call at the smallest")


def run(args: argparse.Namespace) -> int:
    from simulator.profiles import PROFILES_DIR, load_profile, shipped_profiles

    shipped = {name: name for name in args.profiles} if args.profiles else shipped_profiles()
    if not shipped:
        print(f"no profiles in {PROFILES_DIR} (FLEXSIM_PROFILES, where set, names the folder)")
    profiles = {name: load_profile(path) for name, path in shipped.items()}    # every one checked before printing
    for name, p in profiles.items():
        print(f"{name:<24} {p.kind:<10} {p.provenance['source']:<8} {p.device.get('name', '')}  "
              f"[{len(p.models)} models, {_energy_label(p)}]")
        print(f"    covers: {_coverage(p)}")
        if p.provenance.get("source") == "derived":
            origin = p.provenance.get("derived_from", {})
            print(f"    derived from profile {origin.get('reference_profile')} by the cost model "
                  f"(device table entry {origin.get('device_table_entry')})")
        if args.models:
            for model, entry in p.models.items():
                sizes = sorted(entry.batches)
                print(f"    {model:<32} batch {_ranges(sizes):<16} {_smallest(entry.batches[sizes[0]], sizes[0])}")
    return 0


def _smallest(entry, batch: int) -> str:
    """The median latency and energy per call of a profile's entry at batch size `batch`."""
    import numpy as np

    median_ms = float(entry.latency.icdf_ms(np.array([0.5]))[0])
    energy = "energy not measured" if entry.energy_j is None else f"{entry.energy_j:.4g} J"
    return f"batch {batch}: p50 {median_ms:.4g} ms, {energy}"


def _energy_label(profile) -> str:
    """Whether a simulation on `profile` has energy: every entry's and the idle power (``energy``), some entries'
    and the idle power (``energy for some models``: only runs on those have it), or none."""
    measured = [b.energy_j is not None for m in profile.models.values() for b in m.batches.values()]
    if profile.idle_power_w is None or not any(measured):
        return "no energy"
    return "energy" if all(measured) else "energy for some models"


def _coverage(profile) -> str:
    """Architectures grouped by what they are covered in: each form (dtype, mode) with the batch sizes some model of
    that architecture and form measured, e.g. ``resnet18, vgg16 (fp16 eager, fp32 eager) at batch 1-64 (7 sizes),
    (fp16 cuda-graph) at batch 1``."""
    sizes = {}
    for name, model in profile.models.items():
        arch = str(model.info.get("arch", name)).replace("_", "-")
        form = " ".join(str(model.info[k]) for k in ("dtype", "mode") if k in model.info)
        sizes.setdefault(arch, {}).setdefault(form, set()).update(model.batches)
    groups = {}
    for arch, forms in sizes.items():
        by_batches = {}
        for form, batches in sorted(forms.items()):
            by_batches.setdefault(_ranges(sorted(batches)), []).append(form)
        text = ", ".join(_forms_text(fs) + f"at batch {b}" for b, fs in by_batches.items())
        groups.setdefault(text, []).append(arch)
    return "; ".join(f"{', '.join(archs)} {text}" for text, archs in groups.items())


def _forms_text(forms: list[str]) -> str:
    """``(fp16 eager, fp32 eager) `` for the named forms, nothing where none is named."""
    named = [f for f in forms if f]
    return f"({', '.join(named)}) " if named else ""


def _ranges(sizes) -> str:
    return ",".join(map(str, sizes)) if len(sizes) < 6 else f"{sizes[0]}-{sizes[-1]} ({len(sizes)} sizes)"
