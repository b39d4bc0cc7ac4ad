"""Invariants of the simulation on the shipped ensemble, and agreement with queueing theory."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import policies as pol
from simulator import testing
from simulator.config import RunConfig
from simulator.logits import load_cache
from simulator.run import prepare, run_inputs
from simulator.signals import softmax

CACHE = load_cache("fmnist")


def _inputs(**changes):
    return prepare(RunConfig(**{"requests": 10_000, **changes}), cache=CACHE)


def _with_policy(inputs, *policies):
    return dataclasses.replace(inputs, policy=pol.compose(list(policies), inputs.n_stages))


def test_infinite_thresholds_give_the_full_ensemble_and_minus_infinity_the_single_model():
    inputs = _inputs()
    mean_probs = softmax(CACHE.logits[:6]).mean(axis=0)
    full_accuracy = np.mean(mean_probs.argmax(axis=1) == CACHE.labels)
    full = run_inputs(_with_policy(inputs, pol.Threshold((np.inf,) * 5)))
    assert full.summary.accuracy == full_accuracy and np.all(full.requests.stages_run == 6)
    single_accuracy = np.mean(CACHE.logits[0].argmax(axis=1) == CACHE.labels)
    single = run_inputs(_with_policy(inputs, pol.Threshold((-np.inf,) * 5)))
    assert single.summary.accuracy == single_accuracy and np.all(single.requests.stages_run == 1)


INPUTS_2000 = _inputs(requests=2000)
GRID_VALUES = st.sampled_from([-np.inf, 0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, np.inf])


@settings(max_examples=40)
@given(st.lists(GRID_VALUES, min_size=5, max_size=5), st.integers(0, 4), st.floats(0.01, 1.0))
def test_raising_a_threshold_never_lowers_any_requests_stages(thresholds, i, delta):
    raised = list(thresholds)
    raised[i] = raised[i] + delta if raised[i] + delta <= 1.0 else np.inf     # past 1 (signals' top): never stop
    low = run_inputs(_with_policy(INPUTS_2000, pol.Threshold(tuple(thresholds))))
    high = run_inputs(_with_policy(INPUTS_2000, pol.Threshold(tuple(raised))))
    assert np.all(high.requests.stages_run >= low.requests.stages_run)


def test_oracle_is_an_upper_bound_on_accuracy():
    inputs = _inputs()
    oracle = run_inputs(_with_policy(inputs, pol.Oracle()))
    full = run_inputs(_with_policy(inputs, pol.Threshold((np.inf,) * 5)))
    assert oracle.summary.accuracy >= full.summary.accuracy
    assert oracle.summary.mean_stages < full.summary.mean_stages


def test_mean_wait_matches_pollaczek_khinchine():
    """M/G/1: static 6 stages at batch 1 under Poisson arrivals; mean wait = lambda E[S^2] / (2 (1 - rho))."""
    inputs = _inputs(requests=400_000, arrivals="poisson:load=0.7", seed=5, policy=("static",), static_k=6)
    dev = inputs.devices[0]
    per_stage = dev.latency_s[:, 0, :] + dev.overhead_s[:, None]
    mean_s = per_stage.mean(axis=1).sum()
    second_moment = per_stage.var(axis=1).sum() + mean_s ** 2
    rate = 1.0 / np.diff(inputs.arrival_s).mean()
    rho = rate * mean_s
    expected_wait = rate * second_moment / (2 * (1 - rho))
    result = run_inputs(inputs)
    wait = np.mean(result.requests.start_s - result.requests.arrival_s)
    assert 0.65 < rho < 0.75
    assert wait == pytest.approx(expected_wait, rel=0.06)


def test_littles_law_over_a_window_of_a_long_run():
    result = run_inputs(_inputs(requests=200_000, arrivals="gamma:load=0.85:2", seed=7))
    req = result.requests
    t0, t1 = np.quantile(req.arrival_s, [0.2, 0.8])
    grid = np.linspace(t0, t1, 20_001)
    in_system = (np.searchsorted(np.sort(req.arrival_s), grid, side="right")
                 - np.searchsorted(np.sort(req.finish_s), grid, side="right"))
    arrived = (req.arrival_s >= t0) & (req.arrival_s < t1)
    rate = arrived.sum() / (t1 - t0)
    mean_latency_s = req.latency_ms[arrived].mean() / 1000.0
    assert in_system.mean() == pytest.approx(rate * mean_latency_s, rel=0.05)


def test_closed_loop_with_one_client_never_queues():
    result = run_inputs(_inputs(requests=500, arrivals="closed"))
    req = result.requests
    assert np.array_equal(req.arrival_s[1:], req.finish_s[:-1])
    assert np.array_equal(req.start_s, req.arrival_s) and np.all(req.queue_len == 0)


def test_closed_loop_with_many_clients_keeps_the_device_busy():
    result = run_inputs(_inputs(requests=2000, arrivals="closed:4"))
    assert result.summary.utilisation > 0.999
    assert np.max(result.requests.queue_len) <= 3


def test_device_energy_is_stage_energy_plus_idle_power_over_idle_time():
    result = run_inputs(_inputs(requests=5000, arrivals="poisson:load=0.5"))
    s = result.summary
    idle_w = 77.5
    expected = result.batches.energy_j.sum() + idle_w * (s.horizon_s - result.device_busy_s.sum())
    assert s.device_energy_j == pytest.approx(expected, rel=1e-9)
    assert s.average_power_w == pytest.approx(expected / s.horizon_s)


def test_dynamic_batching_forms_batches_under_load():
    result = run_inputs(_inputs(requests=5000, arrivals="poisson:load=1.5", batch_size=8))
    sizes = result.batches.batch_size
    assert sizes.max() > 1 and sizes.max() <= 8
    assert result.summary.utilisation < 1.0 + 1e-12


def test_replicas_share_the_load():
    result = run_inputs(_inputs(requests=20_000, arrivals="poisson:load=0.8", devices=2))   # load = per device
    counts = np.bincount(result.requests.device, minlength=2)
    assert counts.min() > 0.4 * counts.sum()
    assert result.summary.utilisation == pytest.approx(0.8, abs=0.05)


@pytest.mark.parametrize("dispatch", ["round-robin", "random"])
def test_per_device_queues_serve_their_own_requests(dispatch):
    from simulator import testing

    inputs = _inputs(requests=3000, arrivals="poisson:load=0.9", devices=3, dispatch=dispatch, seed=2)
    result = testing.run_both(inputs)
    testing.check_invariants(result, inputs)
    req = result.requests
    if dispatch == "round-robin":
        assert np.array_equal(req.device, np.arange(3000) % 3)
    for d in range(3):
        mine = req.device == d
        assert np.all(np.diff(req.start_s[mine]) >= 0)          # each device serves its own queue in order
        ends = result.batches.end_s[result.batches.device == d]
        starts = result.batches.start_s[result.batches.device == d]
        assert np.all(starts[1:] >= ends[:-1])                  # one worker per device


def test_per_device_queues_need_an_open_loop():
    from simulator.errors import FlexsimError

    with pytest.raises(FlexsimError, match="per-device queues need open-loop"):
        _inputs(requests=100, arrivals="closed:2", devices=2, dispatch="random")


def test_inputs_changed_by_hand_are_checked_before_the_engines_index_with_them():
    import dataclasses

    from simulator.config import RunConfig
    from simulator.errors import FlexsimError
    from simulator.policies import Threshold, compose
    from simulator.run import prepare

    inputs = prepare(RunConfig(requests=100))
    n = inputs.n_requests
    for change, message in ((dict(sample=np.full(n, 10 ** 6, np.int32)), "sample must be int32 indices"),
                            (dict(sample=np.full(n, -5, np.int32)), "sample must be int32 indices"),
                            (dict(draw=np.full(inputs.draw.shape, 60000, np.uint16)), "draw must be uint16"),
                            (dict(arrival_s=inputs.arrival_s[::-1].copy()), "arrival_s must be finite and sorted"),
                            (dict(policy=compose([Threshold((np.inf,))], 2)), "compiled for 2 stages")):
        with pytest.raises(FlexsimError, match=message):
            dataclasses.replace(inputs, **change)


def test_extreme_but_accepted_speed_processes_and_arrivals_run_in_bounded_time():
    from simulator import simulate
    from simulator.errors import FlexsimError

    for noise in ((0, 1, 0, 2, 1e-300, 1), (0, 1, 0, 2, 0.5, 1e30), (0, 1, 0, 2, 5e-324, 1)):
        assert simulate(requests=50, speed_noise=noise).summary.n_requests == 50
    for arrivals in ("mmpp:100:200:1e6", "mmpp:load=0.5:1e20"):
        assert simulate(requests=50, arrivals=arrivals).summary.n_requests == 50
    with pytest.raises(FlexsimError, match="CV must be <= 100"):
        simulate(requests=50, arrivals="gamma:100:1e5")
    with pytest.raises(FlexsimError, match="simulate: unknown field"):
        simulate(requests=50, foo=1)
    with pytest.raises(FlexsimError, match="config must be a RunConfig"):
        simulate({"requests": 50})


def test_simulate_writes_its_outputs_where_out_is_given(tmp_path):
    from simulator import simulate

    simulate(requests=50, out=str(tmp_path / "run"))
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["batches.csv", "requests.csv", "summary.json"]


@pytest.mark.parametrize("make, message", [
    (lambda: testing.simulation_inputs(max_requests=0), "simulation_inputs: max_requests = 0 must be an integer >= 1"),
    (lambda: testing.simulation_inputs(max_devices=1.5), "max_devices = 1.5 must be an integer >= 1"),
    (lambda: testing.logit_caches(max_classes=1), "logit_caches: max_classes = 1 must be an integer >= 2"),
    (lambda: testing.policies(0), "policies: n_stages = 0"),
    (lambda: testing.arrival_times(-1), "arrival_times: n = -1"),
])
def test_strategies_name_impossible_sizes_when_made(make, message):
    from simulator.errors import FlexsimError

    with pytest.raises(FlexsimError, match=message):
        make()


def test_batch_records_name_the_member_each_stage_runs():
    """The contract's per batch-stage `member`: the cache member, not the stage's position."""
    from simulator import simulate

    result = simulate(members=(3, 1), thresholds=(np.inf,), requests=5, arrivals="poisson:load=0.3")
    assert list(result.batches.stage[:2]) == [0, 1] and list(result.batches.member[:2]) == [3, 1]
    assert set(result.batches.member) == {1, 3}


def test_check_invariants_catches_more_stages_than_the_load_level_allows():
    """The checks must be able to fail: a request that ran three stages at a load level allowing one."""
    import numpy as np
    import pytest

    from simulator import RunConfig, prepare, run_inputs
    from simulator.testing import check_invariants

    inputs = prepare(RunConfig(requests=2000, policy=("threshold", "load-adaptive"), load_levels="0:6;2:1",
                               arrivals="poisson:load=1.2"))
    result = run_inputs(inputs)
    check_invariants(result, inputs)
    result.requests.stages_run[np.flatnonzero(result.requests.queue_len >= 2)[0]] = 3
    with pytest.raises(AssertionError, match="at the load level of its queue length"):
        check_invariants(result, inputs)


@pytest.mark.parametrize("engine", ["numba", "simpy"])
def test_a_power_cap_above_every_draw_stops_nothing_however_long_the_idle_gaps(engine):
    """Stages draw 100 W, the idle device 10 W, the cap is 150 W: the bucket stays full, so the capped run is the
    uncapped one. (An idle gap's energy drawn from a bucket already refilled to capacity cut these requests to one
    stage: 10 J after a 1 s gap against a 0.15 J bucket.)"""
    from tests.helpers import tiny_inputs

    arrivals = [0.0, 1.0, 1.0005, 3.0, 3.001, 3.002]            # bursts after long idle gaps
    run_all = pol.Threshold((np.inf, np.inf))
    capped = run_inputs(tiny_inputs(arrivals, n_stages=3, policies=(run_all, pol.PowerCap(150.0, 0.001))), engine)
    free = run_inputs(tiny_inputs(arrivals, n_stages=3, policies=(run_all,)), engine)
    assert list(free.requests.stages_run) == [3] * len(arrivals)
    np.testing.assert_array_equal(capped.requests.stages_run, free.requests.stages_run)
    np.testing.assert_array_equal(capped.requests.finish_s, free.requests.finish_s)


def test_a_power_cap_below_the_stages_draw_holds_the_device_energy_to_the_cap():
    """A request every 4 ms whose three stages draw 100 W (0.1 J each; 77.5 W on average uncapped, idle 10 W) under a
    50 W cap with a 0.5 J bucket: requests are cut short, and the device's energy over the run is at most cap x time
    plus the bucket (plus one first stage, which always runs)."""
    from tests.helpers import tiny_inputs

    cap_w, window_s = 50.0, 0.01
    inputs = tiny_inputs(np.arange(500) * 0.004, n_stages=3, policies=(pol.Threshold((np.inf, np.inf)),
                                                                       pol.PowerCap(cap_w, window_s)))
    summary = run_inputs(inputs, "numba").summary
    assert 1.0 < summary.mean_stages < 2.0
    assert summary.device_energy_j <= cap_w * summary.horizon_s + cap_w * window_s + 0.1
    assert summary.average_power_w > 0.9 * cap_w                 # and it uses what the cap allows


def test_the_invariant_kit_allows_the_rounding_of_late_absolute_times_only():
    """Three 0.0123 ms stages at 1e9 s (the latest arrival allowed): the horizon is a difference of absolute times
    whose ulp is 1.2e-7 s, so the exact busy time exceeds it (utilisation 1.0017) by rounding alone, which the kit
    must accept; a busy time beyond that rounding is still caught."""
    from tests.helpers import tiny_inputs

    inputs = tiny_inputs(arrival_s=np.full(3, 1e9), latency_ms=0.0123, n_stages=1)
    result = run_inputs(inputs, "numba")
    assert result.summary.utilisation > 1.0
    testing.check_invariants(result, inputs)
    busier = dataclasses.replace(result, device_busy_s=result.device_busy_s * 1.5)
    with pytest.raises(AssertionError, match="busy beyond the horizon"):
        testing.check_invariants(busier, inputs)
