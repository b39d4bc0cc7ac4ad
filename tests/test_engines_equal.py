"""The Numba engine equals the SimPy reference engine, request by request, on many small random configurations."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from simulator import testing


@given(testing.simulation_inputs())
def test_numba_equals_simpy_general(inputs):
    result = testing.run_both(inputs)
    testing.check_invariants(result, inputs)


@given(testing.simulation_inputs(max_devices=1, batch_one=True, closed=False))
def test_numba_equals_simpy_single_server(inputs):
    result = testing.run_both(inputs)
    testing.check_invariants(result, inputs)


@njit
def stop_on_long_queue(state, params):
    """A user policy: stop after the first stage whenever more than params[0] requests wait."""
    return state.queue_len > params[0] or state.energy_j > params[1]


@settings(max_examples=25)
@given(testing.simulation_inputs(policy_strategy=lambda k: testing.policies(k, custom=stop_on_long_queue,
                                                                           custom_params=(1.0, 0.05))))
def test_custom_policy_runs_identically_in_both_engines(inputs):
    result = testing.run_both(inputs)
    testing.check_invariants(result, inputs)


@given(testing.simulation_inputs())
def test_determinism_run_after_run(inputs):
    from simulator.run import run_inputs

    first, second = run_inputs(inputs), run_inputs(inputs)
    testing.assert_same_results(first, second)


def test_same_time_events_are_ordered():
    """Arrivals at the instant a device frees are queued before it dispatches (batch of both)."""
    from tests.helpers import tiny_inputs

    inputs = tiny_inputs(arrival_s=[0.0, 0.001, 0.001, 0.001], latency_ms=1.0, max_batch=3, n_stages=1)
    result = testing.run_both(inputs)
    # request 0 runs alone over [0, 1 ms]; at 1 ms the three arrivals are all waiting and go as one batch
    assert list(result.requests.start_s) == [0.0, 0.001, 0.001, 0.001]
    assert list(result.batches.batch_size) == [1, 3]
    assert np.all(result.requests.queue_len[1:] == 0)


@settings(max_examples=20)
@given(testing.arrival_specs(), st.integers(0, 2**16), st.sampled_from([1, 4]))
def test_configurations_from_arrival_specs(arrivals, seed, batch_size):
    from simulator.config import RunConfig
    from simulator.run import prepare

    inputs = prepare(RunConfig(requests=300, arrivals=arrivals, seed=seed, batch_size=batch_size))
    testing.check_invariants(testing.run_both(inputs), inputs)


def test_wakeup_factor_is_piecewise_linear_through_one_at_zero():
    from simulator.engine_numba import wakeup_factor

    points, factors = np.array([0.001, 0.005]), np.array([1.2, 2.0])
    assert wakeup_factor(0.0, points, factors) == 1.0
    assert wakeup_factor(0.0005, points, factors) == pytest.approx(1.1)
    assert wakeup_factor(0.003, points, factors) == pytest.approx(1.6)
    assert wakeup_factor(1.0, points, factors) == 2.0
    assert wakeup_factor(0.5, np.array([np.inf]), np.array([1.0])) == 1.0


def test_first_stage_after_idle_pays_the_wakeup_and_dispatch_overhead():
    import dataclasses

    from tests.helpers import tiny_inputs

    inputs = tiny_inputs(arrival_s=[0.002, 0.0025, 0.010], latency_ms=1.0, n_stages=2,
                         policies=[__import__("simulator.policies", fromlist=["StaticK"]).StaticK(2)])
    dev = dataclasses.replace(inputs.devices[0], wakeup_idle_s=np.array([0.001]), wakeup_factor=np.array([1.5]),
                              dispatch_overhead_s=0.0001)
    result = testing.run_both(dataclasses.replace(inputs, devices=(dev,)))
    log = result.batches
    durations = log.end_s - log.start_s
    # request 0 starts after 2 ms idle (factor 1.5) and pays the dispatch overhead; its second stage does not;
    # request 1 waited in the queue (no idle): only the dispatch overhead; request 2 again after idle
    assert durations == pytest.approx([0.0016, 0.001, 0.0011, 0.001, 0.0016, 0.001])
    # a worker woken from idle pays its own dispatch overhead: requests 0 and 2, not the queued request 1
    woken = dataclasses.replace(dev, idle_dispatch_s=0.0003)
    log = testing.run_both(dataclasses.replace(inputs, devices=(woken,))).batches
    assert log.end_s - log.start_s == pytest.approx([0.0018, 0.001, 0.0011, 0.001, 0.0018, 0.001])


def test_arrivals_during_a_stage_run_cost_the_busy_device_its_release_cost():
    """Open loop: a stage run takes the release cost longer per request arriving while it runs, the extra time
    included (a fixed point); a request arriving at its start came before; a closed loop pays nothing."""
    import dataclasses

    from simulator.policies import StaticK
    from tests.helpers import tiny_inputs

    inputs = tiny_inputs(arrival_s=[0.002, 0.0029, 0.00305, 0.00318, 0.020], latency_ms=1.0, n_stages=2,
                         policies=[StaticK(2)], n_samples=5)
    dev = dataclasses.replace(inputs.devices[0], release_cost_s=0.0001)
    log = testing.run_both(dataclasses.replace(inputs, devices=(dev,))).batches
    # request 0's first stage from 2 ms: 2.9 arrives, then (its 0.1 ms pushing the end to 3.1) 3.05, then 3.18
    assert (log.end_s - log.start_s) * 1000.0 == pytest.approx([1.3] + [1.0] * 9)
    assert log.energy_j[0] == pytest.approx(log.energy_j[1] + 0.0003 * dev.idle_power_w)
    closed = tiny_inputs(arrival_s=[], latency_ms=1.0, n_stages=2, policies=[StaticK(2)], clients=2)
    plain = testing.run_both(closed).batches
    costly = testing.run_both(dataclasses.replace(closed, devices=(dataclasses.replace(closed.devices[0],
                                                                                        release_cost_s=0.0001),)))
    np.testing.assert_array_equal(costly.batches.end_s, plain.end_s)


def test_wakeup_fades_over_the_busy_period_by_its_decay():
    """Stage j of a busy period after idle takes 1 + (factor - 1) * decay**j times as long, across requests;
    a new busy period starts over."""
    import dataclasses

    from tests.helpers import tiny_inputs

    inputs = tiny_inputs(arrival_s=[0.002, 0.002, 0.020], latency_ms=1.0, n_stages=2,
                         policies=[__import__("simulator.policies", fromlist=["StaticK"]).StaticK(2)])
    dev = dataclasses.replace(inputs.devices[0], wakeup_idle_s=np.array([0.001]), wakeup_factor=np.array([2.0]),
                              wakeup_decay=0.5)
    log = testing.run_both(dataclasses.replace(inputs, devices=(dev,))).batches
    durations = log.end_s - log.start_s
    expected = [2.0, 1.5, 1.25, 1.125, 2.0, 1.5]      # requests 0 and 1 share one busy period, request 2 starts anew
    assert durations * 1000.0 == pytest.approx(expected)


def test_member_idle_factor_follows_the_members_own_idle_time():
    import dataclasses

    from simulator.policies import StaticK
    from tests.helpers import tiny_inputs

    """Stage k starting t after its member last ended takes factor(t) times as long (piecewise linear through
    (0, 1)), counted per member: here the device idles 1 ms, member 0 2 ms and member 1 2.1 ms."""
    inputs = tiny_inputs(arrival_s=[0.0, 0.003], latency_ms=1.0, n_stages=2, policies=[StaticK(2)])
    dev = dataclasses.replace(inputs.devices[0], member_idle_s=np.array([0.001, 0.003]),
                              member_factor=np.array([1.0, 1.2]))
    log = testing.run_both(dataclasses.replace(inputs, devices=(dev,))).batches
    durations_ms = (log.end_s - log.start_s) * 1000.0
    # request 0: member 0 idle 0 (factor 1), member 1 idle 1 ms since time 0 (factor 1.0);
    # request 1 at 3 ms: member 0 ended at 1 ms: idle 2 ms, 1.1; member 1 ended at 2 ms and starts at 4.1 ms:
    # idle 2.1 ms, 1.11
    assert durations_ms == pytest.approx([1.0, 1.0, 1.1, 1.11])


@njit
def refuse_long_queues(state, params):
    """A user policy that raises on states the neutral check does not reach."""
    if state.queue_len > params[0]:
        raise ValueError("queue too long")
    return True


def test_a_custom_policy_raising_inside_an_engine_is_named_in_one_line():
    import dataclasses

    from simulator.errors import FlexsimError
    from simulator.policies import CustomPolicy, compose
    from simulator.run import run_inputs
    from tests.helpers import tiny_inputs

    inputs = tiny_inputs(arrival_s=[0.0] * 6, latency_ms=1.0, n_stages=2)
    inputs = dataclasses.replace(inputs, policy=compose([CustomPolicy(refuse_long_queues, (2.0,))], 2))
    for engine in ("numba", "simpy"):
        with pytest.raises(FlexsimError, match="custom policy refuse_long_queues failed during the simulation: "
                                               "ValueError: queue too long"):
            run_inputs(inputs, engine)


@pytest.mark.parametrize("changes", [{}, {"devices": 2}, {"record_batches": False}])
def test_a_run_without_dynamic_features_compiles_their_tests_out_and_gives_the_same_results(changes):
    """`engine_numba._variant` compiles the tests of absent features (speed process, wake-up, power cap, load
    levels, stateful policies, the log) out of the kernels; the kernels with those tests compiled in, on the same
    inputs, give the same outputs to the bit."""
    from simulator.config import RunConfig
    from simulator.engine_numba import _kernel_args, _kernel_builtin
    from simulator.results import RawOutputs
    from simulator.run import prepare

    inputs = prepare(RunConfig(requests=3000, arrivals="poisson:load=0.9", **changes))
    logging = True if inputs.record_batches else None
    outputs = []
    for variant in ((None, logging), (True, True)):
        out = RawOutputs.allocate(inputs)
        *args, chosen = _kernel_args(inputs, out)
        assert chosen == (None, logging)
        outputs.append(out.trimmed(_kernel_builtin(inputs.policy.params, *args, variant)))
    plain, full = outputs
    for name in ("start_s", "finish_s", "stages_run", "prediction", "energy_j", "device", "batch_end_s",
                 "device_busy_s", "device_energy_j"):
        np.testing.assert_array_equal(getattr(plain, name), getattr(full, name), err_msg=name)
    assert len(plain.batch_end_s) == (plain.stages_run.sum() if inputs.record_batches else 0)


def test_a_deadline_policy_or_a_speed_process_makes_the_run_dynamic():
    from simulator.config import RunConfig
    from simulator.engine_numba import _kernel_args
    from simulator.results import RawOutputs
    from simulator.run import prepare

    for changes in ({"policy": ("threshold", "deadline"), "deadline_ms": 5.0}, {"speed_noise": (0.1, 2.0)},
                    {"policy": ("power-cap",), "power_cap_w": 300.0}, {"policy": ("load-adaptive",),
                                                                        "load_levels": "0:6;4:2"}):
        inputs = prepare(RunConfig(requests=100, **changes))
        assert _kernel_args(inputs, RawOutputs.allocate(inputs))[-1][0] is True, changes
