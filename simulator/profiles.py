"""Device profiles: measured (or derived) latency distributions and energies of models on a device.

A profile is a schema-versioned JSON file (``docs/profile-format.md``). In memory it is a `Profile`;
the simulator turns the entries it needs into dense tables (`latency_table_ms`) once, before simulating.

Latency distributions come in two forms:

- ``samples``: raw measured latencies (ms); the distribution is their empirical distribution.
- ``quantiles``: ``{probability: ms}`` pairs (e.g. p10, p50, p90, p99); the inverse CDF is piecewise linear
  through them and two end points at probability 0 and 1, on the lines through the nearest two points (an end
  point below 0 is raised to 0).

Every distribution is sampled through its inverse CDF evaluated on a fixed grid of `GRID` probabilities
``(g + 0.5) / GRID``: a draw is an index ``g`` in ``[0, GRID)``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from simulator.errors import FlexsimError, require
from simulator.speed import SpeedNoise, parse_speed_noise

SCHEMA_VERSION = 1
KINDS = ("datacenter", "embedded", "cpu")
SOURCES = ("measured", "derived")
GRID = 1024
GRID_PROBS = (np.arange(GRID) + 0.5) / GRID

#: Folder of the shipped profiles (override with the environment variable FLEXSIM_PROFILES).
PROFILES_DIR = Path(os.environ.get("FLEXSIM_PROFILES") or Path(__file__).resolve().parent.parent / "profiles")


@dataclass(frozen=True, eq=False)
class LatencyDistribution:
    """A latency distribution in milliseconds: raw samples or quantiles."""

    samples_ms: np.ndarray | None = None
    quantile_probs: np.ndarray | None = None
    quantile_ms: np.ndarray | None = None
    mean_ms: float | None = None

    def icdf_ms(self, probs: np.ndarray = GRID_PROBS) -> np.ndarray:
        """Inverse CDF (ms) at probabilities `probs`."""
        if self.samples_ms is not None:
            return np.quantile(self.samples_ms, probs, method="inverted_cdf")
        p = np.concatenate([[0.0], self.quantile_probs, [1.0]])
        v = np.concatenate([[_extend(self.quantile_probs[:2], self.quantile_ms[:2], 0.0)],
                            self.quantile_ms,
                            [_extend(self.quantile_probs[-2:], self.quantile_ms[-2:], 1.0)]])
        return np.interp(probs, p, np.maximum.accumulate(np.maximum(v, 0.0)))

    def to_json(self) -> dict:
        if self.samples_ms is not None:
            return {"samples": [float(x) for x in self.samples_ms]}
        out = {"quantiles": {_pkey(p): float(v) for p, v in zip(self.quantile_probs, self.quantile_ms)}}
        if self.mean_ms is not None:
            out["mean"] = float(self.mean_ms)
        return out


@dataclass(frozen=True, eq=False)
class BlendedLatency(LatencyDistribution):
    """The linear blend, quantile by quantile, of two distributions: ``(1 - weight) * low + weight * high``
    (a batch size between two measured ones). `samples_ms` holds the blend on the 1024-point grid, which the engines
    draw from; `icdf_ms` blends at any probability exactly (the deadline estimate's quantile)."""

    low: LatencyDistribution | None = None
    high: LatencyDistribution | None = None
    weight: float = 0.0

    def icdf_ms(self, probs: np.ndarray = GRID_PROBS) -> np.ndarray:
        return (1 - self.weight) * self.low.icdf_ms(probs) + self.weight * self.high.icdf_ms(probs)


def _extend(probs, values, at):
    """Linear extension of the line through two (prob, value) points to probability `at`."""
    if len(probs) < 2 or probs[1] == probs[0]:
        return values[0] if at < probs[0] else values[-1]
    slope = (values[1] - values[0]) / (probs[1] - probs[0])
    return values[0] + slope * (at - probs[0])


def _pkey(p: float) -> str:
    return f"{p:.6g}"


@dataclass(frozen=True, eq=False)
class BatchEntry:
    """Cost of one call of a model at one batch size."""

    latency: LatencyDistribution
    energy_j: float | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class ModelEntry:
    """A model's costs on the device, per batch size.

    `decision_overhead_ms`, where given, replaces the profile's decision overhead after this model's stages (the
    host's decision can take longer after a heavy stage).
    """

    batches: dict[int, BatchEntry]
    info: dict = field(default_factory=dict)
    decision_overhead_ms: float | None = None


@dataclass(frozen=True, kw_only=True, eq=False)
class Profile:
    """A device profile.

    Attributes
    ----------
    name : str
    device : dict
        ``name`` and ``kind`` (datacenter, embedded, cpu) and any further facts.
    idle_power_w : float or None
        Power while the device waits; None where not measured.
    decision_overhead_ms : float
        Host time per stage to combine, score and decide (softmax + margin + compare).
    provenance : dict
        ``source`` (measured or derived), ``method``, ``date``, ``software``, ...
    models : dict of str to ModelEntry
    default_stage_models : tuple of str, or None
        Model used for each stage position when neither the config nor the cache names one.
    dispatch_overhead_ms : float
        Host time per batch taken off the queue, before its first stage (default 0).
    idle_dispatch_ms : float or None
        The same for a batch dispatched to an idle device (the server's wake-up: a worker blocked on a queue is
        woken by the thread that puts the request there). None (default): ``dispatch_overhead_ms``.
    release_cost_ms : float
        Open loop: how much longer a stage run on a busy device takes per request that arrives while it runs (a
        dispatcher thread in the worker's process wakes to release it). Default 0.
    wakeup : (idle_ms, factor) or None
        Slower first stage after idle: the first stage of a batch that starts after the device idled for ``g`` ms
        takes ``factor(g)`` times as long, ``factor`` piecewise linear through (0, 1) and the given points and
        constant beyond the last. None: no slowdown.
    wakeup_decay : float
        How that slowdown fades over the busy period (JSON ``wakeup.decay``, in [0, 1)): its stage j (0 = the
        first) takes ``1 + (factor(g) - 1) * decay**j`` times as long. 0 (default): only the first stage is slower.
    member_idle : (idle_ms, factor) or None
        Slower stage when its member has not run for a while (its weights gone cold), whatever the device did
        meanwhile: stage k starting ``t`` ms after stage k last ended on the device takes ``factor(t)`` times its
        profiled latency (and energy), ``factor`` piecewise linear through (0, 1) and the points, constant beyond
        the last. None: no slowdown.
    speed_noise : SpeedNoise or None
        The host's speed over time (`simulator.speed`): a slowly varying factor on every stage's duration.
        None: stage durations are drawn independently.
    """

    name: str
    device: dict
    idle_power_w: float | None
    decision_overhead_ms: float
    provenance: dict
    models: dict[str, ModelEntry]
    default_stage_models: tuple[str, ...] | None = None
    dispatch_overhead_ms: float = 0.0
    idle_dispatch_ms: float | None = None
    release_cost_ms: float = 0.0
    wakeup: tuple | None = None
    wakeup_decay: float = 0.0
    member_idle: tuple | None = None
    speed_noise: SpeedNoise | None = None
    origin: str = "<memory>"

    @property
    def kind(self) -> str:
        return self.device["kind"]

    @property
    def has_energy(self) -> bool:
        """True when idle power and every entry's energy are known."""
        return self.idle_power_w is not None and all(
            b.energy_j is not None for m in self.models.values() for b in m.batches.values())

    def decision_overhead_for(self, model: str) -> float:
        """Decision overhead (ms) after a stage of `model`: the model's own where given, else the profile's."""
        own = self.models[model].decision_overhead_ms if model in self.models else None
        return self.decision_overhead_ms if own is None else own

    def entry(self, model: str, batch: int) -> BatchEntry:
        """The entry of `model` at `batch`, interpolated between measured batch sizes where needed."""
        require(model in self.models, f"profile {self.name}: has no model {model!r} "
                f"(it has {', '.join(sorted(self.models))})")
        batches = self.models[model].batches
        if batch in batches:
            return batches[batch]
        return _interpolate(self.name, model, batches, batch)

    def to_json(self) -> dict:
        out = {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "device": dict(self.device),
            "idle_power_w": self.idle_power_w,
            "decision_overhead_ms": self.decision_overhead_ms,
            "provenance": dict(self.provenance),
        }
        if self.default_stage_models is not None:
            out["default_stage_models"] = list(self.default_stage_models)
        if self.dispatch_overhead_ms:
            out["dispatch_overhead_ms"] = self.dispatch_overhead_ms
        if self.idle_dispatch_ms is not None:
            out["idle_dispatch_ms"] = self.idle_dispatch_ms
        if self.release_cost_ms:
            out["release_cost_ms"] = self.release_cost_ms
        if self.wakeup is not None:
            out["wakeup"] = _idle_table_json(self.wakeup)
            if self.wakeup_decay:
                out["wakeup"]["decay"] = self.wakeup_decay
        if self.member_idle is not None:
            out["member_idle"] = _idle_table_json(self.member_idle)
        if self.speed_noise is not None:
            out["speed_noise"] = self.speed_noise.to_json()
        out["models"] = {name: _model_json(m) for name, m in self.models.items()}
        return out


def _idle_table_json(table: tuple) -> dict:
    """An ``(idle_ms, factor)`` table (``wakeup``, ``member_idle``) as its JSON object (`_parse_idle_table`)."""
    return {"idle_ms": [float(x) for x in table[0]], "factor": [float(f) for f in table[1]]}


def _model_json(model: ModelEntry) -> dict:
    batches = {}
    for b in sorted(model.batches):
        e = model.batches[b]
        batches[str(b)] = {"latency_ms": e.latency.to_json(), "energy_j": e.energy_j, **e.extra}
    own = {} if model.decision_overhead_ms is None else {"decision_overhead_ms": model.decision_overhead_ms}
    return {**model.info, **own, "batches": batches}


def _interpolate(profile: str, model: str, batches: dict[int, BatchEntry], batch: int) -> BatchEntry:
    """Interpolate linearly (per quantile) between the nearest measured batch sizes around `batch`.

    Allowed because latency and energy are non-decreasing in batch size on every device we measured;
    never extrapolated.
    """
    lower = [b for b in batches if b < batch]
    upper = [b for b in batches if b > batch]
    require(batch >= 1 and lower and upper,
            f"profile {profile}: model {model!r} has no batch size {batch} "
            f"(measured: {', '.join(map(str, sorted(batches)))}; only sizes between two measured ones are interpolated)")
    lo, hi = max(lower), min(upper)
    w = (batch - lo) / (hi - lo)
    low, high = batches[lo].latency, batches[hi].latency
    blend = BlendedLatency(low=low, high=high, weight=w)
    e_lo, e_hi = batches[lo].energy_j, batches[hi].energy_j
    energy = None if e_lo is None or e_hi is None else (1 - w) * e_lo + w * e_hi
    return BatchEntry(latency=replace(blend, samples_ms=blend.icdf_ms()), energy_j=energy,
                      extra={"interpolated_from": [lo, hi]})


# ----------------------------------------------------------------------------------------------- parsing

def parse_profile(obj, origin: str = "<memory>") -> Profile:
    """Build a `Profile` from parsed JSON, raising FlexsimError that names the faulty field."""
    where = f"profile {origin}"
    require(isinstance(obj, dict), f"{where}: the top level must be a JSON object")
    version = obj.get("schema_version")
    require(type(version) is int and version == SCHEMA_VERSION,
            f"{where}: schema_version = {version!r} is not supported (this flexsim reads version {SCHEMA_VERSION})")
    for key in ("name", "device", "decision_overhead_ms", "provenance", "models"):
        require(key in obj, f"{where}: missing field {key!r}")
    name = obj["name"]
    require(isinstance(name, str) and name, f"{where}: name must be a non-empty string")
    device = obj["device"]
    require(isinstance(device, dict) and device.get("kind") in KINDS,
            f"{where}: device.kind = {device.get('kind') if isinstance(device, dict) else device!r} "
            f"must be one of {', '.join(KINDS)}")
    threads = device.get("threads", 1)
    require(type(threads) is int and 1 <= threads <= MAX_THREADS,
            f"{where}: device.threads = {threads!r:.40} must be an integer from 1 to {MAX_THREADS}")
    provenance = obj["provenance"]
    require(isinstance(provenance, dict) and provenance.get("source") in SOURCES,
            f"{where}: provenance.source must be one of {', '.join(SOURCES)}")
    require(isinstance(provenance.get("derived_from", {}), dict),
            f"{where}: provenance.derived_from must be an object (the reference profile and device table entry)")
    idle = obj.get("idle_power_w")
    require(idle is None or (_nonneg(idle) and idle <= MAX_POWER_W),
            f"{where}: idle_power_w = {idle!r} must be a number from 0 to {MAX_POWER_W:g} or null")
    overhead = obj["decision_overhead_ms"]
    require(_nonneg(overhead) and overhead <= MAX_LATENCY_MS,
            f"{where}: decision_overhead_ms = {overhead!r} must be a number from 0 to {MAX_LATENCY_MS:g}")
    models = obj["models"]
    require(isinstance(models, dict) and models, f"{where}: models must be a non-empty object")
    defaults = obj.get("default_stage_models")
    require(defaults is None or (isinstance(defaults, list)
                                 and all(isinstance(d, str) and d in models for d in defaults)),
            f"{where}: default_stage_models must list models of this profile")
    dispatch = obj.get("dispatch_overhead_ms", 0.0)
    require(_nonneg(dispatch) and dispatch <= MAX_LATENCY_MS,
            f"{where}: dispatch_overhead_ms = {dispatch!r} must be a number from 0 to {MAX_LATENCY_MS:g}")
    idle_dispatch = obj.get("idle_dispatch_ms")
    require(idle_dispatch is None or (_nonneg(idle_dispatch) and idle_dispatch <= MAX_LATENCY_MS),
            f"{where}: idle_dispatch_ms = {idle_dispatch!r} must be a number from 0 to {MAX_LATENCY_MS:g} or null")
    release = obj.get("release_cost_ms", 0.0)
    require(_nonneg(release) and release <= MAX_LATENCY_MS,
            f"{where}: release_cost_ms = {release!r} must be a number from 0 to {MAX_LATENCY_MS:g}")
    return Profile(
        name=name, device=device, idle_power_w=None if idle is None else float(idle),
        decision_overhead_ms=float(overhead), provenance=provenance,
        models={m: _parse_model(spec, f"{where}: models.{m}") for m, spec in models.items()},
        default_stage_models=None if defaults is None else tuple(defaults), dispatch_overhead_ms=float(dispatch),
        idle_dispatch_ms=None if idle_dispatch is None else float(idle_dispatch), release_cost_ms=float(release),
        wakeup=_parse_idle_table(obj.get("wakeup"), where, "wakeup"),
        wakeup_decay=_parse_decay(obj.get("wakeup"), where),
        member_idle=_parse_idle_table(obj.get("member_idle"), where, "member_idle"),
        speed_noise=parse_speed_noise(obj.get("speed_noise"), where), origin=origin,
    )


def _parse_idle_table(spec, where: str, field: str):
    """``{"idle_ms": [...], "factor": [...]}`` (the `field` ``wakeup`` or ``member_idle``): idle times > 0
    increasing, factors > 0, as many of each."""
    if spec is None:
        return None
    require(isinstance(spec, dict) and isinstance(spec.get("idle_ms"), list) and isinstance(spec.get("factor"), list),
            f"{where}: {field} must be an object with lists 'idle_ms' and 'factor'")
    idle, factor = spec["idle_ms"], spec["factor"]
    require(len(idle) == len(factor) >= 1, f"{where}: {field}.idle_ms and {field}.factor must have the same, "
            f"non-zero length (got {len(idle)} and {len(factor)})")
    for i, (x, f) in enumerate(zip(idle, factor)):
        require(_positive(x), f"{where}: {field}.idle_ms[{i}] = {x!r} must be a finite number > 0")
        require(_positive(f) and f <= MAX_WAKEUP_FACTOR,
                f"{where}: {field}.factor[{i}] = {f!r} must be a number > 0 and <= {MAX_WAKEUP_FACTOR:g}")
    require(all(b > a for a, b in zip(idle, idle[1:])), f"{where}: {field}.idle_ms must increase")
    return tuple(float(x) for x in idle), tuple(float(f) for f in factor)


def _parse_decay(spec, where: str) -> float:
    """The optional ``wakeup.decay``: a number in [0, 1) (0 when absent)."""
    decay = spec.get("decay", 0.0) if isinstance(spec, dict) else 0.0
    require(_nonneg(decay) and decay < 1, f"{where}: wakeup.decay = {decay!r} must be a number in [0, 1)")
    return float(decay)


def _nonneg(x) -> bool:
    """A finite number >= 0 that a float holds (a 400-digit JSON integer does not)."""
    return (isinstance(x, (int, float)) and not isinstance(x, bool) and abs(x) < 1e300 and math.isfinite(x)
            and x >= 0)


def _positive(x) -> bool:
    return _nonneg(x) and x > 0


#: Longest latency (ms) a profile may give one call: ~11.6 days, beyond any inference call, and far enough below
#: the float range that sums over millions of requests stay finite.
MAX_LATENCY_MS = 1e9
#: Largest batch size a profile may give (far beyond any served batch: a run's batch_size is at most 4096).
MAX_PROFILE_BATCH = 1 << 20
#: Most threads a profile's device may record (far beyond any host's cores).
MAX_THREADS = 1 << 16
#: Largest wake-up factor (a first call after idle a thousand times as slow as a warm one).
MAX_WAKEUP_FACTOR = 1e3
#: Largest energy of one call (J) and idle power (W): a megawatt for ~17 minutes, and a megawatt rack.
MAX_ENERGY_J, MAX_POWER_W = 1e9, 1e6


def _latency(x) -> bool:
    return _positive(x) and x <= MAX_LATENCY_MS


def _parse_model(spec, where: str) -> ModelEntry:
    require(isinstance(spec, dict) and isinstance(spec.get("batches"), dict) and spec["batches"],
            f"{where}: must have a non-empty object 'batches'")
    batches, keys = {}, {}
    for key, entry in spec["batches"].items():
        require(isinstance(key, str) and key.isascii() and key.isdigit() and len(key) <= 9
                and 1 <= int(key) <= MAX_PROFILE_BATCH,
                f"{where}.batches: batch size {key!r:.40} must be an integer from 1 to {MAX_PROFILE_BATCH}")
        require(int(key) not in keys, f"{where}.batches: batch size {int(key)} appears twice "
                f"({keys.get(int(key))!r} and {key!r})")
        keys[int(key)] = key
        batches[int(key)] = _parse_batch(entry, f"{where}.batches.{key}")
    own = spec.get("decision_overhead_ms")
    require(own is None or (_nonneg(own) and own <= MAX_LATENCY_MS),
            f"{where}.decision_overhead_ms = {own!r} must be a number from 0 to {MAX_LATENCY_MS:g}")
    info = {k: v for k, v in spec.items() if k not in ("batches", "decision_overhead_ms")}
    return ModelEntry(batches=batches, info=info, decision_overhead_ms=None if own is None else float(own))


def _parse_batch(entry, where: str) -> BatchEntry:
    require(isinstance(entry, dict) and "latency_ms" in entry, f"{where}: missing field 'latency_ms'")
    energy = entry.get("energy_j")
    require(energy is None or (_nonneg(energy) and energy <= MAX_ENERGY_J),
            f"{where}.energy_j = {energy!r} must be a number from 0 to {MAX_ENERGY_J:g} or null")
    extra = {k: v for k, v in entry.items() if k not in ("latency_ms", "energy_j")}
    _check_summary(extra.get("latency_summary_ms"), f"{where}.latency_summary_ms")
    return BatchEntry(latency=_parse_latency(entry["latency_ms"], f"{where}.latency_ms"),
                      energy_j=None if energy is None else float(energy), extra=extra)


def _check_summary(summary, where: str) -> None:
    """The profiler's summary of a batch's samples (``p10``, ``p50``, ... and ``n``; optional, not simulated, but
    copied on by ``flexsim profile --update``): every value a number > 0 and within range."""
    if summary is None:
        return
    require(isinstance(summary, dict), f"{where} must be an object")
    for key, value in summary.items():
        fits = _positive(value) if key == "n" else _latency(value)
        require(fits, f"{where}.{key} = {value!r} must be a number > 0" + ("" if key == "n" else
                                                                           f" and <= {MAX_LATENCY_MS:g}"))


def _parse_latency(spec, where: str) -> LatencyDistribution:
    require(isinstance(spec, dict) and ("samples" in spec or "quantiles" in spec),
            f"{where}: must have 'samples' or 'quantiles'")
    if "samples" in spec:
        samples = spec["samples"]
        require(isinstance(samples, list) and samples, f"{where}.samples must be a non-empty list")
        for i, x in enumerate(samples):
            require(_latency(x), f"{where}.samples[{i}] = {x!r} must be a number > 0 and <= {MAX_LATENCY_MS:g}")
        return LatencyDistribution(samples_ms=np.asarray(samples, dtype=np.float64))
    return _parse_quantiles(spec, where)


def _parse_quantiles(spec, where: str) -> LatencyDistribution:
    quantiles = spec["quantiles"]
    require(isinstance(quantiles, dict) and quantiles, f"{where}.quantiles must be a non-empty object")
    pairs = []
    for key, value in quantiles.items():
        try:
            p = float(key)
        except ValueError:
            raise FlexsimError(f"{where}.quantiles: key {key!r} is not a probability") from None
        require(0 < p < 1, f"{where}.quantiles: probability {key} must lie in (0, 1)")
        require(_latency(value), f"{where}.quantiles[{key}] = {value!r} must be a number > 0 and <= "
                f"{MAX_LATENCY_MS:g}")
        pairs.append((p, float(value)))
    pairs.sort()
    probs = [p for p, _ in pairs]
    require(len(set(probs)) == len(probs), f"{where}.quantiles: a probability appears twice (e.g. 0.5 and 0.50)")
    values = np.array([v for _, v in pairs])
    require(bool(np.all(np.diff(values) >= 0)), f"{where}.quantiles: values must not decrease with probability")
    mean = spec.get("mean")
    require(mean is None or _latency(mean), f"{where}.mean = {mean!r} must be a number > 0 and <= {MAX_LATENCY_MS:g}")
    return LatencyDistribution(quantile_probs=np.array([p for p, _ in pairs]), quantile_ms=values,
                               mean_ms=None if mean is None else float(mean))


# ----------------------------------------------------------------------------------------------- files

def shipped_profiles() -> dict[str, Path]:
    """Names and paths of the profiles shipped in `PROFILES_DIR`; FlexsimError where FLEXSIM_PROFILES names no
    folder (a typo would otherwise look like a folder without profiles)."""
    if not PROFILES_DIR.is_dir():
        require(not os.environ.get("FLEXSIM_PROFILES"),
                f"FLEXSIM_PROFILES = {os.environ.get('FLEXSIM_PROFILES')!r} is not a folder")
        return {}
    return {p.stem: p for p in sorted(PROFILES_DIR.glob("*.json"))}


def as_profile(profile) -> Profile:
    """`profile` itself where it is a `Profile`, else the profile it names (`load_profile`)."""
    if isinstance(profile, Profile):
        return profile
    require(isinstance(profile, (str, os.PathLike)), f"invalid profile {profile!r:.40}: a Profile, or a profile "
            "name or path")
    return load_profile(profile)


def check_profile_name(name: str, what: str = "name") -> None:
    """FlexsimError unless `name` can name a profile and its file ``NAME.json``: not empty, no folder, no .json, no
    control character (a line break would split the listings)."""
    require(name not in ("", ".", "..") and Path(name).name == name and not name.endswith(".json")
            and name.isprintable(), f"invalid {what} {name!r}: a profile name, not empty, printable, without a "
            "folder or .json (the file is NAME.json)")


def profile_file(name_or_path: str | Path) -> Path:
    """The file a profile name (``h100``: the shipped one) or path names."""
    return shipped_profiles().get(str(name_or_path), Path(name_or_path))


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a shipped profile by name (``h100``) or a profile file by path (parsed once while the file is unchanged,
    `simulator.io.parsed_file`)."""
    from simulator.io import parsed_file

    key = str(name_or_path)
    require(key != "", "profile: an empty name")
    shipped = shipped_profiles()
    if key in shipped:
        return parsed_file(shipped[key], "profile", _read)
    path = Path(key)
    require(path.suffix == ".json" or path.exists(),
            f"profile: unknown profile name {key!r} (shipped: {', '.join(shipped) or 'none'}; or a path to a .json)")
    require(path.exists(), f"profile: file {key} does not exist")
    return parsed_file(path, "profile", _read)


def _read(path: Path) -> Profile:
    from simulator.io import read_json

    return parse_profile(read_json(path, "profile"), origin=str(path))


def save_profile(path: str | Path, profile: Profile) -> None:
    """Validate `profile` by re-parsing its JSON form, then write it atomically."""
    from simulator.io import json_text, non_finite_field, write_text_atomic

    require(isinstance(profile, Profile), f"save_profile: expected a Profile, got {type(profile).__name__}")
    obj = profile.to_json()
    bad = non_finite_field(obj)
    require(bad is None, f"profile {path}: {bad} is not a finite number (JSON would write it as null, 'not measured')")
    text = json_text(obj)
    parse_profile(json.loads(text), origin=str(path))
    write_text_atomic(path, text)
