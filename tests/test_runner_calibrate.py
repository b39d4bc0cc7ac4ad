"""The diagnostics of real-vs-simulated errors: service replay and speed calibration (exact, no timing)."""

from types import SimpleNamespace

import numpy as np

from simulator.engine_numba import simulate_numba
from simulator.runner.calibrate import calibrated, replay_service_ms, scaled, speed_factors
from tests.helpers import constant_profile, tiny_inputs


def _run(arrival_s, service_s, start_s=None, stage=(), compute_s=(), decision_s=()):
    arrival_s = np.asarray(arrival_s, dtype=float)
    start_s = arrival_s if start_s is None else np.asarray(start_s, dtype=float)
    requests = SimpleNamespace(arrival_s=arrival_s, start_s=start_s, finish_s=start_s + np.asarray(service_s))
    times = SimpleNamespace(stage=np.asarray(stage, dtype=np.int8), compute_s=np.asarray(compute_s, dtype=float),
                            decision_s=np.asarray(decision_s, dtype=float))
    return SimpleNamespace(requests=requests, stage_times=times)


def test_service_replay_open_loop_is_the_lindley_recursion():
    run = _run([0.0, 1.0, 1.5, 9.0], [2.0, 1.0, 1.0, 0.5])
    np.testing.assert_allclose(replay_service_ms(run, clients=0), [2000.0, 2000.0, 2500.0, 500.0])


def test_service_replay_closed_loop_releases_at_finishes():
    run = _run([0.0, 0.0, 0.0], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(replay_service_ms(run, clients=1), [1000.0, 2000.0, 3000.0])
    np.testing.assert_allclose(replay_service_ms(run, clients=2), [1000.0, 3000.0, 5000.0])


def test_speed_factors_compare_the_run_with_the_profile():
    profile = constant_profile(latency_ms=2.0, overhead_ms=0.5)
    run = _run([0.0], [1.0], stage=[0, 1, 0, 1], compute_s=[0.003, 0.003, 0.003, 0.003],
               decision_s=[0.001] * 4)
    stage_factors, decision_factor = speed_factors(run, ("m", "m"), profile)
    np.testing.assert_allclose(stage_factors, [1.5, 1.5])
    assert decision_factor == 2.0


def test_calibrated_inputs_scale_latency_and_overhead_but_not_the_estimates():
    inputs = tiny_inputs([0.0, 0.1, 0.2], latency_ms=1.0, n_stages=2)
    scaled = calibrated(inputs, np.array([2.0, 3.0]), 1.0)
    np.testing.assert_allclose(scaled.devices[0].latency_s[:, 0, 0], [0.002, 0.003])
    np.testing.assert_array_equal(scaled.devices[0].est_latency_s, inputs.devices[0].est_latency_s)
    base, slow = simulate_numba(inputs), simulate_numba(scaled)
    np.testing.assert_array_equal(base.stages_run, slow.stages_run)
    assert np.all(slow.finish_s - slow.start_s > base.finish_s - base.start_s)


def test_scaled_inputs_scale_every_stage_and_the_overhead_by_one_factor():
    inputs = tiny_inputs([0.0, 0.1, 0.2], latency_ms=1.0, n_stages=2)
    once = scaled(inputs, 1.5)
    by_stage = calibrated(inputs, np.array([1.5, 1.5]), 1.5)
    np.testing.assert_array_equal(once.devices[0].latency_s, by_stage.devices[0].latency_s)
    np.testing.assert_allclose(once.devices[0].overhead_s, inputs.devices[0].overhead_s * 1.5)
