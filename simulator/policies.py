"""Stopping policies: after each stage, does the request stop?

Every policy is a pure function of the request's state (`RequestState`). The built-in policies are small
frozen objects, looked up by name in `REGISTRY`; they compose by conjunction of their *continue* conditions
(a request stops as soon as any policy says stop). A composition compiles into one `PolicyParams` record,
which the single built-in decision function `should_stop` reads; both engines call that same compiled
function, so their decisions are identical.

A user's policy is a Numba ``@njit`` function with the signature ``policy(state, params) -> bool`` (True =
stop), where ``state`` is a `RequestState` and ``params`` a float64 array of the user's parameters.
Wrap it in `CustomPolicy`; it composes with the built-in ones like any other policy. A configuration names it
as policy ``custom`` with ``custom_policy`` (``FILE.py:FUNCTION``, ``package.module:FUNCTION`` or, in Python, the
function itself; `custom_function` loads it once per process) and ``custom_params``.

Timing and energy fields of the state are *estimates made before the next stage*: the next stage's latency
estimate is a configured quantile of the profile's latency at the batch size of the stage just run, as the contract
has it (the decision overhead is not in it; see ``docs/semantics.md``).
"""

from __future__ import annotations

import math
import os
from collections import namedtuple
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
from numba.core.registry import CPUDispatcher
from numba.core.types import unliteral

from simulator._jit import jit_inline
from simulator.errors import FlexsimError, require
from simulator.signals import is_threshold
from simulator.usercode import attribute, is_file, loaded, split_spec

RequestState = namedtuple("RequestState", [
    "stage",                # int: the stage just completed (0-based)
    "n_stages",             # int: number of stages K
    "signal",               # float: confidence after this stage (higher = more confident)
    "prediction",           # int: the argmax after this stage
    "correct",              # bool: whether that prediction is right (the oracle's bound only)
    "elapsed_s",            # float: now - arrival
    "deadline_s",           # float: the request's relative deadline (inf = none)
    "next_latency_s",       # float: estimated latency of the next stage (its latency quantile)
    "energy_j",             # float: energy attributed to the request so far
    "next_energy_j",        # float: estimated energy share of the next stage
    "energy_budget_j",      # float: the request's energy budget (inf = none)
    "queue_len",            # int: requests waiting when this request started
    "batch_size",           # int: size of the batch-stage just run
    "device_tokens_j",      # float: energy left in the device's power-cap bucket (inf = no cap)
    "next_stage_energy_j",  # float: estimated device energy of the whole next batch-stage
])
RequestState.__doc__ = "What a policy sees after a stage (see the field comments in simulator.policies)."

PolicyParams = namedtuple("PolicyParams", [
    "thresholds",        # float64 [levels, n_stages]: stop after stage k if signal >= thresholds[level, k]
    "max_stages",        # int64 [levels]: stop once this many stages have run
    "level_queue_len",   # int64 [levels]: level l applies when queue_len >= level_queue_len[l] (ascending)
    "deadline_aware",    # bool
    "energy_aware",      # bool
    "power_capped",      # bool
    "oracle",            # bool
])


@jit_inline
def should_stop(state, params):
    """The built-in decision: True if the request stops after ``state.stage``."""
    level = load_level(state.queue_len, params.level_queue_len)
    return stop_rule(state, params.thresholds[level, state.stage], params.max_stages[level], params.deadline_aware,
                     params.energy_aware, params.power_capped, params.oracle)


@jit_inline
def stop_rule(state, threshold, max_stages, deadline_aware, energy_aware, power_capped, oracle):
    """`should_stop` with the request's load level already applied: `threshold` and `max_stages` of that level.

    Scalars only, so that the engine's hot loop pays no reference counting for it.
    """
    k = state.stage
    if k + 1 >= state.n_stages or k + 1 >= max_stages:
        return True
    if state.signal >= threshold:
        return True
    if oracle and state.correct:
        return True
    if deadline_aware and state.elapsed_s + state.next_latency_s > state.deadline_s:
        return True
    if energy_aware and state.energy_j + state.next_energy_j > state.energy_budget_j:
        return True
    return power_capped and state.next_stage_energy_j > state.device_tokens_j


@jit_inline
def load_level(queue_len, level_queue_len):
    """Index of the load level that applies at `queue_len` (the last whose threshold it reaches)."""
    level = 0
    for i in range(1, level_queue_len.shape[0]):
        if queue_len >= level_queue_len[i]:
            level = i
    return level


# ----------------------------------------------------------------------------------------------- composition

@dataclass
class _Builder:
    """Mutable accumulator of a composition, turned into `PolicyParams` by `compose`."""

    n_stages: int
    levels: list = field(default_factory=lambda: [0])
    thresholds: np.ndarray = None
    max_stages: np.ndarray = None
    flags: dict = field(default_factory=dict)

    def __post_init__(self):
        self.thresholds = np.full((1, self.n_stages), np.inf)
        self.max_stages = np.array([self.n_stages], dtype=np.int64)

    def set_levels(self, queue_lens) -> None:
        require("levelled" not in self.flags, "policy: only one load-adaptive policy may be composed")
        self.flags["levelled"] = True
        self.levels = list(queue_lens)
        self.thresholds = np.repeat(self.thresholds, len(queue_lens), axis=0)
        self.max_stages = np.repeat(self.max_stages, len(queue_lens))


class Policy:
    """Base of the built-in policies: composes with ``&``."""

    name: ClassVar[str] = ""

    def apply(self, builder: _Builder) -> None:
        raise NotImplementedError

    def __and__(self, other: "Policy") -> "Composite":
        return Composite(tuple(_parts(self)) + tuple(_parts(other)))

    def decide(self, state: RequestState) -> bool:
        """Whether this policy alone stops a request in `state` (for testing a policy on its own)."""
        return compose([self], state.n_stages).decide(state)


def _parts(policy: Policy):
    require(isinstance(policy, Policy), f"invalid policy {policy!r:.60}: policies are Policy objects (Threshold, "
            "DeadlineAware, ..., or CustomPolicy for a Numba function)")
    return policy.policies if isinstance(policy, Composite) else (policy,)


def is_number(x) -> bool:
    """A real number (Python's or NumPy's) that a float holds, not a bool (a flag mistaken for a count); a Python int
    of 400 digits is not one (its checks would overflow)."""
    return (isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))
            and (not isinstance(x, int) or abs(x) < 1e300))


def is_finite_number(x) -> bool:
    """`is_number`, and finite."""
    return is_number(x) and math.isfinite(float(x))


@dataclass(frozen=True)
class Composite(Policy):
    """Several policies at once: the request stops when any of them says stop."""

    policies: tuple
    name: ClassVar[str] = "composite"

    def apply(self, builder: _Builder) -> None:
        for policy in sorted(self.policies, key=lambda p: not isinstance(p, LoadAdaptive)):
            policy.apply(builder)


@dataclass(frozen=True)
class StaticK(Policy):
    """Run the first `k` stages."""

    k: int
    name: ClassVar[str] = "static"

    @classmethod
    def from_config(cls, config) -> "StaticK":
        require(config.static_k is not None, "policy static needs static_k (--static-k K)")
        return cls(config.static_k)

    def apply(self, builder: _Builder) -> None:
        require(isinstance(self.k, (int, np.integer)) and not isinstance(self.k, bool) and 1 <= self.k <= builder.n_stages,
                f"invalid static_k = {self.k!r}: must be an integer in [1, {builder.n_stages}]")
        builder.max_stages = np.minimum(builder.max_stages, self.k)


@dataclass(frozen=True)
class Threshold(Policy):
    """The flexible ensemble: stop after stage k if ``signal >= thresholds[k]`` (K-1 thresholds)."""

    thresholds: tuple
    name: ClassVar[str] = "threshold"

    @classmethod
    def from_config(cls, config) -> "Threshold":
        return cls(tuple(config.thresholds))

    def apply(self, builder: _Builder) -> None:
        t = _threshold_row(self.thresholds, builder.n_stages, "thresholds")
        builder.thresholds = np.minimum(builder.thresholds, t[None, :])


def _threshold_row(values, n_stages: int, field_name: str) -> np.ndarray:
    """Validate K-1 thresholds and return a row of K (the last stage's entry is +inf: it always stops)."""
    require(isinstance(values, (tuple, list, np.ndarray)),
            f"invalid {field_name} = {values!r:.60}: must be a sequence of numbers")
    values = tuple(values)
    require(len(values) == n_stages - 1,
            f"invalid {field_name}: {len(values)} values given for {n_stages} stages (need {n_stages - 1})")
    for i, v in enumerate(values):
        ok = is_number(v) and is_threshold(v)
        require(ok, f"invalid {field_name}[{i}] = {v!r}: must be a number in [0, 1] (inf and -inf allowed)")
    return np.array(list(values) + [np.inf], dtype=np.float64)


@dataclass(frozen=True)
class DeadlineAware(Policy):
    """Before stage k >= 1, stop if ``elapsed + estimate(next stage) > deadline``."""

    quantile: float = 0.5
    name: ClassVar[str] = "deadline"

    #: the config field (or trace column) that must be finite for this policy to mean anything, and its unit
    needs_finite: ClassVar[tuple] = ("deadline_ms", "MS")

    @classmethod
    def from_config(cls, config) -> "DeadlineAware":
        return cls(config.deadline_quantile)

    def apply(self, builder: _Builder) -> None:
        require(is_number(self.quantile) and 0.0 <= self.quantile <= 1.0,
                f"invalid deadline_quantile = {self.quantile!r}: must lie in [0, 1]")
        builder.flags["deadline_aware"] = True
        builder.flags["deadline_quantile"] = self.quantile


@dataclass(frozen=True)
class EnergyBudget(Policy):
    """Before stage k >= 1, stop if the energy so far plus the next stage's estimate exceeds the budget."""

    name: ClassVar[str] = "energy"

    needs_finite: ClassVar[tuple] = ("energy_budget_j", "J")

    @classmethod
    def from_config(cls, config) -> "EnergyBudget":
        return cls()

    def apply(self, builder: _Builder) -> None:
        builder.flags["energy_aware"] = True


@dataclass(frozen=True)
class PowerCap(Policy):
    """Device-level energy budget: an average power cap over a window, enforced as a token bucket.

    The bucket holds ``cap_w * window_s`` joules, refills at ``cap_w`` watts and is drained by the device's
    energy (stages and idle time). Before stage k >= 1 a request stops if the next batch-stage's estimated
    energy exceeds what is left.
    """

    cap_w: float
    window_s: float = 1.0
    name: ClassVar[str] = "power-cap"

    @classmethod
    def from_config(cls, config) -> "PowerCap":
        require(config.power_cap_w is not None, "policy power-cap needs power_cap_w (--power-cap-w W)")
        return cls(config.power_cap_w, config.power_window_s)

    def apply(self, builder: _Builder) -> None:
        require(is_finite_number(self.cap_w) and self.cap_w > 0,
                f"invalid power_cap_w = {self.cap_w!r:.40}: must be a finite number > 0")
        require(is_finite_number(self.window_s) and self.window_s > 0,
                f"invalid power_window_s = {self.window_s!r:.40}: must be a finite number > 0")
        builder.flags["power_capped"] = True
        builder.flags["power_cap"] = (float(self.cap_w), float(self.window_s))


@dataclass(frozen=True)
class LoadAdaptive(Policy):
    """Run-time switching on load: the queue length when a request starts picks a level.

    `levels` is a sequence of ``(min_queue_len, max_stages, thresholds_or_None)``, the first with
    ``min_queue_len == 0``, ascending: the last level whose ``min_queue_len`` the queue length reaches applies.
    """

    levels: tuple
    name: ClassVar[str] = "load-adaptive"

    @classmethod
    def from_config(cls, config) -> "LoadAdaptive":
        require(config.load_levels is not None, "policy load-adaptive needs load_levels (--load-levels SPEC)")
        return cls(parse_load_levels(config.load_levels))

    def apply(self, builder: _Builder) -> None:
        require(isinstance(self.levels, (tuple, list)) and len(self.levels) >= 1,
                "invalid load_levels: give at least one level")
        for i, level in enumerate(self.levels):
            ok = (isinstance(level, (tuple, list)) and len(level) == 3
                  and all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in level[:2]))
            require(ok, f"invalid load_levels[{i}] = {level!r:.60}: must be (min_queue_len, max_stages, thresholds "
                        "or None), the first two integers")
        queue_lens = [int(level[0]) for level in self.levels]
        require(queue_lens[0] == 0 and all(b > a for a, b in zip(queue_lens, queue_lens[1:]))
                and queue_lens[-1] <= MAX_QUEUE_LENGTH,
                f"invalid load_levels: queue lengths {queue_lens} must start at 0 and increase, up to "
                f"{MAX_QUEUE_LENGTH}")
        builder.set_levels(queue_lens)
        for i, (_, max_stages, thresholds) in enumerate(self.levels):
            require(1 <= int(max_stages) <= builder.n_stages,
                    f"invalid load_levels[{i}]: max_stages = {max_stages} must lie in [1, {builder.n_stages}]")
            builder.max_stages[i] = min(builder.max_stages[i], int(max_stages))
            if thresholds is not None:
                row = _threshold_row(thresholds, builder.n_stages, f"load_levels[{i}] thresholds")
                builder.thresholds[i] = np.minimum(builder.thresholds[i], row)


@dataclass(frozen=True)
class Oracle(Policy):
    """Stop at the first stage whose prediction is already correct (an upper bound, not deployable)."""

    name: ClassVar[str] = "oracle"

    @classmethod
    def from_config(cls, config) -> "Oracle":
        return cls()

    def apply(self, builder: _Builder) -> None:
        builder.flags["oracle"] = True


@dataclass(frozen=True)
class CustomPolicy(Policy):
    """A user's Numba policy ``function(state, params) -> bool`` (True = stop) and its parameters."""

    function: Callable
    params: tuple = ()
    name: ClassVar[str] = "custom"

    @classmethod
    def from_config(cls, config) -> "CustomPolicy":
        require(config.custom_policy is not None,
                "policy custom needs custom_policy (--custom-policy FILE.py:FUNCTION)")
        return cls(custom_function(config.custom_policy), tuple(config.custom_params))

    def apply(self, builder: _Builder) -> None:
        require(is_compiled_function(self.function),
                "invalid custom policy: the function must be compiled with numba.njit")
        require("custom" not in builder.flags, "policy: only one custom policy may be composed")
        params = self._params()
        self._try(params, builder.n_stages)
        builder.flags["custom"] = (self.function, params)

    def _params(self) -> np.ndarray:
        """The parameters as float64 [n]; FlexsimError unless they are a flat sequence of finite numbers."""
        ok = isinstance(self.params, np.ndarray) or (isinstance(self.params, (tuple, list))
                                                      and all(is_number(p) for p in self.params))
        try:
            params = np.array(self.params, dtype=np.float64).reshape(-1) if ok else None     # a copy: yours stay
        except (TypeError, ValueError, OverflowError):
            params = None
        require(params is not None and np.ndim(self.params) == 1 and bool(np.all(np.isfinite(params))),
                f"invalid custom policy {self._name()}: params must be a flat sequence of finite numbers, "
                f"got {self.params!r:.80}")
        return params

    def _try(self, params: np.ndarray, n_stages: int) -> None:
        """Call the function on neutral states (on a copy of the parameters: the user's array is left as it was),
        so that one that does not compile for ``(RequestState, float64[:])``, raises, can return something other
        than a bool or reads past its parameters is named here, in one line, rather than deep in an engine."""
        state = make_state(n_stages=max(2, n_stages))
        try:
            out = self.function(state, params.copy())
        except Exception as exc:  # noqa: BLE001 - any failure of the user's function is reported as bad input
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [""]
            telling = ("Unknown attribute", "No implementation", "Invalid use", "Cannot", "Untyped global")
            first = next((line for line in lines if line.startswith(telling)), lines[0])
            raise FlexsimError(f"invalid custom policy {self._name()}: calling it on a neutral state failed: "
                               f"{type(exc).__name__}: {first[:200]}") from None
        require(isinstance(out, (bool, np.bool_)), f"invalid custom policy {self._name()}: it must return a bool "
                f"(True = stop), returned {type(out).__name__}")
        require(self.function.nopython_signatures, f"invalid custom policy {self._name()}: it must compile in "
                "nopython mode (@numba.njit), not in object mode (forceobj=True)")
        returns = {str(t) for t in (unliteral(sig.return_type) for sig in self.function.nopython_signatures)} - {"bool"}
        require(not returns, f"invalid custom policy {self._name()}: it must return a bool (True = stop) on every "
                f"path, but compiled to return {', '.join(sorted(returns))} (a path without a return gives None)")
        for stage in range(max(1, n_stages - 1)):               # the stages after which a policy is asked
            self._try_bounds(make_state(n_stages=max(2, n_stages), stage=stage), params.copy())

    def _try_bounds(self, state, params: np.ndarray) -> None:
        """Call the function's Python original on `state`: compiled code does not check bounds, so a function that
        reads past its parameters (e.g. one per stage, fewer given) would run on whatever memory lies there;
        Python raises IndexError. Other failures of the original (code that only compiles) are not its concern."""
        original = getattr(self.function, "py_func", None)
        if original is None:
            return
        try:
            original(state, params)
        except IndexError as exc:
            raise FlexsimError(f"invalid custom policy {self._name()}: it reads past an array on a neutral state "
                               f"after stage {state.stage} ({exc}; it was given {params.size} parameter(s))") from None
        except Exception:  # noqa: BLE001 - only the bounds are checked here; compiling and running were checked above
            return

    def _name(self) -> str:
        return getattr(getattr(self.function, "py_func", None), "__name__", repr(self.function))


def is_compiled_function(obj) -> bool:
    """Whether `obj` is a Numba-compiled function (what ``numba.njit`` returns)."""
    return isinstance(obj, CPUDispatcher)


def function_text(function) -> str:
    """``module:qualname`` of a compiled `function`: how a configuration given the function itself (not a
    ``SOURCE:NAME`` text) records it in outputs (summary.json, a sweep's files). It names the function; it loads it
    again only where that module is importable and holds it under that name."""
    original = getattr(function, "py_func", function)
    return f"{getattr(original, '__module__', None) or '__main__'}:{getattr(original, '__qualname__', '?')}"


#: Users' policy functions loaded from ``SOURCE:NAME`` texts, by (resolved file or module name, name): each is loaded
#: once per process, so that every run of a sweep gets the same function object and the engine compiled for it (once
#: per function object) is reused. A file edited after it was loaded is not read again in the same process.
_LOADED: dict = {}


def custom_function(spec) -> Callable:
    """The Numba function a custom policy runs: `spec` itself where it is one, else the function that ``FILE.py:NAME``
    (a Python file) or ``package.module:NAME`` (an importable module) names, loaded once per process (`_LOADED`).

    Raises
    ------
    FlexsimError
        On one line: `spec` not of that form, the file missing, the module not importable or raising while it
        loads (the exception named), the name missing, or the object not a Numba-compiled function.
    """
    if is_compiled_function(spec):
        return spec
    parts = split_spec(spec)
    require(parts is not None, f"invalid custom_policy = {spec!r:.80}: must be FILE.py:FUNCTION or "
            "package.module:FUNCTION")
    source, name = parts
    # a module is found on the import path, which begins with the current folder
    key = (str(Path(source).resolve()), name) if is_file(source) else (source, name, os.getcwd())
    if key not in _LOADED:
        _LOADED[key] = _load_function(spec, source, name)
    return _LOADED[key]


def _load_function(spec: str, source: str, name: str) -> Callable:
    """Load `name` from `source` (`simulator.usercode.loaded`); FlexsimError unless it is a compiled function."""
    label = f"custom policy {spec}"
    with loaded(source, label) as module:
        function = attribute(module, source, name, label)
    require(is_compiled_function(function), f"{label}: {name} is a {type(function).__name__}, not a Numba-compiled "
            "function (decorate it with @numba.njit)")
    return function


#: Largest queue length a load level may start at (the engines count the queue in 32-bit integers).
MAX_QUEUE_LENGTH = 2 ** 31 - 1


def parse_load_levels(text: str) -> tuple:
    """Parse ``QLEN:MAX_STAGES[:T0/T1/...]`` levels separated by ``;`` (e.g. ``0:6;4:3:0.5/0.4;16:1``)."""
    require(isinstance(text, str), f"invalid load_levels = {text!r:.40}: a text QLEN:MAX_STAGES[:T0/T1/...];...")
    levels = []
    for i, part in enumerate(p for p in text.split(";") if p.strip()):
        bits = part.strip().split(":")
        require(len(bits) in (2, 3), f"invalid load_levels level {i} = {part!r}: expected QLEN:MAX_STAGES[:T0/T1/...]")
        try:
            qlen, max_stages = int(bits[0]), int(bits[1])
            thresholds = None if len(bits) == 2 else tuple(float(t) for t in bits[2].split("/"))
        except ValueError:
            raise FlexsimError(f"invalid load_levels level {i} = {part!r}: QLEN and MAX_STAGES must be integers, "
                               "thresholds numbers") from None
        require(0 <= qlen <= MAX_QUEUE_LENGTH, f"invalid load_levels level {i} = {part!r}: QLEN must be from 0 to "
                f"{MAX_QUEUE_LENGTH}")
        require(thresholds is None or all(is_threshold(t) for t in thresholds),
                f"invalid load_levels level {i} = {part!r}: thresholds lie in [0, 1] (inf: never stop, -inf: always)")
        levels.append((qlen, max_stages, thresholds))
    return tuple(levels)


#: Policies by name (the names that ``--policy`` accepts): the built-in ones, and ``custom``, the configuration's
#: ``custom_policy`` with its ``custom_params``.
REGISTRY = {cls.name: cls for cls in (StaticK, Threshold, DeadlineAware, EnergyBudget, PowerCap,
                                       LoadAdaptive, Oracle, CustomPolicy)}


@dataclass(frozen=True, eq=False)
class CompiledPolicy:
    """A composition compiled for a number of stages: what the engines need to apply it."""

    params: PolicyParams
    custom: Callable | None = None
    custom_params: np.ndarray = field(default_factory=lambda: np.zeros(0))
    deadline_quantile: float = 0.5
    power_cap: tuple | None = None   # (cap_w, window_s)

    def decide(self, state: RequestState) -> bool:
        """Whether the composition stops a request in `state`."""
        if should_stop(state, self.params):
            return True
        return self.custom is not None and bool(self.custom(state, self.custom_params))


#: Fields that only a policy reads, with that policy: set (not None, not empty) without it, they would change nothing.
POLICY_FIELDS = {"static_k": "static", "power_cap_w": "power-cap", "load_levels": "load-adaptive",
                 "custom_policy": "custom", "custom_params": "custom"}


def from_config(config, per_request: tuple = ()) -> list[Policy]:
    """The policies named by ``config.policy``, built from the config's fields.

    A policy with a ``needs_finite`` field (deadline: ``deadline_ms``, energy: ``energy_budget_j``) needs that field
    finite, unless `per_request` names it: a trace then gives every request its own value, which the policy uses.
    A field of `POLICY_FIELDS` set without its policy is refused: it would be ignored.
    """
    for field_name, policy in POLICY_FIELDS.items():
        require(is_unset(getattr(config, field_name)) or policy in config.policy,
                f"{field_name} is set but the policy has no {policy} (it would change nothing): add {policy} to "
                f"policy ({','.join(config.policy)}), or leave {field_name} out")
    for name in config.policy:
        needed, unit = getattr(REGISTRY[name], "needs_finite", (None, None))
        if needed is not None and needed not in per_request:
            require(math.isfinite(getattr(config, needed)), f"policy {name} needs a finite {needed} "
                    f"(--{needed.replace('_', '-')} {unit}, or a trace column {needed})")
    return [REGISTRY[name].from_config(config) for name in config.policy]


def is_unset(value) -> bool:
    """Whether a field of `POLICY_FIELDS` is left at its unset default (None, or no values)."""
    return value is None or (isinstance(value, tuple) and not value)


def check_n_stages(n_stages) -> int:
    """`n_stages` as an int; FlexsimError unless it is an integer >= 1 (a number of stages)."""
    require(isinstance(n_stages, (int, np.integer)) and not isinstance(n_stages, bool) and n_stages >= 1,
            f"invalid number of stages {n_stages!r:.40}: need an integer >= 1")
    return int(n_stages)


def compose(policies, n_stages: int) -> CompiledPolicy:
    """Compile policies (stop when any says stop) for `n_stages` stages."""
    check_n_stages(n_stages)
    require(isinstance(policies, (tuple, list)), f"invalid policies {policies!r:.60}: a list of Policy objects")
    builder = _Builder(n_stages)
    Composite(tuple(p for policy in policies for p in _parts(policy))).apply(builder)
    flags = builder.flags
    params = PolicyParams(
        thresholds=np.ascontiguousarray(builder.thresholds),
        max_stages=builder.max_stages.astype(np.int64),
        level_queue_len=np.asarray(builder.levels, dtype=np.int64),
        deadline_aware=bool(flags.get("deadline_aware", False)),
        energy_aware=bool(flags.get("energy_aware", False)),
        power_capped=bool(flags.get("power_capped", False)),
        oracle=bool(flags.get("oracle", False)),
    )
    custom, custom_params = flags.get("custom", (None, np.zeros(0)))
    return CompiledPolicy(params=params, custom=custom, custom_params=custom_params,
                          deadline_quantile=flags.get("deadline_quantile", 0.5), power_cap=flags.get("power_cap"))


def make_state(**fields) -> RequestState:
    """A `RequestState` with neutral defaults for the fields not given (for tests and examples)."""
    defaults = dict(stage=0, n_stages=2, signal=0.0, prediction=0, correct=False, elapsed_s=0.0,
                    deadline_s=np.inf, next_latency_s=0.0, energy_j=0.0, next_energy_j=0.0,
                    energy_budget_j=np.inf, queue_len=0, batch_size=1, device_tokens_j=np.inf,
                    next_stage_energy_j=0.0)
    unknown = set(fields) - set(defaults)
    if unknown:
        raise FlexsimError(f"RequestState has no field(s) {', '.join(sorted(unknown))}")
    defaults.update(fields)
    state = RequestState(**{k: _state_field(k, v) for k, v in defaults.items()})
    require(1 <= state.n_stages and 0 <= state.stage < state.n_stages,
            f"RequestState: stage = {state.stage} must lie in [0, n_stages = {state.n_stages})")
    return state


def _state_field(name: str, value):
    """`value` as the type of RequestState's field `name`; FlexsimError naming the field otherwise."""
    if name == "correct":
        require(isinstance(value, (bool, np.bool_)) or (is_number(value) and value in (0, 1)),
                f"RequestState field correct = {value!r:.40}: must be a bool")
        return bool(value)
    integer = name in ("stage", "n_stages", "prediction", "queue_len", "batch_size")
    require(is_number(value) and (not integer or float(value).is_integer()),
            f"RequestState field {name} = {value!r:.40}: must be {'an integer' if integer else 'a number'}")
    return int(value) if integer else float(value)
