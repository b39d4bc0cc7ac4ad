"""Measure models and assemble a device profile (schema v1).

One entry per model x dtype x mode, named ``{model}-{dtype}-{mode}`` (``resnet50-fp16-graph``); a Fashion-MNIST
member's first requested dtype and mode is named by the member alone (``fmnist-cnn-w32``), the name under which
the shipped logit caches look its cost up. Everything is measured in memory first; nothing is written here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from simulator.errors import given_twice, require
from simulator.profiler.settings import MeasureSettings
from simulator.profiles import KINDS, BatchEntry, LatencyDistribution, ModelEntry, Profile

METHOD = ("latency: wall time of one call (forward pass on an input already on the device + copy of the output to "
          "the host), measured after warm-up, raw samples; device_ms: CUDA-event time of the forward pass (GPU "
          "only); energy: energy counter over step-aligned windows of back-to-back calls, divided by the calls "
          "(includes the device's baseline power); idle power: counter over a window after the clocks settled")


@dataclass(frozen=True, kw_only=True)
class ProfileRequest:
    """What to measure: models by name, batch sizes, dtypes and modes on one device.

    `models`: built-in names, or users' models as ``NAME=SOURCE:CALLABLE`` (`simulator.models.user`) with their
    per-sample `input_shape` (of token ids below `input_tokens` where given); after construction, canonical names
    and `UserModel` objects.
    """

    models: tuple
    batch_sizes: tuple[int, ...]
    dtypes: tuple[str, ...] = ("fp32",)
    modes: tuple[str, ...] = ("eager",)
    device: str = "cpu"
    kind: str | None = None
    energy: bool = True
    input_shape: tuple[int, ...] | None = None
    input_tokens: int | None = None

    def __post_init__(self):
        from simulator.models.registry import parse_models
        from simulator.profiler.targets import DTYPES, MODES

        require(self.models, "invalid models: give at least one model")
        object.__setattr__(self, "models", parse_models(self.models, self.input_shape, self.input_tokens))
        object.__setattr__(self, "batch_sizes", check_batch_sizes(self.batch_sizes))
        for name, allowed in (("dtypes", DTYPES), ("modes", MODES)):
            values = getattr(self, name)
            require(values and all(v in allowed for v in values),
                    f"invalid {name} = {','.join(map(str, values))}: each must be one of {', '.join(allowed)}")
            twice = given_twice(values)
            require(not twice, f"invalid {name} = {','.join(values)}: {', '.join(twice)} given twice")
        require(self.kind is None or self.kind in KINDS, f"invalid kind {self.kind!r}: must be one of "
                f"{', '.join(KINDS)}")


#: Largest batch size the profiler measures (a larger one is a typo, or needs more memory than any device has).
MAX_BATCH = 65536


def check_batch_sizes(batch_sizes) -> tuple[int, ...]:
    """Distinct batch sizes, sorted; FlexsimError naming the first one that is not an integer from 1 to
    `MAX_BATCH`."""
    require(len(batch_sizes) > 0, "invalid batch sizes: give at least one")
    for b in batch_sizes:
        require(isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= MAX_BATCH,
                f"invalid batch size {b!r}: must be an integer from 1 to {MAX_BATCH}")
    return tuple(sorted(set(batch_sizes)))


def _torch():
    from simulator.errors import FlexsimError
    try:
        import torch
    except ImportError:
        raise FlexsimError("the profiler needs PyTorch: pip install 'flexsim[torch]'") from None
    return torch


#: A mode as a profile entry's ``info`` spells it, by the mode as names and the command line spell it.
INFO_MODES = {"eager": "eager", "graph": "cuda-graph"}


@dataclass(frozen=True)
class _Form:
    """One model in one dtype and mode: what the rounds of a measurement interleave (with the batch sizes)."""

    name: str
    module: object
    input_shape: tuple
    dtype: str
    mode: str
    source: dict = field(default_factory=dict)  # a named model's architecture and implementation
    input_tokens: int | None = None             # token-id inputs below this (`simulator.models.user.model_input`)

    def info(self, settings: MeasureSettings) -> dict:
        """What the profile records about this form (its ``info``)."""
        tokens = {} if self.input_tokens is None else {"input_tokens": self.input_tokens}
        return {"dtype": self.dtype, "mode": INFO_MODES[self.mode],
                "params": sum(p.numel() for p in self.module.parameters()), "input_shape": list(self.input_shape),
                **tokens, "measured": time.strftime("%Y-%m-%d %H:%M:%S"), "settings": settings.to_json(),
                **self.source}


def profile_module(module, input_shape, *, batch_sizes, dtype: str = "fp32", device: str = "cpu",
                   mode: str = "eager", settings: MeasureSettings = MeasureSettings(), energy_counter=None,
                   name: str = "module", progress=None, input_tokens: int | None = None) -> ModelEntry:
    """Measure a `torch.nn.Module` at each batch size; inputs are ``[batch, *input_shape]`` random tensors (token ids
    below `input_tokens` where given).

    Returns
    -------
    ModelEntry
        Per batch size: latency samples (ms), energy per call (J, None without `energy_counter`) and, in
        ``extra``, the latency quantiles and (on a GPU) the CUDA-event device time.
    """
    from simulator.models.user import check_input_tokens
    from simulator.profiler.targets import check_device, check_mode

    torch = _torch()
    check_mode(mode, check_device(torch, device))
    require(all(isinstance(s, int) and s >= 1 for s in input_shape),
            f"invalid input_shape = {tuple(input_shape)!r}: must be positive integers (per sample, no batch)")
    form = _Form(name, module, tuple(input_shape), dtype, mode, input_tokens=check_input_tokens(input_tokens))
    batches, _ = _measure_forms(torch, [form], check_batch_sizes(batch_sizes), device, settings, energy_counter,
                                progress)
    return ModelEntry(batches=batches[name], info=form.info(settings))


def _measure_forms(torch, forms, batch_sizes, device, settings, counter, progress, probes=None):
    """Every form at every batch size, with `settings`' allocator and threads: ``{form name: {batch: BatchEntry}}``,
    and the best time (s) of each of `probes` (``{name: call}`` built by a function of ``torch``, timed for
    `PROBE_WINDOW_S` in every round: `simulator.profiler.microbench`)."""
    from simulator.profiler.allocator import set_allocator

    set_allocator(settings.allocator)
    with _threads(torch, settings.threads), torch.inference_mode():
        entries, best_s = _measure_targets(torch, forms, batch_sizes, device, settings, counter,
                                           probes(torch) if probes else {})
    batches = {f.name: {b: entries[f.name, b] for b in batch_sizes} for f in forms}
    for (name, b), e in entries.items() if progress else ():
        progress(f"{name} batch {b}: p50 {e.extra['latency_summary_ms']['p50']:.3f} ms"
                 + (f", {e.energy_j:.4g} J" if e.energy_j is not None else ""))
    return batches, best_s


#: Seconds each probe of `_measure_targets` is timed for in every round.
PROBE_WINDOW_S = 0.05


def _measure_targets(torch, forms, batch_sizes, device, settings, counter, probes):
    """Prepare and warm up every form at every batch size, then take the latency samples in rounds interleaved over
    all of them (so that a burst of load from elsewhere on the host, or a slow phase of a shared host, spoils every
    configuration a little instead of one a lot), timing each of `probes` once per round too, then read energy.
    ``{(form name, batch): BatchEntry}`` and ``{probe: best time (s)}``."""
    from simulator.profiler.microbench import best_s
    from simulator.profiler.targets import prepare
    from simulator.profiler.timing import warm_up

    targets = {}
    for form in forms:
        for b in batch_sizes:
            targets[form.name, b] = prepare(torch, form.module, form.input_shape, b, form.dtype, device, form.mode,
                                            f"model {form.name}", form.input_tokens)
    for target in targets.values():
        warm_up(target.run, settings.warmup, settings.warmup_s)
    samples, best = {key: ([], []) for key in targets}, {}
    for n in _round_sizes(settings.repeats, settings.rounds):
        for key, target in targets.items():
            target.run()  # one unrecorded call after switching configuration
            host, device_ms = _samples(torch, target, n)
            samples[key][0].append(host)
            samples[key][1].append(device_ms)
        for name, call in probes.items():
            best[name] = min(best.get(name, float("inf")), best_s(call, PROBE_WINDOW_S))
    return {key: _entry(targets[key], *samples[key], settings, counter) for key in targets}, best


def _round_sizes(repeats: int, rounds: int) -> list[int]:
    """`repeats` split into `rounds` near-equal positive parts."""
    rounds = min(rounds, repeats)
    return [repeats // rounds + (i < repeats % rounds) for i in range(rounds)]


def _samples(torch, target, n: int):
    from simulator.profiler.targets import cuda_event_samples_ms
    from simulator.profiler.timing import wall_samples_ms

    if target.cuda:
        return cuda_event_samples_ms(torch, target, n, time.perf_counter)
    return wall_samples_ms(target.run, n), None


def _entry(target, host_parts, device_parts, settings, counter) -> BatchEntry:
    """The profile entry of one batch size: latency samples and quantiles, device time, energy per call."""
    import numpy as np

    from simulator.profiler.energy import energy_per_call_j
    from simulator.profiler.timing import summary_ms

    host_ms = np.concatenate(host_parts)
    extra = {"latency_summary_ms": summary_ms(host_ms), "warmup_calls": settings.warmup}
    if target.cuda:
        extra["device_ms"] = summary_ms(np.concatenate(device_parts))
    energy_j = None
    if counter is not None:
        reading = energy_per_call_j(target.run, counter, settings.energy_window_s)
        energy_j = reading.pop("energy_j")
        extra["energy_reading"] = reading
    return BatchEntry(latency=LatencyDistribution(samples_ms=host_ms), energy_j=energy_j, extra=extra)


class _threads:
    """Set PyTorch's CPU thread count for a block, then restore it."""

    def __init__(self, torch, threads):
        self.torch, self.threads, self.before = torch, threads, torch.get_num_threads()

    def __enter__(self):
        if self.threads:
            self.torch.set_num_threads(self.threads)

    def __exit__(self, *exc):
        self.torch.set_num_threads(self.before)


def energy_counter(device: str, wanted: bool):
    """The energy counter of `device` (RAPL for the CPU, NVML for a GPU) or None, and a note saying why not."""
    from simulator.profiler.energy import find_nvml, find_rapl

    if not wanted:
        return None, "not measured: energy measurement switched off"
    if device == "cpu":
        counter, reason = find_rapl()
        what = "RAPL package counters (powercap)"
    else:
        counter, reason = find_nvml(int(device.split(":")[1]) if ":" in device else 0)
        what = "NVML total-energy counter"
    return counter, (what if counter else f"not measured: {reason}")


def profile_models(request: ProfileRequest, settings: MeasureSettings = MeasureSettings(), *,
                   name: str | None = None, progress=None, update: Profile | None = None) -> Profile:
    """Measure every model x dtype x mode of `request` and return the profile (nothing is written); `update`: the
    profile the result will update (`merge_profiles`), checked before anything is measured (`check_update`)."""
    from simulator.decision import measure_decision_overhead_ms
    from simulator.models.registry import (bare_named, build_model, check_entry_names, input_shape, input_tokens,
                                           model_name, profile_model_name)
    from simulator.profiler.allocator import allocator_facts
    from simulator.profiler.energy import idle_power_w
    from simulator.profiler.microbench import cpu_peaks, peak_probes
    from simulator.profiler.environment import default_profile_name, device_facts, host_facts, software_versions
    from simulator.profiler.targets import check_device, check_mode

    torch = _torch()
    device = check_device(torch, request.device)
    for mode in request.modes:
        check_mode(mode, device)
    facts = device_facts(torch, device, request.kind, settings.threads or torch.get_num_threads())
    if update is not None:
        check_update(update, facts)
    counter, energy_note = energy_counter(device, request.energy)
    idle_w = idle_power_w(counter, settings.idle_settle_s, settings.idle_window_s) if counter else None
    forms = []
    for model in request.models:
        for i, (dtype, mode) in enumerate((d, m) for d in request.dtypes for m in request.modes):
            module, implementation = build_model(model)  # one instance per form: .to(dtype) changes it in place
            key = profile_model_name(model_name(model), dtype, mode, bare=i == 0 and bare_named(model))
            forms.append(_Form(key, module, tuple(input_shape(model)), dtype, mode,
                               source={"arch": model_name(model), "implementation": implementation},
                               input_tokens=input_tokens(model)))
    check_entry_names([f.name for f in forms], [f.source["arch"] for f in forms], "profile")
    if update is not None:
        check_merge(update, [(f.name, f.source["arch"], (f.dtype, f.mode)) for f in forms])
    probes = (lambda t: peak_probes(t, request.dtypes)) if device == "cpu" else None
    batches, best_s = _measure_forms(torch, forms, request.batch_sizes, device, settings, counter, progress, probes)
    models = {f.name: ModelEntry(batches=batches[f.name], info=f.info(settings)) for f in forms}
    if device == "cpu":
        facts["measured_peaks"] = cpu_peaks(best_s, request.dtypes, len(_round_sizes(settings.repeats,
                                                                                      settings.rounds)))
    overhead = measure_decision_overhead_ms()
    return Profile(
        name=name or default_profile_name(facts), device=facts, idle_power_w=idle_w,
        decision_overhead_ms=round(overhead["p50"], 5),
        provenance={"source": "measured", "method": METHOD, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "software": software_versions(torch), "host": host_facts(), "energy": energy_note,
                    "settings": settings.to_json(), "allocator": allocator_facts(),
                    "decision_overhead_measured": overhead,
                    "built_by": "flexsim profile (simulator.profiler)"},
        models=models,
    )


#: The device facts that a profile updating another must share with it, where both record them: what the device is
#: (two CPUs may report one name: the Zen 4 and Zen 5 hosts are both "AMD EPYC") and the threads it ran on.
UPDATE_IDENTITY = ("name", "kind", "machine", "cpu_family", "cpu_model", "threads", "multiprocessors",
                   "compute_capability", "memory_gb")


def identity_differences(one: dict, other: dict) -> list[str]:
    """The facts of `UPDATE_IDENTITY` that two device records both hold and on which they differ."""
    return [k for k in UPDATE_IDENTITY if k in one and k in other and one[k] != other[k]]


def check_update(old: Profile, device: dict) -> None:
    """FlexsimError unless a profile measured on `device` (its facts) may update `old`: the same device, as far as
    both record it (`UPDATE_IDENTITY`), measured on as many threads."""
    differ = identity_differences(old.device, device)
    require(not differ, f"cannot update profile {old.name}: it was measured on {old.device.get('name')!r} "
            f"({old.kind}), this run on {device.get('name')!r} ({device.get('kind')}); they differ in "
            + ", ".join(f"{k} ({old.device[k]!r} there, {device[k]!r} in this run)" for k in differ))


#: Profile fields that `flexsim profile` does not measure (the real runner's fits of the host: `validation.md`);
#: an update keeps those of the profile it updates.
HOST_FIELDS = ("dispatch_overhead_ms", "idle_dispatch_ms", "release_cost_ms", "wakeup", "wakeup_decay",
               "member_idle", "speed_noise")


def merge_profiles(old: Profile, new: Profile) -> Profile:
    """`new` with the models of `old` that it did not re-measure (same device required: `check_update`), and what
    it did not measure: the host's costs (`HOST_FIELDS`), the idle power where this run measured none."""
    check_update(old, new.device)
    earlier = list(old.provenance.get("earlier_runs", [])) + [
        {k: old.provenance.get(k) for k in ("date", "software", "settings", "allocator", "energy")}]
    idle_w = old.idle_power_w if new.idle_power_w is None else new.idle_power_w
    return replace(new, idle_power_w=idle_w, provenance={**new.provenance, "earlier_runs": earlier},
                   models={**old.models, **_renamed_forms(old.models, new.models)},
                   default_stage_models=old.default_stage_models, **{k: getattr(old, k) for k in HOST_FIELDS})


def _renamed_forms(old_models: dict, new_models: dict) -> dict:
    """`new_models`, where an entry takes a bare name (a Fashion-MNIST member's) that `old_models` holds in another
    dtype or mode, under its full name instead (``{model}-{dtype}-{mode}``): an update never replaces one form of a
    member by another under the name its logit cache looks up."""
    return {_merged_name(old_models, name, _form(entry)): entry for name, entry in new_models.items()}


def _merged_name(old_models: dict, name: str, form: tuple[str, str]) -> str:
    """The name under which an entry `name` of `form` (dtype, mode) is merged into `old_models`."""
    from simulator.models.registry import profile_model_name

    before = old_models.get(name)
    return profile_model_name(name, *form) if before is not None and _form(before) != form else name


def check_merge(old: Profile, entries) -> None:
    """FlexsimError where an entry of this run, ``(name, arch, (dtype, mode))``, would replace another model's entry
    of `old` (a model of yours named like another's form, e.g. ``b-bf16-eager`` beside ``b``); checked before
    anything is measured."""
    for name, arch, form in entries:
        merged = _merged_name(old.models, name, form)
        other = old.models[merged].info.get("arch") if merged in old.models else None
        require(other is None or other == arch, f"profile --update: {old.name}'s model {merged!r} is {other}'s; "
                f"this run's {arch} would replace it (rename one)")


def _form(entry: ModelEntry) -> tuple[str, str]:
    """(dtype, mode) of a profile entry, the mode as profile names spell it (``eager``, ``graph``)."""
    from simulator.costmodel.points import entry_mode

    return entry.info.get("dtype", "fp32"), entry_mode(entry.info)
