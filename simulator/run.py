"""From a configuration to a result: load, precompute, draw, simulate.

Data flow::

    RunConfig ──► LogitCache ──► StageSignals (vectorised, once)
              ──► Profile(s) ──► DeviceTables (dense, once)
              ──► policies ────► CompiledPolicy
              ──► workload ────► arrival_s, sample, draw, deadline_s, energy_budget_j  (seeded NumPy draws)
                                  └──────────────► SimulationInputs ──► engine ──► SimulationResult

Random streams: one `numpy.random.SeedSequence(seed)` spawns independent streams for arrivals, the sample
mapping and the service-time draws, so that changing one part of a configuration does not perturb the others.
"""

from __future__ import annotations

import math
import os
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

from simulator import policies as policy_lib
from simulator.config import RunConfig, check_field_names, config_fields, default_of
from simulator.dispatch import assign_devices, simulate_split
from simulator.engine_numba import simulate_numba
from simulator.engine_simpy import simulate_simpy
from simulator.errors import FlexsimError, exception_line, require
from simulator.inputs import SimulationInputs, device_tables
from simulator.logits import LogitCache, as_cache
from simulator.profiles import GRID, Profile, load_profile
from simulator.results import SimulationResult, build_result, with_sentinels
from simulator.signals import StageSignals, stage_signals
from simulator.workload import ArrivalSpec, generate_arrivals, parse_arrivals, read_trace
from simulator.speed import SpeedNoise, device_speed, horizon_bound_s

ENGINES = {"numba": simulate_numba, "simpy": simulate_simpy}
DEFAULT_REQUESTS = 10_000


def simulate(config: RunConfig | None = None, *, engine: str | None = None, **changes) -> SimulationResult:
    """Simulate `config` (default: the embedded default), with fields overridden by keyword.

    Examples
    --------
    >>> from simulator import simulate
    >>> result = simulate(requests=2000, arrivals="poisson:load=0.5")
    >>> 0.9 < result.summary.accuracy < 0.95
    True
    """
    require(config is None or isinstance(config, RunConfig),
            f"simulate: config must be a RunConfig (or None), got {type(config).__name__}; give fields by keyword")
    check_field_names(changes, "simulate")
    engine_change = {} if engine is None else {"engine": engine}     # the engine used is the one recorded
    config = RunConfig(**{**(config or RunConfig()).to_dict(), **changes, **engine_change})
    check_out(config)
    result = run_inputs(prepare(config), config.engine)
    if config.out is not None:                       # as `flexsim run --out`: the outputs, replaced as one set
        write_outputs(result, config.out, config)
    return result


def run_inputs(inputs: SimulationInputs, engine: str = "numba") -> SimulationResult:
    """Run prepared `inputs` on `engine` ("numba" or "simpy")."""
    require(isinstance(inputs, SimulationInputs), f"run_inputs: inputs must be prepared SimulationInputs "
            f"(simulator.run.prepare), got {type(inputs).__name__}")
    require(engine in ENGINES, f"invalid engine = {engine!r}: must be one of {', '.join(ENGINES)}")
    with _custom_policy_named(inputs.policy.custom):
        if inputs.assignment is not None:
            raw = simulate_split(inputs, inputs.assignment, ENGINES[engine])
        else:
            raw = ENGINES[engine](inputs)
    return build_result(raw, inputs, engine)


@contextmanager
def _custom_policy_named(custom):
    """An exception a user's policy function raises on some request's state, inside an engine, as one FlexsimError
    naming the function (it was checked on a neutral state when composed, `policies.CustomPolicy`)."""
    try:
        yield
    except (FlexsimError, MemoryError):
        raise
    except Exception as exc:
        if custom is None:
            raise
        name = getattr(getattr(custom, "py_func", None), "__name__", repr(custom))
        raise FlexsimError(f"custom policy {name} failed during the simulation: {exception_line(exc, 200)}") from None


def prepare(config: RunConfig, cache: LogitCache | None = None, *, signals=None) -> SimulationInputs:
    """Everything the engines need for `config`, validated, precomputed and drawn; `cache`: the logit cache (or its
    name or path) where not `config.logits`; `signals`: the `simulator.signals.stage_signals` of that cache with
    `config`'s members, combiner and signal, where already computed (a sweep reuses them across its runs)."""
    require(isinstance(config, RunConfig), f"prepare: config must be a RunConfig, got {type(config).__name__}")
    cache = as_cache(config.logits if cache is None else cache)
    members = check_members(config.members, cache)
    n_stages = len(members)
    _check_default_thresholds(config, n_stages)
    spec = parse_arrivals(config.arrivals)
    trace = read_trace(spec.path) if spec.kind == "trace" else None
    compiled = policy_lib.compose(policy_lib.from_config(config, _trace_columns(trace)), n_stages)
    profiles = [load_profile(p) for p in config.profile]
    profiles = profiles * config.devices if len(profiles) == 1 else profiles
    devices = tuple(device_tables(p, stage_models(config, cache, p), config.batch_size, compiled.deadline_quantile)
                    for p in profiles)
    if config.speed_noise is not None:
        noise = SpeedNoise(*config.speed_noise)
        noise = noise if noise.has_variation else None
        devices = tuple(replace(d, speed_noise=noise) for d in devices)
    _check_energy(config, devices)
    stages = (stage_signals(cache.logits, cache.labels, members, config.combiner, config.signal) if signals is None
              else _checked_signals(signals, n_stages, cache.n_samples))
    cost_scale = (cache.cost_scale[list(members)] if cache.cost_scale is not None and config.use_cost_scale
                  else np.ones(stages.signal.shape))
    arrivals_rng, sample_rng, draw_rng, dispatch_rng, speed_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(5))
    n = _n_requests(config, trace)
    check_memory(n, n_stages)
    require(not spec.closed or spec.clients <= n,
            f"invalid arrivals = {config.arrivals!r}: {spec.clients} clients for {n} requests (at most one each)")
    if spec.load is not None:
        spec = spec.resolve(service_per_capacity_s(stages, cost_scale, devices, compiled))
    arrival_s = _arrivals(spec, trace, n, arrivals_rng)
    return SimulationInputs(
        stages=stages, cost_scale=np.ascontiguousarray(cost_scale, dtype=np.float64), devices=devices,
        arrival_s=arrival_s, clients=spec.clients if spec.closed else 0,
        sample=_samples(config, trace, n, cache.n_samples, sample_rng),
        draw=draw_rng.integers(0, GRID, size=(n, n_stages), dtype=np.uint16),
        deadline_s=_per_request(trace, "deadline_ms", config.deadline_ms, n, _trace_name(config)) / 1000.0,
        energy_budget_j=_per_request(trace, "energy_budget_j", config.energy_budget_j, n, _trace_name(config)),
        max_batch=config.batch_size, edf=config.queue == "edf", policy=compiled,
        record_batches=config.record_batches, assignment=_assignment(config, spec, n, dispatch_rng),
        speed=device_speed(devices, horizon_bound_s(arrival_s, n, devices), speed_rng), members=tuple(members),
    )


def _assignment(config: RunConfig, spec: ArrivalSpec, n: int, rng: np.random.Generator):
    require(config.dispatch == "shared" or not spec.closed,
            f"invalid dispatch = {config.dispatch!r}: per-device queues need open-loop arrivals, not {config.arrivals}")
    return assign_devices(config.dispatch, n, config.devices, rng)


def check_members(members, cache: LogitCache) -> tuple:
    """`members` as a tuple; FlexsimError naming the first that the cache does not hold."""
    default = " (the default members, the shipped ensemble's: give --members)" if \
        tuple(members) == _default("members") else ""
    for i, m in enumerate(members):
        require(0 <= m < cache.n_members, f"invalid members[{i}] = {m}: the cache {cache.source} has members "
                f"0..{cache.n_members - 1}{default}")
    return tuple(members)


def _default(name: str):
    """The default value of `RunConfig` field `name`."""
    return default_of(next(f for f in config_fields() if f.name == name))


def _check_default_thresholds(config: RunConfig, n_stages: int) -> None:
    """FlexsimError where the threshold policy would read the default thresholds (the shipped ensemble's five) for
    another number of stages: said as the default, which the user did not give."""
    default = _default("thresholds")
    require("threshold" not in config.policy or tuple(config.thresholds) != default or len(default) == n_stages - 1,
            f"invalid thresholds: the default {','.join(map(str, default))} (for the shipped 6-member ensemble) has "
            f"{len(default)} values for {n_stages} stages: give --thresholds with {n_stages - 1}")


def stage_models(config: RunConfig, cache: LogitCache, profile: Profile) -> tuple[str, ...]:
    """The profile model of each stage: the config's, else the cache's member names, else (where the profile has
    none of those) the profile's default_stage_models; FlexsimError where the profile has some of the cache's
    member models but not all."""
    n = len(config.members)
    if config.models is not None:
        require(len(config.models) in (1, n),
                f"invalid models: {len(config.models)} names given for {n} stages (give one, or one per stage)")
        return tuple(config.models) * n if len(config.models) == 1 else tuple(config.models)
    missing = ()
    if cache.model_names is not None:
        names = tuple(cache.model_names[m] for m in config.members)
        missing = tuple(dict.fromkeys(name for name in names if name not in profile.models))
        if not missing:
            return names
        # stand-ins replace the cache's models where the profile measured none of them (another ensemble's
        # profile, as the shipped h100 is for the Fashion-MNIST members); a profile with some of them lacks the
        # others by mistake (a typo, a model not measured), which stand-ins would hide
        found = sorted(set(names) - set(missing))
        require(not found, f"profile {profile.name} has the cache's member model(s) {', '.join(found)} but not "
                f"{', '.join(missing)}: measure or derive them too, or choose every stage's model with --models")
    defaults = profile.default_stage_models
    lacks = f"it has no {', '.join(missing)} (the cache's member models) and " if missing else ""
    require(defaults is not None and len(defaults) >= n,
            f"profile {profile.name}: cannot tell which model each stage uses: {lacks}no default_stage_models for "
            f"{n} stages (give --models; the profile has {', '.join(sorted(profile.models))})")
    return tuple(defaults[:n])


def stage_model_note(inputs: SimulationInputs, cache: LogitCache, config: RunConfig) -> str:
    """One line naming the model that costs each stage on each device, and saying where they stand in for the
    cache's member models: the profile's `default_stage_models`, or the models the config chose."""
    named = None if cache.model_names is None else tuple(cache.model_names[m] for m in config.members)
    whose = "the profile's stand-ins" if config.models is None else "chosen with --models"
    parts = []
    for profile, models in dict.fromkeys((d.profile, d.models) for d in inputs.devices):
        stand_in = named is not None and models != named
        parts.append(f"{','.join(models)} on {profile}"
                     + (f" ({whose} for the cache's {','.join(dict.fromkeys(named))})" if stand_in else ""))
    return "stage models: " + "; ".join(parts)


def _check_energy(config: RunConfig, devices) -> None:
    """Energy-aware policies need energy figures for every stage model on every device."""
    for name in (p for p in config.policy if p in ("energy", "power-cap")):
        for dev in devices:
            lacking = sorted({m for m, row in zip(dev.models, dev.energy_j) if not np.isfinite(row).all()})
            require(not lacking, f"policy {name} needs energy figures, but profile {dev.profile} has none for "
                    f"{'model' if len(lacking) == 1 else 'models'} {', '.join(lacking)} (needed at batch size "
                    f"{'1' if dev.energy_j.shape[1] == 1 else f'1 to {dev.energy_j.shape[1]}'})")
            require(np.isfinite(dev.idle_power_w), f"policy {name} needs energy figures, but profile {dev.profile} "
                    "has no idle power (idle_power_w)")


#: Bytes a simulated request takes, besides its stages (arrival, sample, deadline and budget, the outputs and the
#: engines' working arrays), and per stage (its latency draw); a little above the measured peak (`flexsim run` of
#: 1e6 and 1e7 requests, 6 stages: 125 bytes per request more, 2026-12-06).
BYTES_PER_REQUEST, BYTES_PER_STAGE = 100, 8


def _checked_signals(signals, n_stages: int, n_samples: int) -> StageSignals:
    """`signals` given to `prepare`, checked: StageSignals of `n_stages` x `n_samples`, finite signals, integer
    predictions and boolean correctness of that shape."""
    shape = (n_stages, n_samples)
    require(isinstance(signals, StageSignals) and all(isinstance(a, np.ndarray) and a.shape == shape for a in
                                                      (signals.signal, signals.prediction, signals.correct)),
            f"prepare: signals must be the StageSignals of {n_stages} stages and {n_samples} samples (each array of "
            f"shape {shape})")
    require(np.issubdtype(signals.signal.dtype, np.floating) and bool(np.isfinite(signals.signal).all()),
            "prepare: signals.signal must be finite floats")
    require(np.issubdtype(signals.prediction.dtype, np.integer) and signals.correct.dtype == bool,
            "prepare: signals.prediction must be integers and signals.correct booleans")
    return signals


def check_memory(n_requests: int, n_stages: int, what: str = "requests") -> None:
    """Refuse a run whose arrays would not fit in this machine's memory, before allocating them (`what`: the
    setting that asked for `n_requests`, named in the error)."""
    check_bytes(n_requests * (BYTES_PER_REQUEST + BYTES_PER_STAGE * n_stages), f"invalid {what} = {n_requests}")


def check_bytes(need: float, what: str) -> None:
    """FlexsimError, beginning with `what`, where `need` bytes of arrays would not fit in this machine's memory."""
    have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else None
    require(have is None or need <= 0.8 * have, f"{what}: about {need / 1e9:.3g} GB of arrays, more than this "
            f"machine's {have / 1e9 if have else 0:.3g} GB of memory can hold")


def _n_requests(config: RunConfig, trace) -> int:
    if trace is None:
        return config.requests or DEFAULT_REQUESTS
    n = config.requests or len(trace.arrival_s)
    require(n <= len(trace.arrival_s), f"invalid requests = {n}: the trace has only {len(trace.arrival_s)} arrivals")
    return n


def _arrivals(spec: ArrivalSpec, trace, n: int, rng: np.random.Generator) -> np.ndarray:
    """Arrival times (s), kept followed by +inf sentinels so that the engines use them in place."""
    if spec.closed:
        return np.zeros(0)
    return with_sentinels(trace.arrival_s[:n] if trace is not None else generate_arrivals(spec, n, rng))


def _samples(config: RunConfig, trace, n: int, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    if trace is not None and trace.sample is not None:
        sample = trace.sample[:n]
        bad = np.flatnonzero(sample >= n_samples)
        if bad.size:
            raise FlexsimError(f"trace {_trace_name(config)}: sample row {bad[0] + 1} = {sample[bad[0]]} is outside "
                               f"the cache's {n_samples} samples")
        return sample.astype(np.int32)
    if config.sample_order == "random":
        return rng.integers(0, n_samples, size=n, dtype=np.int32)
    return (np.arange(n, dtype=np.int64) % n_samples).astype(np.int32)


def _trace_columns(trace) -> tuple[str, ...]:
    """The per-request columns (deadline_ms, energy_budget_j) that `trace` (None: no trace) gives."""
    return tuple(c for c in ("deadline_ms", "energy_budget_j") if trace is not None and getattr(trace, c) is not None)


def _trace_name(config: RunConfig) -> str:
    """The trace file of `config`'s arrivals, as given (for error messages)."""
    return config.arrivals[len("trace:"):]


def _per_request(trace, column: str, default: float, n: int, name: str) -> np.ndarray:
    """`column` of `trace` (its first `n` rows), or `default` alone where the trace (file `name`) has none."""
    values = getattr(trace, column) if trace is not None else None
    if values is None:
        return np.array([float(default)])
    values = np.asarray(values[:n], dtype=np.float64)
    bad = np.flatnonzero(~(values > 0))
    if bad.size:
        raise FlexsimError(f"trace {name}: {column} row {bad[0] + 1} = {values[bad[0]]} must be > 0")
    return values


def service_per_capacity_s(stages, cost_scale: np.ndarray, devices, compiled) -> float:
    """Seconds per request of the devices together at batch 1 (`mean_service_s` of each): ``1 / sum(1 / mean)``, so
    that ``load=X`` offers X of their combined capacity whatever their order (with devices of different speeds a
    dispatch rule may still load them unequally); ``mean / devices`` where all are alike, as before."""
    means = np.array([mean_service_s(stages, cost_scale, devices, compiled, d) for d in range(len(devices))])
    return float(means[0] / means.size if np.all(means == means[0]) else 1.0 / np.sum(1.0 / means))


def mean_service_s(stages, cost_scale: np.ndarray, devices, compiled, device: int = 0) -> float:
    """Mean busy time per request at batch 1 on device `device`, under the policy's timing-free rules.

    Counts the stages that threshold, static-k, oracle and the first load level would run (deadline, energy
    and custom rules are ignored: this is the load a ``load=X`` rate refers to), plus the dispatch overhead;
    the wake-up slowdown after idle, the idle dispatch, the release cost and members gone cold are not counted
    (they depend on the load itself).
    """
    params = compiled.params
    n_stages, n_samples = stages.signal.shape
    stop = np.zeros((n_stages, n_samples), dtype=bool)
    for k in range(n_stages):
        stop[k] = (k + 1 >= min(n_stages, params.max_stages[0])) | (stages.signal[k] >= params.thresholds[0, k])
        if params.oracle:
            stop[k] |= stages.correct[k]
    stages_run = np.argmax(stop, axis=0) + 1
    dev = devices[device]
    mean_latency = dev.latency_s[:, 0, :].mean(axis=1)
    per_stage = mean_latency[:, None] * cost_scale + dev.overhead_s[:, None]
    ran = np.arange(n_stages)[:, None] < stages_run[None, :]
    return float((per_stage * ran).sum(axis=0).mean()) + dev.dispatch_overhead_s


#: The files `write_outputs` writes (or removes: a batches.csv it does not record).
OUTPUT_FILES = ("requests.csv", "batches.csv", "summary.json")


def field_input_paths(name: str, value) -> list[str]:
    """The paths that configuration field `name` at `value` names as files to read: the logit cache, profiles, the
    arrival trace and the custom policy's file (names of built-in caches and shipped profiles included: the caller
    keeps the paths that exist)."""
    from simulator.usercode import is_file, split_spec

    if name == "logits" and isinstance(value, str):
        return [value]
    if name == "profile" and isinstance(value, (tuple, list)):
        return [v for v in value if isinstance(v, str)]
    if name == "arrivals" and isinstance(value, str) and value.startswith("trace:"):
        return [value[len("trace:"):]]
    parts = split_spec(value) if name == "custom_policy" else None
    return [parts[0]] if parts and is_file(parts[0]) else []


def input_paths(config: RunConfig) -> list[str]:
    """`field_input_paths` of every field of `config`."""
    return [path for name, value in config.to_dict().items() for path in field_input_paths(name, value)]


def check_out(config: RunConfig, also_read=()) -> None:
    """Before a run: `config.out` (where set) can be written, and writing it would replace none of the files the run
    reads (`input_paths`, and `also_read`: a configuration file)."""
    from simulator.io import check_output_dir, check_spares_inputs

    if config.out is not None:
        check_output_dir(config.out)
        check_spares_inputs(config.out, OUTPUT_FILES, [*also_read, *input_paths(config)])


def write_outputs(result: SimulationResult, out_dir: str | Path, config: RunConfig,
                  stage_models_used: dict | None = None) -> None:
    """Write requests.csv, batches.csv (if recorded) and summary.json into `out_dir` as one set.

    ``stage_models_used`` (profile name -> the model of each stage), where given, goes into summary.json.

    Every file is written under a temporary name first and all are renamed once all are written, so that a
    failure leaves the folder as it was; a batches.csv of an earlier run that this run does not record
    (``record_batches = false``) is removed, so that the folder never mixes two runs.
    """
    from simulator.io import atomic_paths, json_text, naming, output_dir

    summary = {"summary": result.summary.to_dict(), "engine": result.engine, "config": jsonable(config.to_dict())}
    if stage_models_used is not None:
        summary["stage_models"] = stage_models_used
    writers = {"requests.csv": result.requests.write_csv,
               "summary.json": lambda path: Path(path).write_text(json_text(summary))}
    if config.record_batches:
        writers["batches.csv"] = result.batches.write_csv
    stale = [] if config.record_batches else ["batches.csv"]
    with output_dir(out_dir) as out_dir, atomic_paths([out_dir / name for name in writers],
                                                      [out_dir / name for name in stale]) as tmps:
        for tmp, (name, write) in zip(tmps, writers.items()):
            with naming(out_dir / name):
                write(tmp)


def jsonable(obj):
    """`obj` (dicts, lists, tuples, numbers) with non-finite floats as strings ("inf") and a compiled function (a
    configuration's ``custom_policy`` given as the function itself) as its ``module:qualname``, for JSON."""
    if policy_lib.is_compiled_function(obj):
        return policy_lib.function_text(obj)
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    return obj


__all__ = ["simulate", "prepare", "run_inputs", "write_outputs", "mean_service_s", "FlexsimError"]
