"""Profiles derived by the cost model for devices that cannot be measured here.

The parameters fitted on a measured reference profile (the H100 for GPUs, this host's CPU profile for CPUs) are
carried to the target device's datasheet figures (`devices.DEVICES`): efficiencies and fixed costs unchanged,
energy parameters scaled (`EnergyParams.scaled`). Per model x dtype x mode x batch size the profile holds the
predicted latency at the points' quantile (`points.POINT_QUANTILE`, the host's fast speed), spread into quantiles
with the reference's median relative spread for that mode, and the predicted energy of a call lasting the derived
median.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from simulator.costmodel.devices import DEVICES, device_spec, measured_cpu_spec
from simulator.costmodel.fit import fit_energy, fit_latency, predict_energy_j
from simulator.costmodel.latency import predict_latency_ms
from simulator.costmodel.layers import committed_tables, load_table
from simulator.costmodel.linear import measured_linear_params
from simulator.costmodel.points import POINT_QUANTILE, entry_mode, profile_points
from simulator.errors import given_twice, require
from simulator.models.registry import (ARCHITECTURES, FMNIST_WIDTHS, bare_named, check_entry_names,
                                       profile_model_name)
from simulator.profiles import PROFILES_DIR, BatchEntry, LatencyDistribution, ModelEntry, Profile

QUANTILES = (0.1, 0.5, 0.9, 0.99)
BATCH_SIZES = tuple(range(1, 17)) + (24, 32, 48, 64)
MODELS = tuple(ARCHITECTURES) + tuple(f"fmnist-cnn-w{w}" for w in FMNIST_WIDTHS)

#: Shipped derived profiles: profile name -> device table entry.
SHIPPED = {"a100": "a100-sxm", "l4": "l4", "t4": "t4", "agx-orin-15w": "agx-orin-15w",
           "agx-orin-30w": "agx-orin-30w", "agx-orin-50w": "agx-orin-50w", "orin-nx": "orin-nx-16gb",
           "orin-nano": "orin-nano-8gb", "jetson-nano": "jetson-nano", "rpi5": "rpi5"}

#: Measured devices whose datasheet figures are in the device table, by the device name their profile records.
MEASURED_DEVICES = {"NVIDIA H100 80GB HBM3": "h100-sxm", "NVIDIA H200": "h200-sxm"}

CAVEATS = {
    "gpu": ["host launch costs (eager mode) are the reference host's; an embedded Arm host issues kernels more "
            "slowly, so eager latencies are optimistic there",
            "efficiencies are the reference GPU's; smaller GPUs reach a larger share of their peak on small batches",
            "fixed per-kernel and per-call costs are the reference GPU's: small batches, which they dominate, come out "
            "about as fast as on the reference (e.g. A100 ~ H100 at batch 1); a slower GPU's kernel minimum is longer",
            "PyTorch kernels (cuDNN), no TensorRT layer fusion or INT8: deployed TensorRT engines are faster",
            "energy: static power and per-FLOP/per-byte energy scaled from the reference by power envelope, peak "
            "and bandwidth (a heuristic, unchecked on the target)"],
    "cpu": ["efficiencies are the reference CPU's share of its measured attainable peaks, applied to the target's "
            "theoretical peaks over all its cores (optimistic where the target's libraries reach less of its peak "
            "or scale imperfectly over its cores); unchecked against a measurement of the target",
            "linear layers follow the reference's BLAS (MKL on x86: row by row up to 3 rows, then a GEMM that packs "
            "its weights); an Arm build of PyTorch uses other libraries, whose small-batch behaviour is unchecked",
            "energy not derived: no measured CPU energy to fit (RAPL was not readable) and no sourced envelope"],
}


def reference_spec(profile):
    """The device spec of a measured profile: datasheet figures for a known GPU, measured peaks for a CPU."""
    require(profile.provenance.get("source") != "derived", f"profile {profile.name} was derived by the cost model, "
            "not measured: fitting or checking the cost model needs a measured profile (`flexsim profiles` says "
            "which are)")
    if profile.kind == "cpu":
        return measured_cpu_spec(profile)
    name = profile.device.get("name")
    require(name in MEASURED_DEVICES, f"profile {profile.name}: device {name!r} is not in the cost model's device "
            f"table (known measured devices: {', '.join(MEASURED_DEVICES)})")
    return device_spec(MEASURED_DEVICES[name])


def fitted_reference(profile, spec, points=None):
    """The latency parameters fitted on every point of a measured `profile` (`points`, its `profile_points` where
    not given) with its measured linear rates held (`linear.measured_linear_params`); with the rates' origin, None
    where the fit set them too."""
    points = profile_points(profile) if points is None else points
    linear, source = measured_linear_params(profile, spec)
    return fit_latency(points, spec, fixed=linear), (source if linear else None)


def relative_spread(profile, mode: str) -> np.ndarray:
    """Median over the reference's entries in `mode` of each quantile in `QUANTILES` divided by the quantile the
    cost model predicts (`points.POINT_QUANTILE`)."""
    ratios, at = [], QUANTILES.index(POINT_QUANTILE)
    for model in profile.models.values():
        if entry_mode(model.info) == mode:
            for entry in model.batches.values():
                q = entry.latency.icdf_ms(np.array(QUANTILES))
                ratios.append(q / q[at])
    require(ratios, f"profile {profile.name}: no {mode} entries to take the latency spread from")
    return np.maximum.accumulate(np.median(np.array(ratios), axis=0))


def variants(spec) -> tuple[tuple[str, str], ...]:
    """(dtype, mode) pairs derived for a device: GPUs fp16/fp32 x graph/eager (first: fp16 graph); CPUs fp32."""
    if spec.executes == "cpu":
        return (("fp32", "eager"),)
    return (("fp16", "graph"), ("fp16", "eager"), ("fp32", "graph"), ("fp32", "eager"))


def derive_profile(name: str, target, reference, *, batch_sizes=BATCH_SIZES, models=MODELS,
                   tables=()) -> Profile:
    """A profile `name` for device spec `target`, from the parameters fitted on the measured profile `reference`.

    Parameters
    ----------
    models : sequence of str
        Models with a committed layer table (`layers.committed_tables`).
    tables : sequence of LayerTable
        Other models' layer tables (a user's model traced by `flexsim costmodel trace`). The first form of every
        model but the ImageNet architectures (fp16 CUDA graph on a GPU, fp32 eager on a CPU) carries its name
        alone (`registry.bare_named`), the name a logit cache looks up.
    """
    named = [load_table(m) for m in models] + list(tables)
    names = [t.model for t in named]
    twice = given_twice(names)
    require(named, "derive: no model to derive (give committed models or layer tables)")
    require(not twice, f"derive: model {', '.join(twice)} given twice (a layer table's model named as another's)")
    keys = {(t.model, dtype, mode): profile_model_name(t.model, dtype, mode, bare=i == 0 and bare_named(t.model))
            for t in named for i, (dtype, mode) in enumerate(variants(target))}
    check_entry_names(list(keys.values()), [model for model, _, _ in keys], "derive")
    ref_spec = reference_spec(reference)
    require(ref_spec.executes == target.executes, f"cannot derive {target.name} ({target.executes}) from "
            f"{reference.name} ({ref_spec.executes}): reference and target must both be GPUs or both CPUs")
    points = profile_points(reference)
    params, linear_source = fitted_reference(reference, ref_spec, points)
    energy = fit_energy(points, ref_spec)
    energy = None if energy is None or target.power_w is None else energy.scaled(ref_spec, target)
    spreads = {mode: relative_spread(reference, mode) for _, mode in variants(target)}
    entries = {}
    for table in named:
        for dtype, mode in variants(target):
            batches = {b: _entry(table, b, dtype, mode, target, params, energy, spreads[mode]) for b in batch_sizes}
            entries[keys[table.model, dtype, mode]] = ModelEntry(
                batches=batches, info={"arch": table.model, "dtype": dtype,
                                       "mode": "cuda-graph" if mode == "graph" else mode, "params": table.params})
    idle = None if energy is None or reference.idle_power_w is None else \
        reference.idle_power_w * target.power_w / ref_spec.power_w
    return Profile(
        name=name, device={"name": target.label, "kind": target.kind, "datasheet": target.to_json()},
        idle_power_w=idle, decision_overhead_ms=reference.decision_overhead_ms,
        provenance={
            "source": "derived", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "method": "flexsim cost model (simulator/costmodel, docs/cost-model.md): per-kernel roofline + fixed "
                      "costs on committed layer tables, fitted on the reference's 10th-percentile latencies; latency "
                      "quantiles = predicted 10th percentile x the reference's median relative spread per mode; "
                      "energy of a call lasting the derived median = static power x time + energy per FLOP (counted "
                      "at the FP16 tensor rate: a kernel on a unit with a lower peak counts more) and per byte",
            "derived_from": {
                "reference_profile": reference.name, **_reference_file(reference), "reference_device": ref_spec.name,
                "device_table_entry": target.name, "latency_params": params.to_json(),
                **({"linear_params_from": linear_source} if linear_source else {}),
                **({"given_layer_tables": {t.model: t.traced_with for t in tables}} if tables else {}),
                "energy_params": None if energy is None else energy.to_json(),
                "idle_power": "reference idle power x power envelope ratio" if idle is not None else "not derived",
                "reference_measured": _reference_measurement(reference),
                "decision_overhead": _decision_overhead_origin(reference)},
            "caveats": (CAVEATS[target.executes] + _unseen_ops_caveat(tables)
                        + _channel_block_caveat(ref_spec, target) + _efficiency_caveat(params)),
            "software": derivation_software(),
            "built_by": "flexsim costmodel derive"},
        models=entries,
    )


def _reference_measurement(reference: Profile) -> dict:
    """Which measurement the reference profile's name stood for when this was derived (a shipped name is re-measured
    from time to time): its date and, where it was renamed, what it was measured as."""
    keep = ("date", "measured_as")
    return {key: reference.provenance[key] for key in keep if key in reference.provenance}


def _decision_overhead_origin(reference: Profile) -> str:
    """Where the decision overhead, copied from the reference profile, was measured: the reference's own note where it
    has one (the H100's was measured on another host)."""
    note = reference.provenance.get("decision_overhead_note")
    return f"copied from the reference profile ({reference.name})" + (f": {note}" if note else
                                                                      ", measured on its host")


def derivation_software() -> dict:
    """Versions of what derived a profile: flexsim (its package version), NumPy, SciPy and Python."""
    import importlib.metadata
    import platform

    import scipy

    try:
        flexsim = importlib.metadata.version("flexsim")
    except importlib.metadata.PackageNotFoundError:
        flexsim = "not installed (run from a checkout)"
    return {"flexsim": flexsim, "numpy": np.__version__, "scipy": scipy.__version__,
            "python": platform.python_version()}


def _efficiency_caveat(params) -> list[str]:
    """A caveat naming the fitted efficiencies above 1: shares of the reference's measured peaks that exceed them
    (kernels whose data stay in the caches move them faster than the measured memory bandwidth), carried to the
    target's datasheet peaks, where they may predict more than the device can do."""
    above = {name: value for name, value in params.to_json().items() if name.startswith("eff_") and value > 1.0}
    if not above:
        return []
    listed = ", ".join(f"{name} {value:.3g}" for name, value in sorted(above.items()))
    return [f"efficiencies above 1 of the reference's measured peaks ({listed}) are carried to the target's "
            "datasheet peaks: there they may exceed what the device reaches (e.g. memory traffic faster than its DRAM "
            "where the reference's kernels ran from its caches), so the derived latencies may be optimistic"]


def _channel_block_caveat(reference, target) -> list[str]:
    """A caveat where the reference CPU's convolutions were costed in oneDNN's channel blocks
    (`latency.channel_padding`) and the target's block is not known (or differs)."""
    if reference.executes != "cpu" or reference.channel_block == target.channel_block:
        return []
    return [f"the reference's oneDNN convolutions were fitted counting their output channels in blocks of "
            f"{reference.channel_block} (its vector width); the target's block is "
            + ("not known, so its convolutions are costed unblocked" if target.channel_block is None
               else f"{target.channel_block}")]


def _unseen_ops_caveat(tables) -> list[str]:
    """A caveat naming the kernels of `tables` that no committed architecture runs (the cost model was fitted and
    checked on those architectures only: other kernels are costed by the same rules, unchecked)."""
    if not tables:
        return []
    seen = {op for m in committed_tables() for op in load_table(m).op}
    unseen = sorted({op for t in tables for op in t.op + (t.batched.op if t.batched else ())} - seen)
    return [f"kernels that none of the architectures the cost model was fitted on runs, costed by the same rules "
            f"(unchecked): {', '.join(unseen)}"] if unseen else []


def _entry(table, batch, dtype, mode, spec, params, energy, spread) -> BatchEntry:
    quantile_ms = predict_latency_ms(table, batch, dtype, mode, spec, params) * spread
    median_ms = float(quantile_ms[QUANTILES.index(0.5)])
    energy_j = None if energy is None else predict_energy_j(table, batch, dtype, spec, median_ms, energy)
    return BatchEntry(latency=LatencyDistribution(quantile_probs=np.array(QUANTILES),
                                                  quantile_ms=np.round(quantile_ms, 6)),
                      energy_j=None if energy_j is None else round(energy_j, 8))


def known_targets() -> tuple[str, ...]:
    return tuple(DEVICES)


def _reference_file(reference: Profile) -> dict:
    """``{"reference_file": path}`` for a reference read from a file that is not a shipped profile (a profile of
    yours may carry a shipped one's name); nothing for a shipped one, whose name says which it is."""
    if reference.origin == "<memory>" or Path(reference.origin).resolve().parent == Path(PROFILES_DIR).resolve():
        return {}
    return {"reference_file": str(Path(reference.origin).resolve())}
