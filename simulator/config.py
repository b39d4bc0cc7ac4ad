"""The run configuration: one frozen dataclass behind the Python API, the TOML file and the CLI flags.

Every field carries its help text and its parser from a command-line string in its metadata; the CLI is
generated from these fields and TOML keys are the field names, so the three never drift. Validation is
declarative: `_CONSTRAINTS` lists, per field, a predicate and what the value must be; `validate` checks them in
one place and the error names the field and the value.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from simulator.errors import FlexsimError, require
from simulator.io import python_scalar
from simulator.logits import BUILTIN_CACHES
from simulator.policies import REGISTRY, is_compiled_function
from simulator.signals import COMBINERS, SIGNALS, is_threshold
from simulator.speed import usable_speed_noise
from simulator.usercode import split_spec

#: Most stages a run may have: the engines record each request's stages run in 8 bits (`results.RawOutputs`).
MAX_STAGES = 127
ENGINES = ("numba", "simpy")
QUEUES = ("fifo", "edf")
DISPATCHES = ("shared", "round-robin", "random")
SAMPLE_ORDERS = ("cyclic", "random")


# ----------------------------------------------------------------------------------------------- parsers

def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise FlexsimError(f"{text!r} is not a number") from None


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FlexsimError(f"{text!r} is not an integer") from None


def _floats(text: str) -> tuple:
    return tuple(_float(x) for x in text.split(",")) if text else ()


def _ints(text: str) -> tuple:
    return tuple(_int(x) for x in text.split(",")) if text else ()


def _strs(text: str) -> tuple:
    items = tuple(x.strip() for x in text.split(","))
    require(all(items), f"{text!r} has an empty item")
    return items


def _optional(parse):
    """The parser of an optional field's flag: ``none`` unsets it; an empty value is refused (an empty flag, as from
    an unset shell variable, is a mistake, not "none")."""
    def parsed(text: str):
        require(text.strip() != "", "an empty value (write none to leave the field unset)")
        return None if text.lower() == "none" else parse(text)
    return parsed


def _folder(text: str) -> str | None:
    """An output folder: None for none (unset), refused where empty (an empty flag is a mistake, not "no output")."""
    require(text.strip() != "", "an empty path (write . for the current folder)")
    return None if text.lower() == "none" else text


def _opt(default, help, parse=str, metavar=None):
    """A config field with its help text and command-line parser."""
    return field(default=default, metadata={"help": help, "parse": parse, "metavar": metavar})


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """A simulation run. Fields are TOML keys and ``--kebab-case`` command-line flags."""

    # what is served
    logits: str = _opt("fmnist", f"logit cache: built-in name ({', '.join(BUILTIN_CACHES)}) or path to "
                     "an .npz", metavar="NAME|PATH")
    members: tuple = _opt((0, 1, 2, 3, 4, 5), f"cache members run at each stage, in order (at most {MAX_STAGES})",
                          _ints, "I,J,...")
    models: tuple | None = _opt(None, "profile model of each stage (one name: every stage); default: the cache's "
                                "member model names, else the profile's default_stage_models", _optional(_strs), "M,...")
    combiner: str = _opt("mean", f"how stages combine: {' | '.join(COMBINERS)}")
    signal: str = _opt("margin", f"confidence signal: {' | '.join(SIGNALS)}")
    use_cost_scale: bool = _opt(True, "apply the cache's per-input cost_scale where it has one", bool)
    # policy
    policy: tuple = _opt(("threshold",), f"policies composed (stop when any says stop): {', '.join(REGISTRY)}",
                         _strs, "NAME,...")
    thresholds: tuple = _opt((0.4, 0.5, 0.2, 0.2, 0.2), "threshold: per-stage signal thresholds (K-1 values; "
                             "inf = never stop there, -inf = always); the default was chosen by `flexsim optimize` "
                             "(lambda = 100 ms, h100, fmnist-train)", _floats, "T0,T1,...")
    static_k: int | None = _opt(None, "static: run the first K stages", _optional(_int), "K")
    deadline_quantile: float = _opt(0.5, "deadline: latency quantile used as the next stage's estimate", _float)
    power_cap_w: float | None = _opt(None, "power-cap: the device's average power cap (W)", _optional(_float), "W")
    power_window_s: float = _opt(1.0, "power-cap: the averaging window (s)", _float, "S")
    load_levels: str | None = _opt(None, "load-adaptive: QLEN:MAX_STAGES[:T0/T1/...] levels separated by ';', "
                                   "e.g. '0:6;4:3;16:1'", _optional(str), "SPEC")
    custom_policy: str | Callable | None = _opt(
        None, "custom: your policy, a Numba @njit function policy(state, params) -> bool (True = stop): "
        "FILE.py:FUNCTION (a Python file) or package.module:FUNCTION (an importable module); in Python also the "
        "function itself (docs/custom-policies.md)", _optional(str), "FILE.py:FUNCTION")
    custom_params: tuple = _opt((), "custom: the float parameters your policy gets as params", _floats, "P0,P1,...")
    # workload
    arrivals: str = _opt("poisson:load=0.8", "poisson:RATE | gamma:RATE:CV | mmpp:RATE_LOW:RATE_HIGH:DWELL_S | "
                         "mmpp:load=X:DWELL_S | trace:PATH | closed[:CLIENTS]; RATE may be load=X (X of the "
                         "devices' combined capacity; mmpp:load=X alternates the rates of loads 0.5X and 1.5X)",
                         metavar="SPEC")
    requests: int | None = _opt(None, "number of requests (default 10000, or the trace's length)",
                                _optional(_int), "N")
    deadline_ms: float = _opt(math.inf, "relative deadline of every request (ms; a trace's deadline_ms column "
                              "overrides)", _float, "MS")
    energy_budget_j: float = _opt(math.inf, "energy budget of every request (J; a trace's energy_budget_j column "
                                  "overrides)", _float, "J")
    sample_order: str = _opt("cyclic", "which sample request r is served with: cyclic (r mod n_samples) | random")
    seed: int = _opt(0, "seed of every random draw (arrivals, samples, service times)", _int)
    # device
    profile: tuple = _opt(("h100",), "device profile(s): shipped name or path; one per device, or one for all",
                          _strs, "NAME|PATH,...")
    devices: int = _opt(1, "number of devices (replicas)", _int)
    dispatch: str = _opt("shared", "replicas' queues: shared (one queue) | round-robin | random (a queue per "
                         "device, requests assigned on arrival; open loop only)")
    batch_size: int = _opt(1, "maximum batch size (1 = batch-1 serving; B > 1 = greedy dynamic batching)", _int)
    queue: str = _opt("fifo", f"queue discipline: {' | '.join(QUEUES)}")
    speed_noise: tuple | None = _opt(None, "the host's speed process on every device, replacing the profiles': "
                                     "SIGMA,CORRELATION_MS[,LEVEL_SIGMA[,SLOW_FACTOR,SLOW_SHARE,SLOW_MS[,LONG_FACTOR,"
                                     "LONG_SHARE,LONG_MS]]] (standard "
                                     "deviation of the log speed factor, correlation time in ms; optionally the "
                                     "standard deviation of the log of a constant level factor per run, and slow "
                                     "phases: stages SLOW_FACTOR times as long for SLOW_SHARE of the time, in "
                                     "phases of SLOW_MS on average; and then long phases, LONG_FACTOR,LONG_SHARE,"
                                     "LONG_MS, a second chain of the same kind; all sigmas 0 and no phases = "
                                     "none); "
                                     "default: each profile's own (docs/semantics.md)",
                                     _optional(_floats), "SIGMA,MS[,LEVEL[,FACTOR,SHARE,MS[,LFACTOR,LSHARE,LMS]]]")
    # run
    engine: str = _opt("numba", f"simulation engine: {' | '.join(ENGINES)}")
    record_batches: bool = _opt(True, "record every batch-stage (batches.csv)", bool)
    out: str | None = _opt(None, "directory for requests.csv, batches.csv and summary.json, "
                             "replaced as one set (a batches.csv of an earlier run that this run does not record "
                             "is removed)", _folder, "DIR")

    def __post_init__(self):
        for f in fields(self):
            object.__setattr__(self, f.name, normalised_value(getattr(self, f.name)))
        validate(self)

    def to_dict(self) -> dict:
        return asdict(self)


def normalised_value(value):
    """`value` as a field holds it where a user has given it another usual form: a list or a NumPy array as a tuple,
    a path as its string, a NumPy scalar as the Python number; anything else unchanged (and validated as it is)."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return python_scalar(value)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return tuple(normalised_value(v) for v in value)
    return value


def _is_number(x) -> bool:
    """An int or float that a float holds (a Python int of 400 digits does not: its checks would overflow)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and (isinstance(x, float) or abs(x) < 1e300)


def _is_int(x) -> bool:
    """A Python int (not a bool) that a float holds, as `_is_number`."""
    return isinstance(x, int) and not isinstance(x, bool) and abs(x) < 1e300


def _positive_finite(x) -> bool:
    return _is_number(x) and math.isfinite(x) and x > 0


#: field -> (predicate, what the value must be)
_CONSTRAINTS = {
    "logits": (lambda v: isinstance(v, str) and v != "", "a cache name or path"),
    "members": (lambda v: isinstance(v, tuple) and 1 <= len(v) <= MAX_STAGES
                and all(_is_int(m) and m >= 0 for m in v) and len(set(v)) == len(v),
                f"a list of 1 to {MAX_STAGES} distinct member indices >= 0"),
    "models": (lambda v: v is None or (isinstance(v, tuple) and len(v) >= 1 and all(isinstance(m, str) for m in v)),
               "a list of profile model names"),
    "combiner": (lambda v: v in COMBINERS, f"one of {', '.join(COMBINERS)}"),
    "signal": (lambda v: v in SIGNALS, f"one of {', '.join(SIGNALS)}"),
    "use_cost_scale": (lambda v: isinstance(v, bool), "true or false"),
    "policy": (lambda v: isinstance(v, tuple) and len(v) >= 1 and all(p in REGISTRY for p in v)
               and len(set(v)) == len(v), f"a non-empty list of distinct policy names from: {', '.join(REGISTRY)}"),
    "thresholds": (lambda v: isinstance(v, tuple) and all(is_threshold(t) for t in v),
                   "a list of numbers in [0, 1] (inf: never stop there, -inf: always)"),
    "static_k": (lambda v: v is None or (_is_int(v) and v >= 1), "an integer >= 1"),
    "deadline_quantile": (lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "power_cap_w": (lambda v: v is None or _positive_finite(v), "a number > 0"),
    "power_window_s": (_positive_finite, "a number > 0"),
    "load_levels": (lambda v: v is None or isinstance(v, str), "a level specification string"),
    "custom_policy": (lambda v: v is None or split_spec(v) is not None or is_compiled_function(v),
                      "FILE.py:FUNCTION or package.module:FUNCTION (in Python also a numba.njit function)"),
    "custom_params": (lambda v: isinstance(v, tuple) and all(_is_number(x) and math.isfinite(x) for x in v),
                      "a list of finite numbers"),
    "arrivals": (lambda v: isinstance(v, str) and v != "", "an arrival specification"),
    "requests": (lambda v: v is None or (_is_int(v) and v >= 1), "an integer >= 1"),
    "deadline_ms": (lambda v: _is_number(v) and v > 0, "a number > 0 (inf = no deadline)"),
    "energy_budget_j": (lambda v: _is_number(v) and v > 0, "a number > 0 (inf = no budget)"),
    "sample_order": (lambda v: v in SAMPLE_ORDERS, f"one of {', '.join(SAMPLE_ORDERS)}"),
    "seed": (lambda v: _is_int(v) and v >= 0, "an integer >= 0 (below 1e300)"),
    "profile": (lambda v: isinstance(v, tuple) and len(v) >= 1 and all(isinstance(p, str) and p for p in v),
                "a list of profile names or paths"),
    "devices": (lambda v: _is_int(v) and 1 <= v <= 1024, "an integer in [1, 1024]"),
    "batch_size": (lambda v: _is_int(v) and 1 <= v <= 4096, "an integer in [1, 4096]"),
    "queue": (lambda v: v in QUEUES, f"one of {', '.join(QUEUES)}"),
    "speed_noise": (lambda v: v is None or usable_speed_noise(v),
                    "two, three, six or nine numbers SIGMA in [0, 3], CORRELATION_MS >= 0.01, LEVEL_SIGMA in [0, 3], "
                    "slow phases SLOW_FACTOR in [1, 1000], 0 <= SLOW_SHARE < 1, SLOW_MS > 0, and long phases by the "
                    "same rules"),
    "dispatch": (lambda v: v in DISPATCHES, f"one of {', '.join(DISPATCHES)}"),
    "engine": (lambda v: v in ENGINES, f"one of {', '.join(ENGINES)}"),
    "record_batches": (lambda v: isinstance(v, bool), "true or false"),
    "out": (lambda v: v is None or (isinstance(v, str) and v != ""), "a directory path, not empty (. for the "
            "current folder; leave it out to write nothing)"),
}


def validate(config: RunConfig) -> None:
    """Check every field against `_CONSTRAINTS` and the cross-field rules."""
    for name, (ok, must) in _CONSTRAINTS.items():
        value = getattr(config, name)
        require(ok(value), f"invalid {name} = {_show(value, name)}: must be {must}")
    require(len(config.profile) in (1, config.devices),
            f"invalid profile: {len(config.profile)} profiles given for devices = {config.devices} "
            "(give one, or one per device)")


def _show(value, name: str = "", limit: int = 80) -> str:
    """`value` of field `name` as an error message shows it, cut at `limit` characters (an object's repr can run to
    megabytes): a list field's items as its flag takes them (comma-separated), a list given to another field as a
    list."""
    if isinstance(value, tuple):
        text = ",".join(map(str, value)) if name in (*LIST_FIELDS, "speed_noise") else repr(list(value))
    else:
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


# ----------------------------------------------------------------------------------------------- sources

def config_fields():
    """The fields of `RunConfig` with their metadata."""
    return fields(RunConfig)


def default_of(f):
    return f.default if f.default is not MISSING else f.default_factory()


def from_mapping(values: dict, origin: str = "config") -> RunConfig:
    """A `RunConfig` from a mapping of field names to values (TOML types: lists become tuples)."""
    require(isinstance(values, dict), f"{origin}: expected a mapping of field names to values, got "
            f"{type(values).__name__}")
    check_field_names(values, origin)
    return RunConfig(**{key: toml_value(key, value, origin) for key, value in values.items()})


#: Fields that hold a list, where a TOML file may give one item alone.
LIST_FIELDS = ("members", "thresholds", "policy", "profile", "models", "custom_params")


#: Fields of numbers, where the strings "inf" and "-inf" (what summary.json's ``config`` holds for an infinite value,
#: which JSON cannot) stand for the numbers.
NUMBER_FIELDS = ("thresholds", "deadline_quantile", "power_cap_w", "power_window_s", "custom_params", "deadline_ms",
                 "energy_budget_j", "speed_noise")


def _number_text(key: str, value):
    """`value`, or the float it writes where `key` holds numbers and `value` is "inf" or "-inf"."""
    return float(value) if key in NUMBER_FIELDS and value in ("inf", "-inf") else value


def toml_value(key: str, value, origin: str = "config"):
    """The TOML value `value` of field `key` as the field holds it: an array as a tuple, one item of a list field as
    a list of one (a comma-separated string is refused: it was meant as an array); "inf" and "-inf" in a field of
    numbers as the numbers (`NUMBER_FIELDS`), so that summary.json's ``config`` loads back."""
    if isinstance(value, list):
        return tuple(_number_text(key, v) for v in value)
    value = _number_text(key, value)
    if key in LIST_FIELDS and isinstance(value, (str, int, float)):
        if isinstance(value, str) and "," in value:
            raise FlexsimError(f"{origin}: {key} = {value!r:.80} is one string; write a TOML array, e.g. "
                               f"{_toml_array(key, value)[:80]}")
        return (value,)
    return value


def _toml_array(key: str, text: str) -> str:
    """``key = [...]``: comma-separated `text` as the TOML array it was meant to be."""
    items = [x.strip() for x in text.split(",")]
    if key in ("policy", "profile", "models"):
        items = [f'"{x}"' for x in items]
    return f"{key} = [{', '.join(items)}]"


def load_toml(path: str | Path, others: tuple = ()) -> dict:
    """Read a TOML config file into a mapping (the ``[run]`` table if there is one); tables named in `others` (e.g.
    ``sweep``, which `load_toml_table` reads) may stand beside it and are left out."""
    data = _toml_data(path)
    data = {k: v for k, v in data.items() if k not in others or not isinstance(v, dict)}
    table = data.get("run", data)
    require(isinstance(table, dict), f"config {path}: run must be a table ([run] followed by key = value lines), "
            f"not {table!r}")
    outside = sorted(set(data) - {"run"}) if "run" in data else []
    require(not outside, f"config {path}: {', '.join(outside)} outside the [run] table (keys before [run] belong to "
            "no table: put them under it)")
    return table


def load_toml_table(path: str | Path, name: str) -> dict:
    """The table `name` of TOML file `path` (``[name]``); empty where the file has none."""
    table = _toml_data(path).get(name, {})
    require(isinstance(table, dict), f"config {path}: {name} must be a table ([{name}] followed by key = value "
            f"lines), not {table!r:.60}")
    return table


def _toml_data(path: str | Path) -> dict:
    from simulator.io import read_text

    try:
        return tomllib.loads(read_text(path, "config"))
    except tomllib.TOMLDecodeError as exc:
        raise FlexsimError(f"config {path}: malformed TOML ({exc})") from None


#: The strings a boolean field takes (the command line uses --flag / --no-flag; these are for the Python API).
BOOL_TEXT = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def parse_flag(name: str, text: str):
    """Parse the command-line string `text` of field `name`."""
    check_field_names({name: text}, "parse_flag")
    f = next(f for f in config_fields() if f.name == name)
    if f.metadata["parse"] is bool:
        value = BOOL_TEXT.get(str(text).strip().lower())
        require(value is not None, f"invalid {name} = {text!r}: must be one of {', '.join(BOOL_TEXT)}")
        return value
    try:
        return f.metadata["parse"](text)
    except FlexsimError as exc:
        raise FlexsimError(f"invalid {name} = {text!r}: {exc}") from None


def with_overrides(config: RunConfig, **changes) -> RunConfig:
    """A copy of `config` with some fields changed (validated again); FlexsimError naming an unknown field."""
    check_field_names(changes, "overrides")
    return replace(config, **changes)


def check_field_names(changes, origin: str) -> None:
    """FlexsimError naming the keys of `changes` that are not `RunConfig` fields."""
    names = {f.name for f in config_fields()}
    unknown = sorted(str(k) for k in changes if k not in names)
    require(not unknown, f"{origin}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(names))})")
