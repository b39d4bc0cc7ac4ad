"""Property-testing kit: Hypothesis strategies for flexsim's inputs and checks of the invariants every run obeys.

Use it to property-test your own policies the way flexsim tests its own::

    from hypothesis import given, settings
    from simulator import testing

    @settings(deadline=None, max_examples=50)
    @given(testing.simulation_inputs(policy_strategy=lambda k: testing.policies(k, custom=my_policy)))
    def test_my_policy(inputs):
        result = testing.run_both(inputs)          # Numba engine and SimPy reference, compared request by request
        testing.check_invariants(result, inputs)

Strategies draw small configurations (a few members, samples, devices and requests) with values chosen to make
same-time events likely (arrivals and latencies on a coarse grid), where event-ordering bugs hide.
"""

from __future__ import annotations

import functools
import inspect

import numpy as np
from hypothesis import strategies as st

from simulator import policies as pol
from simulator.errors import FlexsimError, require
from simulator.inputs import SimulationInputs, device_tables
from simulator.logits import LogitCache
from simulator.profiles import GRID, BatchEntry, LatencyDistribution, ModelEntry, Profile
from simulator.results import SimulationResult
from simulator.signals import COMBINERS, SIGNALS, stage_signals
from simulator.speed import SpeedNoise, device_speed, horizon_bound_s

_TICK_S = 0.0005      # arrivals and latencies on a 0.5 ms grid make ties (same-time events) common


# ----------------------------------------------------------------------------------------------- strategies

def _sizes_at_least(**minimums):
    """Decorator of a strategy maker: its size arguments named in `minimums` must be integers of at least that
    value, checked when the strategy is made (a FlexsimError naming the argument, instead of Hypothesis's own
    error when a draw first meets an empty range)."""
    def wrap(make):
        signature = inspect.signature(make)

        @functools.wraps(make)
        def checked(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            for name, low in minimums.items():
                value = bound.arguments[name]
                require(isinstance(value, int) and not isinstance(value, bool) and value >= low,
                        f"testing.{make.__name__}: {name} = {value!r} must be an integer >= {low}")
            return make(*args, **kwargs)
        return checked
    return wrap


@_sizes_at_least(max_members=1, max_samples=1, max_classes=2)
@st.composite
def logit_caches(draw, max_members: int = 4, max_samples: int = 30, max_classes: int = 5,
                 cost_scale: bool | None = None) -> LogitCache:
    """Small logit caches with finite logits (often tied) and optional per-input cost scales."""
    m = draw(st.integers(1, max_members))
    s = draw(st.integers(1, max_samples))
    c = draw(st.integers(2, max_classes))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    logits = np.round(rng.normal(0.0, 2.0, size=(m, s, c)), draw(st.sampled_from([0, 1, 3]))).astype(np.float32)
    labels = rng.integers(0, c, size=s)
    with_scale = draw(st.booleans()) if cost_scale is None else cost_scale
    scale = rng.choice([0.25, 0.5, 1.0, 1.5], size=(m, s)) if with_scale else None
    return LogitCache(logits=logits, labels=labels, cost_scale=scale, source="<hypothesis>")


@_sizes_at_least(max_batch=1)
@st.composite
def profiles(draw, models=("m0", "m1", "m2", "m3"), max_batch: int = 4, energy: bool = True) -> Profile:
    """Small device profiles: every model at batch sizes 1..max_batch, latencies as samples or quantiles."""
    entries = {}
    for name in models:
        base_ms = draw(st.integers(1, 8)) * 0.5
        batches = {}
        for b in range(1, max_batch + 1):
            batches[b] = BatchEntry(latency=draw(_latency(base_ms * (1 + 0.3 * (b - 1)))),
                                    energy_j=base_ms * b * 0.01 if energy else None)
        own_overhead = draw(st.one_of(st.none(), st.sampled_from([0.0, 0.1, 0.5])))
        entries[name] = ModelEntry(batches=batches, decision_overhead_ms=own_overhead)
    return Profile(name="hypothesis", device={"name": "test", "kind": "cpu"},
                   idle_power_w=draw(st.sampled_from([0.0, 5.0, 30.0])) if energy else None,
                   decision_overhead_ms=draw(st.sampled_from([0.0, 0.02, 0.5])), provenance={"source": "derived"},
                   models=entries, dispatch_overhead_ms=draw(st.sampled_from([0.0, 0.0, 0.05])),
                   idle_dispatch_ms=draw(st.sampled_from([None, None, 0.0, 0.2])),
                   release_cost_ms=draw(st.sampled_from([0.0, 0.0, 0.05, 0.4])),
                   wakeup=draw(st.one_of(st.none(), st.sampled_from([((1.0,), (1.5,)),
                                                                     ((0.5, 2.0, 5.0), (1.2, 1.2, 2.0))]))),
                   wakeup_decay=draw(st.sampled_from([0.0, 0.0, 0.5, 0.9])),
                   member_idle=draw(st.one_of(st.none(), st.sampled_from([((2.0,), (1.3,)),
                                                                          ((1.0, 4.0, 16.0), (0.9, 1.1, 1.4))]))),
                   speed_noise=draw(st.one_of(st.none(), st.sampled_from([SpeedNoise(0.3, 2.0),
                                                                          SpeedNoise(0.1, 0.5),
                                                                          SpeedNoise(0.1, 1.0, 0.2)]))))


@st.composite
def _latency(draw, center_ms: float) -> LatencyDistribution:
    if draw(st.booleans()):
        ticks = draw(st.lists(st.integers(1, 6), min_size=1, max_size=8))
        return LatencyDistribution(samples_ms=center_ms * np.asarray(ticks, dtype=float) / 3.0)
    return LatencyDistribution(quantile_probs=np.array([0.1, 0.5, 0.9]),
                               quantile_ms=center_ms * np.array([0.8, 1.0, draw(st.sampled_from([1.0, 1.5, 3.0]))]))


@_sizes_at_least(n=0)
def arrival_times(n: int):
    """Sorted arrival times (s) of n requests on a coarse grid (ties common), starting at 0 or later."""
    return st.lists(st.integers(0, 12), min_size=n, max_size=n).map(
        lambda gaps: np.cumsum(np.asarray(gaps, dtype=float)) * _TICK_S)


def arrival_specs():
    """Arrival specifications as the ``arrivals`` config field takes them (Poisson, Gamma, MMPP, closed loops)."""
    load = st.sampled_from([0.3, 0.6, 0.9, 1.2])
    return st.one_of(
        load.map(lambda x: f"poisson:load={x}"),
        st.tuples(load, st.sampled_from([0.5, 2.0, 4.0])).map(lambda t: f"gamma:load={t[0]}:{t[1]}"),
        st.tuples(load, st.sampled_from([0.01, 0.1])).map(lambda t: f"mmpp:load={t[0]}:{t[1]}"),
        st.integers(1, 4).map(lambda c: f"closed:{c}"),
    )


@_sizes_at_least(n_stages=1)
@st.composite
def policies(draw, n_stages: int, custom=None, custom_params=()):
    """A composition of built-in policies valid for `n_stages` stages (plus `custom`, a user's Numba policy)."""
    k = n_stages
    chosen = []
    level_t = st.one_of(st.just(np.inf), st.just(-np.inf), st.sampled_from([0.0, 0.2, 0.5, 0.8, 0.95, 1.0]))
    if k > 1 and draw(st.booleans()):
        chosen.append(pol.Threshold(tuple(draw(st.lists(level_t, min_size=k - 1, max_size=k - 1)))))
    if draw(st.integers(0, 3)) == 0:
        chosen.append(pol.StaticK(draw(st.integers(1, k))))
    if draw(st.booleans()):
        chosen.append(pol.DeadlineAware(draw(st.sampled_from([0.0, 0.5, 0.9, 1.0]))))
    if draw(st.booleans()):
        chosen.append(pol.EnergyBudget())
    if draw(st.integers(0, 3)) == 0:
        chosen.append(pol.PowerCap(draw(st.sampled_from([5.0, 20.0, 100.0])), draw(st.sampled_from([0.01, 0.1]))))
    if draw(st.integers(0, 3)) == 0:
        chosen.append(pol.LoadAdaptive(((0, k, None), (draw(st.integers(1, 3)), draw(st.integers(1, k)), None))))
    if draw(st.integers(0, 4)) == 0:
        chosen.append(pol.Oracle())
    if custom is not None:
        chosen.append(pol.CustomPolicy(custom, tuple(custom_params)))
    return chosen


@_sizes_at_least(max_requests=1, max_stages=1, max_devices=1, max_batch=1)
@st.composite
def simulation_inputs(draw, max_requests: int = 40, max_stages: int = 4, max_devices: int = 3, max_batch: int = 4,
                      policy_strategy=policies, batch_one: bool = False, closed: bool | None = None,
                      energy: bool = True) -> SimulationInputs:
    """Complete engine inputs: cache, stages, profiles of 1..max_devices replicas, workload and policy.

    `policy_strategy`: a function ``n_stages -> strategy of policy lists`` (default: `policies`; e.g.
    ``lambda k: policies(k, custom=my_policy)``).
    `batch_one`: batch-1 serving only. `closed`: force a closed (True) or open (False) loop.
    """
    cache = draw(logit_caches())
    n_stages = draw(st.integers(1, min(max_stages, 4)))
    members = draw(st.lists(st.integers(0, cache.n_members - 1), min_size=n_stages, max_size=n_stages))
    stages = stage_signals(cache.logits, cache.labels, members, draw(st.sampled_from(COMBINERS)),
                           draw(st.sampled_from(SIGNALS)))
    chosen = draw(policy_strategy(n_stages))
    compiled = pol.compose(chosen, n_stages)
    batch = 1 if batch_one else draw(st.integers(1, max_batch))
    n_devices = draw(st.integers(1, max_devices))
    models = [f"m{m % 4}" for m in members]
    devices = tuple(device_tables(draw(profiles(max_batch=batch, energy=energy)), models, batch,
                                  compiled.deadline_quantile) for _ in range(n_devices))
    n = draw(st.integers(1, max_requests))
    is_closed = draw(st.booleans()) if closed is None else closed
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = cache.cost_scale[members] if cache.cost_scale is not None else np.ones(stages.signal.shape)
    arrival_s = np.zeros(0) if is_closed else draw(arrival_times(n))
    # a speed trace shorter than the run (fraction 0.2) makes the engines wrap around it
    horizon_s = horizon_bound_s(arrival_s, n, devices) * draw(st.sampled_from([1.0, 0.2]))
    return SimulationInputs(
        stages=stages, cost_scale=np.ascontiguousarray(scale), devices=devices, arrival_s=arrival_s,
        clients=draw(st.integers(1, 4)) if is_closed else 0,
        sample=rng.integers(0, cache.n_samples, size=n).astype(np.int32),
        draw=rng.integers(0, GRID, size=(n, n_stages)).astype(np.uint16),
        deadline_s=_per_request(draw, rng, n, [0.001, 0.003, 0.01, np.inf]),
        energy_budget_j=_per_request(draw, rng, n, [0.005, 0.02, 0.1, np.inf]),
        max_batch=batch, edf=draw(st.booleans()), policy=compiled,
        speed=device_speed(devices, horizon_s, rng), record_batches=draw(st.booleans()),
    )


def _per_request(draw, rng, n: int, values) -> np.ndarray:
    if draw(st.booleans()):
        return np.array([draw(st.sampled_from(values))])
    return rng.choice(values, size=n).astype(np.float64)


# ----------------------------------------------------------------------------------------------- checks

def run_both(inputs: SimulationInputs) -> SimulationResult:
    """Run the Numba engine and the SimPy reference engine; assert identical outputs; return the Numba result."""
    from simulator.run import run_inputs

    fast, reference = run_inputs(inputs, "numba"), run_inputs(inputs, "simpy")
    assert_same_results(fast, reference)
    return fast


def assert_same_results(a: SimulationResult, b: SimulationResult) -> None:
    """Assert that two results are bit-identical, request by request and batch-stage by batch-stage."""
    for records in ("requests", "batches"):
        cols_a, cols_b = getattr(a, records).to_dict(), getattr(b, records).to_dict()
        for name in cols_a:
            x, y = cols_a[name], cols_b[name]
            same = x.shape == y.shape and np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
            assert same, f"{records}.{name} differ: first at {_first_difference(x, y)}"
    for name in ("device_busy_s", "device_energy_j"):
        assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), f"{name} differ"


def _first_difference(x: np.ndarray, y: np.ndarray):
    if x.shape != y.shape:
        return f"shapes {x.shape} vs {y.shape}"
    i = int(np.flatnonzero(~((x == y) | (np.isnan(x) & np.isnan(y)) if x.dtype.kind == "f" else x == y))[0])
    return f"index {i}: {x[i]!r} vs {y[i]!r}"


def check_invariants(result: SimulationResult, inputs: SimulationInputs) -> None:
    """Assert the invariants of the simulation contract on `result` (raises AssertionError naming the one broken).

    - every request finishes exactly once, after 1..n_stages stages, and ``arrival <= start <= finish``;
    - FIFO queues start requests in arrival order (per device when each device has its own queue);
    - utilisation lies in [0, 1] and device busy time fits in the horizon, within the rounding of the run's
      absolute times (`_rounding_slack_s`);
    - the per-request energy adds up to the batch-stages' energy (when both are known);
    - the load-adaptive, static-k and deadline rules hold where they apply (see `check_deadline_rule`).
    """
    req = result.requests
    n, k = inputs.n_requests, inputs.n_stages
    assert len(req) == n, "not every request has a record"
    assert np.all(np.isfinite(req.finish_s)), "a request never finished"
    assert np.all((req.stages_run >= 1) & (req.stages_run <= k)), "stages_run outside [1, n_stages]"
    assert np.all(req.arrival_s <= req.start_s) and np.all(req.start_s <= req.finish_s), "arrival <= start <= finish"
    if not inputs.edf:
        queues = [req.start_s] if inputs.assignment is None else [req.start_s[req.device == d]
                                                                  for d in range(inputs.n_devices)]
        for starts in queues:
            assert np.all(np.diff(starts) >= 0), "FIFO: requests did not start in arrival order"
    s = result.summary
    slack_s = _rounding_slack_s(result)
    assert 0.0 <= s.utilisation and s.utilisation * s.horizon_s <= s.horizon_s + slack_s, \
        f"utilisation {s.utilisation} outside [0, 1]"
    assert np.all(result.device_busy_s <= s.horizon_s + slack_s), "a device was busy beyond the horizon"
    params = inputs.policy.params
    levels = np.zeros(n, dtype=np.int64)             # `policies.load_level` of each request's queue length
    for level in range(1, params.level_queue_len.shape[0]):
        levels[req.queue_len >= params.level_queue_len[level]] = level
    assert np.all(req.stages_run <= params.max_stages[levels]), \
        "ran more stages than max_stages allows at the load level of its queue length"
    if len(result.batches) and np.isfinite(result.batches.energy_j).all():
        assert np.isclose(req.energy_j.sum(), result.batches.energy_j.sum(), rtol=1e-9), "energy does not add up"
    check_deadline_rule(result, inputs)


def _rounding_slack_s(result: SimulationResult) -> float:
    """How far a device's busy time (a sum of durations) may exceed the horizon (a difference of absolute times)
    by rounding alone: a few ulps of the latest time per stage run (at 1e9 s an ulp is 1.2e-7 s, longer than a
    short stage). Counted from the requests' stages, as the batch-stage log may not be kept."""
    req = result.requests
    latest_s = float(np.abs(req.finish_s).max()) if len(req) else 0.0
    return 4 * np.finfo(float).eps * max(latest_s, 1.0) * (int(req.stages_run.sum()) + 1)


def check_deadline_rule(result: SimulationResult, inputs: SimulationInputs) -> None:
    """With the deadline-aware policy at batch 1, no stage after the first starts once its estimate misses.

    Reconstructs each request's stage start times from the batch-stage log (batch 1: a request's stages are
    consecutive entries of its device's log).
    """
    if not inputs.policy.params.deadline_aware or inputs.max_batch != 1 or not len(result.batches):
        return
    req, log = result.requests, result.batches
    order = np.lexsort((log.start_s, log.device))
    entries = {d: list(order[log.device[order] == d]) for d in np.unique(log.device)}
    cursor = {d: 0 for d in entries}
    for r in np.argsort(req.start_s, kind="stable"):
        d = int(req.device[r])
        mine = entries[d][cursor[d]:cursor[d] + int(req.stages_run[r])]
        cursor[d] += int(req.stages_run[r])
        deadline = inputs.deadline_s[r] if inputs.deadline_s.shape[0] > 1 else inputs.deadline_s[0]
        for i in mine[1:]:
            estimate = inputs.devices[d].est_latency_s[log.stage[i], 0]
            assert log.start_s[i] - req.arrival_s[r] + estimate <= deadline, \
                f"request {r} started stage {log.stage[i]} although its estimate missed the deadline"


__all__ = ["logit_caches", "profiles", "arrival_times", "arrival_specs", "policies", "simulation_inputs", "run_both",
           "assert_same_results", "check_invariants", "check_deadline_rule", "FlexsimError"]
