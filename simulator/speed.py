"""The host's speed over time: a slowly varying factor on the duration of every stage.

A shared host does not run the same forward pass at the same speed all the time: other tenants, the hypervisor,
clock and thermal management make it faster or slower for tens to hundreds of milliseconds at a time. Drawn
independently per stage, service times miss this; near saturation it is what makes queues build up (a slow phase
raises the load for a while). A profile's ``speed_noise`` describes it as a stationary Ornstein-Uhlenbeck
process on the log of the factor:

- ``sigma``: standard deviation of ``log(factor)``;
- ``correlation_ms``: how long a phase lasts (the correlation of two factors ``h`` ms apart is ``exp(-h / corr)``);
- ``level_sigma`` (optional, default 0): how well the device's speed level is known from one run to the next.
  Each trace (each device of each simulated run, i.e. each seed) is multiplied by one constant factor
  ``exp(z * level_sigma - level_sigma**2 / 2)``, ``z`` standard normal: a host that runs a few percent faster or
  slower for minutes than while it was profiled (a shared VM, another instance of the same cloud type). A band
  over seeds then covers that uncertainty too; near saturation it dominates.
- ``slow_factor``, ``slow_share``, ``slow_ms`` (optional, default none): *slow phases* on top of the process. A
  shared host also switches for hundreds of milliseconds into a state in which every stage takes ``slow_factor``
  times as long (a vCPU that halted while idle comes back to a core shared with another tenant: on this project's
  Zen 5 VM stages ran 1.5-2.4x slower for 100-500 ms at a time while the worker slept between requests, and not
  while it polled). A two-state Markov chain over the trace's slots, in the slow state ``slow_share`` of the time,
  for ``slow_ms`` on average per phase (exponential sojourns), drawn after the level and only where
  ``slow_share > 0``. The chain's factor is normalised to mean 1 too: slow phases change *when* stages are slow
  (long enough for a queue to build up), not the mean service time, which the latency samples carry.
- ``long_factor``, ``long_share``, ``long_ms`` (optional, default none): *long phases*, a second, independent chain
  of the same kind drawn after the first: the shallower and longer phases of the seconds scale (on this project's
  Zen 4 VM 1.1-1.3x for 250-1000 ms, 5-7% of the time: at 80% load one raises the load past 1 for as long as it
  lasts). `flexsim validate` measures them on its profiling runs, pooled over the session
  (`simulator.runner.speed_fit.long_phases`).

The engines read a pre-drawn, piecewise-constant trace of it (`speed_trace`): slot ``i`` covers the times
``[i, i + 1) * step`` with ``step = correlation_ms / STEPS_PER_CORRELATION``; a stage that starts at time ``t``
lasts ``factor[int(t / step) % n_slots]`` times its drawn duration (the trace repeats beyond its end). The factor
is normalised to mean 1 (``exp(x - sigma**2 / 2)``), so it changes when stages are slow, not how slow they are on
average. Each device has its own trace (interference is per device).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from simulator.errors import FlexsimError, require

#: Slots of the piecewise-constant trace per correlation time.
STEPS_PER_CORRELATION = 8
#: Shortest correlation time accepted (ms). A stage's slot ``int(t / step)`` must stay below 2**63 (where the
#: compiled engine's integer conversion ends) for every time up to well past the latest arrival
#: (`workload.MAX_ARRIVAL_S`): at 0.01 ms that holds to ~1e10 s. Measured processes lie at 5-700 ms.
MIN_CORRELATION_MS = 0.01
#: Most slots of a trace (it repeats beyond): 32 MiB per device.
MAX_SLOTS = 1 << 22
#: Arrays of a trace's length that drawing one trace holds at once, beside the traces (`speed_trace`).
TRACE_TEMPORARIES = 6


@dataclass(frozen=True)
class SpeedNoise:
    """A host speed process (see the module docstring).

    Attributes
    ----------
    sigma : float
        Standard deviation of the log of the speed factor (>= 0).
    correlation_ms : float
        Correlation time of the process (>= `MIN_CORRELATION_MS`).
    level_sigma : float
        Standard deviation of the log of each trace's constant level factor (>= 0; 0: none).
    slow_factor : float
        How many times as long a stage lasts in a slow phase as outside one (>= 1).
    slow_share : float
        Share of the time in slow phases (in [0, 1); 0: none).
    slow_ms : float
        Mean duration of a slow phase (> 0 where ``slow_share > 0``).
    long_factor, long_share, long_ms : float
        The same for the long phases (``long_share`` 0: none).
    """

    sigma: float
    correlation_ms: float
    level_sigma: float = 0.0
    slow_factor: float = 1.0
    slow_share: float = 0.0
    slow_ms: float = 0.0
    long_factor: float = 1.0
    long_share: float = 0.0
    long_ms: float = 0.0

    @property
    def has_slow_phases(self) -> bool:
        return self.slow_share > 0 and self.slow_factor > 1

    @property
    def has_long_phases(self) -> bool:
        return self.long_share > 0 and self.long_factor > 1

    @property
    def has_variation(self) -> bool:
        """Whether the process varies the speed at all (a sigma above 0 or any phases)."""
        return self.sigma > 0 or self.level_sigma > 0 or self.has_slow_phases or self.has_long_phases

    @property
    def step_s(self) -> float:
        """Width (s) of one slot of the trace."""
        return self.correlation_ms / STEPS_PER_CORRELATION / 1000.0

    def to_json(self) -> dict:
        out = {"sigma": self.sigma, "correlation_ms": self.correlation_ms}
        if self.level_sigma > 0:
            out["level_sigma"] = self.level_sigma
        if self.has_slow_phases:
            out.update(slow_factor=self.slow_factor, slow_share=self.slow_share, slow_ms=self.slow_ms)
        if self.has_long_phases:
            out.update(long_factor=self.long_factor, long_share=self.long_share, long_ms=self.long_ms)
        return out

    def as_tuple(self) -> tuple:
        """The process as the numbers of `TUPLE_FIELDS` (three, six or nine: as few as carry it; slow phases it
        has not are `NO_PHASES` before long phases it has)."""
        slow = (self.slow_factor, self.slow_share, self.slow_ms) if self.has_slow_phases else NO_PHASES
        long = (self.long_factor, self.long_share, self.long_ms) if self.has_long_phases else ()
        return (self.sigma, self.correlation_ms, self.level_sigma) + (slow + long if long or self.has_slow_phases
                                                                         else ())


SLOW_FIELDS = ("slow_factor", "slow_share", "slow_ms")
#: Phases that never come (slow share 0), where a tuple of `TUPLE_FIELDS` must name slow phases before long ones.
NO_PHASES = (1.0, 0.0, 1.0)
LONG_FIELDS = ("long_factor", "long_share", "long_ms")


def parse_speed_noise(spec, where: str) -> SpeedNoise | None:
    """``{"sigma": s, "correlation_ms": c}`` with finite ``s >= 0`` and ``c >= MIN_CORRELATION_MS``, and optionally
    ``"level_sigma": l`` with finite ``l >= 0``, the slow phases ``"slow_factor": f, "slow_share": p,
    "slow_ms": d`` (all three or none; ``f >= 1``, ``0 <= p < 1``, ``d > 0``) and the long phases ``"long_factor",
    "long_share", "long_ms"`` (the same rules); or None."""
    if spec is None:
        return None
    allowed = {"sigma", "correlation_ms", "level_sigma", *SLOW_FIELDS, *LONG_FIELDS}
    require(isinstance(spec, dict) and {"sigma", "correlation_ms"} <= set(spec) and set(spec) <= allowed,
            f"{where}: speed_noise must be an object with 'sigma' and 'correlation_ms' (and optionally "
            "'level_sigma', 'slow_factor', 'slow_share', 'slow_ms', and 'long_factor', 'long_share', "
            "'long_ms'), nothing else")
    sigma, corr, level = spec["sigma"], spec["correlation_ms"], spec.get("level_sigma", 0.0)
    require(_number(sigma) and 0 <= sigma <= MAX_LOG_SIGMA,
            f"{where}: speed_noise.sigma = {sigma!r} must be a number from 0 to {MAX_LOG_SIGMA:g}")
    require(_number(corr) and corr >= MIN_CORRELATION_MS,
            f"{where}: speed_noise.correlation_ms = {corr!r} must be a finite number >= {MIN_CORRELATION_MS:g} ms")
    require(_number(level) and 0 <= level <= MAX_LOG_SIGMA,
            f"{where}: speed_noise.level_sigma = {level!r} must be a number from 0 to {MAX_LOG_SIGMA:g}")
    phases = {}
    for names in (SLOW_FIELDS, LONG_FIELDS):
        given = [spec[k] for k in names if k in spec]
        require(len(given) in (0, 3), f"{where}: speed_noise needs all of {', '.join(names)} or none of them")
        if given:
            check_slow_phases(*given, where=f"{where}: speed_noise", names=names)
            phases.update({k: float(v) for k, v in zip(names, given)})
    return SpeedNoise(float(sigma), float(corr), float(level), **phases)


#: The fields of a speed process given as numbers in this order (`flexsim run --speed-noise`): two, three, six or
#: all nine.
TUPLE_FIELDS = ("sigma", "correlation_ms", "level_sigma", *SLOW_FIELDS, *LONG_FIELDS)


#: Largest standard deviation of the log speed (within a run, or of its level): e^3, twenty times slower or faster,
#: is already beyond any host measured; larger ones only overflow.
MAX_LOG_SIGMA = 3.0
#: Largest slowdown of a slow phase.
MAX_SLOW_FACTOR = 1e3


def usable_speed_noise(values: tuple) -> bool:
    """Whether `values` (numbers in `TUPLE_FIELDS` order: two, three, six or nine of them) make a usable speed
    process, by the bounds of `parse_speed_noise`."""
    if not isinstance(values, tuple) or len(values) not in (2, 3, 6, 9):
        return False
    try:
        parse_speed_noise(dict(zip(TUPLE_FIELDS, values)), "speed_noise")
    except FlexsimError:
        return False
    return True


def check_slow_phases(factor, share, duration_ms, where: str, names=SLOW_FIELDS) -> None:
    """Raise a `FlexsimError` naming the first of the phases' figures (called `names`) that is not usable."""
    require(_number(factor) and 1 <= factor <= MAX_SLOW_FACTOR,
            f"{where}.{names[0]} = {factor!r} must be a number from 1 to {MAX_SLOW_FACTOR:g}")
    require(_number(share) and 0 <= share < 1, f"{where}.{names[1]} = {share!r} must be a number in [0, 1)")
    require(_number(duration_ms) and duration_ms > 0,
            f"{where}.{names[2]} = {duration_ms!r} must be a finite number > 0")


def _number(x) -> bool:
    """A finite int or float that a float holds (a 400-digit int does not: math.isfinite would overflow on it)."""
    return (isinstance(x, (int, float)) and not isinstance(x, bool) and (isinstance(x, float) or abs(x) < 1e300)
            and math.isfinite(x))


def speed_trace(noise: SpeedNoise, n_slots: int, rng: np.random.Generator) -> np.ndarray:
    """`n_slots` factors of `noise`, one per slot: a stationary AR(1) sampling of the process, exponentiated and
    normalised to mean 1, times the trace's level factor (drawn after the process, only where ``level_sigma > 0``,
    so a process without a level draws what it drew before)."""
    phi = math.exp(-1.0 / STEPS_PER_CORRELATION)
    shocks = rng.standard_normal(n_slots) * (noise.sigma * math.sqrt(1.0 - phi * phi))
    shocks[0] = rng.standard_normal() * noise.sigma        # start in the stationary distribution
    x = lfilter([1.0], [1.0, -phi], shocks) - 0.5 * noise.sigma ** 2
    if noise.level_sigma > 0:
        x += rng.standard_normal() * noise.level_sigma - 0.5 * noise.level_sigma ** 2
    factor = np.exp(x)
    step_ms = noise.step_s * 1000.0
    if noise.has_slow_phases:
        factor *= phase_factor(noise.slow_factor, noise.slow_share, noise.slow_ms, step_ms, n_slots, rng)
    if noise.has_long_phases:
        factor *= phase_factor(noise.long_factor, noise.long_share, noise.long_ms, step_ms, n_slots, rng)
    return factor


def phase_factor(slow_factor: float, p: float, slow_ms: float, step_ms: float, n_slots: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Per slot (of `step_ms`), a chain of phases: `slow_factor` in a slow phase, 1 outside, divided by the
    chain's mean ``1 - p + p * slow_factor``. Phases alternate, their lengths in slots drawn geometric (mean
    `slow_ms` for slow phases, ``slow_ms * (1 - p) / p`` for the others), the first state drawn with
    probability `p` (the share of the time in slow phases)."""
    tiny = np.finfo(float).tiny            # a phase this unlikely to end lasts the whole trace (lengths are clipped)
    leave = max(tiny, -math.expm1(-step_ms / slow_ms))          # per slot, from a slow phase
    enter = max(tiny, min(1.0, leave * p / (1.0 - p)))            # per slot, into one
    slow_first = bool(rng.random() < p)
    lengths, total = [], 0
    while total < n_slots:
        pairs = int(n_slots * enter * (1.0 - p)) + 8
        fast, slow = rng.geometric(enter, size=pairs), rng.geometric(leave, size=pairs)
        # a phase longer than the trace covers it all: clipped, the sum can neither overflow nor allocate beyond it
        fast, slow = np.minimum(fast, n_slots), np.minimum(slow, n_slots)
        chunk = np.column_stack([slow, fast] if slow_first else [fast, slow]).ravel()
        lengths.append(chunk)
        total += int(chunk.sum())
    lengths = np.concatenate(lengths)
    states = np.resize(np.array([slow_first, not slow_first]), lengths.size)
    in_slow = np.repeat(states, lengths)[:n_slots]
    return np.where(in_slow, slow_factor, 1.0) / (1.0 - p + p * slow_factor)


def slot_count(horizon_s: float, noises) -> int:
    """Slots a trace needs to cover `horizon_s` seconds at the finest step of `noises` (at least 1, at most
    `MAX_SLOTS`)."""
    step_s = min(n.step_s for n in noises)
    return int(min(MAX_SLOTS, max(1.0, math.ceil(horizon_s / step_s) + 1)))


def device_speed(devices, horizon_s: float, rng: np.random.Generator):
    """The speed traces of `devices` (their ``speed_noise``) as ``(factor [device, slots], step_s [device])``, or
    None when no device has one. A device without noise gets factors 1 and an infinite step (always slot 0)."""
    noises = [d.speed_noise for d in devices if d.speed_noise is not None]
    if not noises:
        return None
    from simulator.run import check_bytes

    n_slots = slot_count(horizon_s, noises)
    check_bytes((len(devices) + TRACE_TEMPORARIES) * n_slots * 8, f"speed_noise on {len(devices)} devices: "
                f"traces of {n_slots} slots each")
    factor = np.ones((len(devices), n_slots))
    step_s = np.full(len(devices), np.inf)
    for i, d in enumerate(devices):
        if d.speed_noise is not None:
            factor[i] = speed_trace(d.speed_noise, n_slots, rng)
            step_s[i] = d.speed_noise.step_s
    return factor, step_s


def horizon_bound_s(arrival_s: np.ndarray, n_requests: int, devices) -> float:
    """A generous estimate of the simulated time span: the last arrival plus every request running every stage at
    its slowest draw, after the longest wake-up and with its member the coldest, one after another."""
    last = float(arrival_s[:n_requests].max()) if arrival_s.shape[0] and n_requests else 0.0
    per_request = max(float((d.latency_s[:, -1, :].max(axis=1) + d.overhead_s).sum())
                      * max(1.0, float(d.wakeup_factor.max())) * max(1.0, float(d.member_factor.max()))
                      + d.dispatch_overhead_s for d in devices)
    return max(last, 0.0) + n_requests * per_request
