"""The serving factor (`simulator.runner.serving`): busy time per queued request, real over simulated."""

from types import SimpleNamespace

import numpy as np
import pytest

from simulator.run import run_inputs
from simulator.runner.calibrate import scaled
from simulator.runner.serving import fit_serving_factor, queued_busy_ms
from simulator.runner.validation import serving_factor
from tests.helpers import tiny_inputs


def test_queued_busy_time_counts_only_requests_that_waited():
    arrival_s = np.array([0.0, 0.5, 3.0, 3.1])
    finish_s = np.array([1.0, 2.0, 4.0, 4.5])   # request 1 waited (busy 1.0 s), 2 found the worker idle, 3 waited
    assert queued_busy_ms(arrival_s, finish_s) == (1500.0, 2)


def _records(inputs, factor):
    return run_inputs(scaled(inputs, factor), "numba").requests


def test_a_known_slowdown_is_recovered():
    arrival_s = np.sort(np.random.default_rng(3).uniform(0.0, 1.0, 400))
    inputs = tiny_inputs(arrival_s, latency_ms=2.0, n_stages=2)   # offered load ~1.6: queues form
    real = SimpleNamespace(requests=_records(inputs, 1.3))
    facts = fit_serving_factor([real], lambda i, seed, factor: _records(inputs, factor))
    assert abs(facts["factor"] - 1.3) < 1e-9
    assert facts["queued_requests"][0] > 300


def test_the_factor_at_the_bursts_levels_leaves_the_hosts_drift_out():
    # two runs served 1.1x slower than the profile at the profile's level, one while the host ran 1.2x slow and
    # one 0.9x: the factor at those levels is the 1.1 they leave; the factor used carries the drift as well
    arrival_s = np.sort(np.random.default_rng(5).uniform(0.0, 1.0, 400))
    inputs = tiny_inputs(arrival_s, latency_ms=2.0, n_stages=2)
    reals = [SimpleNamespace(requests=_records(inputs, 1.1 * level)) for level in (1.2, 0.9)]
    facts = fit_serving_factor(reals, lambda i, seed, scale: _records(inputs, scale), levels=[1.2, 0.9])
    assert facts["factor_at_levels"] == pytest.approx(1.1, rel=0.02) and facts["levels"] == [1.2, 0.9]
    assert facts["ratio_at_one"][0] > 1.25 and facts["ratio_at_one"][1] < 1.0
    without = fit_serving_factor(reals, lambda i, seed, scale: _records(inputs, scale))
    assert "levels" not in without and "factor_at_levels" not in without
    assert without["factor"] == facts["factor"] and without["ratio_at_one"] == facts["ratio_at_one"]
    assert facts["factor"] > 1.15                       # the two runs' drift (1.2 * 1.1 and 0.9 * 1.1) included


def test_levels_between_bursts_are_their_geometric_means():
    from simulator.errors import FlexsimError
    from simulator.runner.serving import levels_between

    assert levels_between([1.0, 1.21, 0.64]) == pytest.approx([1.1, 0.88])
    with pytest.raises(FlexsimError, match="at least two positive burst levels"):
        levels_between([1.0])
    with pytest.raises(FlexsimError, match="at least two positive burst levels"):
        levels_between([1.0, float("nan")])
    with pytest.raises(FlexsimError, match="one positive level per run"):
        fit_serving_factor([], lambda i, seed, scale: None, levels=[1.0])


def test_no_queue_gives_factor_one():
    inputs = tiny_inputs(np.arange(20) * 1.0, latency_ms=1.0)
    real = SimpleNamespace(requests=_records(inputs, 1.0))
    facts = fit_serving_factor([real], lambda i, seed, factor: _records(inputs, factor))
    assert facts["factor"] == 1.0 and facts["queued_requests"] == [0]


def test_open_loops_apply_it_and_closed_loops_keep_the_profile():
    profile = SimpleNamespace(provenance={"serving_factor_measured": {"factor": 1.4}})
    assert serving_factor(profile, tiny_inputs([], clients=2)) == 1.0
    assert serving_factor(profile, tiny_inputs([0.0, 1.0])) == 1.4
    assert serving_factor(SimpleNamespace(provenance={}), tiny_inputs([0.0, 1.0])) == 1.0


def test_level_sigma_is_the_rms_of_the_log_ratios():
    from simulator.runner.serving import level_sigma

    assert level_sigma([np.e ** 0.1, np.e ** -0.1, None, float("nan")]) == pytest.approx(0.1)
    assert level_sigma([]) == 0.0


def test_the_session_level_pools_poll_profiles_and_the_config_carries_it():
    import dataclasses

    from simulator.config import RunConfig
    from simulator.runner.validation import LONG_ONLY_MS, session_level, with_level
    from simulator.speed import SpeedNoise
    from tests.helpers import constant_profile

    measured = []
    for name, ratios in (("poll", [np.e ** 0.2]), ("thread", [np.e ** 0.9])):
        profile = constant_profile()
        profile = dataclasses.replace(profile, provenance={**profile.provenance,
                                                           "serving_factor_measured": {"ratio_at_one": ratios}})
        measured.append((name, profile))
    assert session_level(measured) == pytest.approx(0.2)
    config = RunConfig(requests=10)
    assert with_level(config, constant_profile(), 0.0) is config
    assert with_level(config, constant_profile(), 0.2).speed_noise[2] == 0.2
    noisy = dataclasses.replace(constant_profile(), speed_noise=SpeedNoise(0.1, 40.0))
    assert with_level(config, noisy, 0.2).speed_noise == (0.1, 40.0, 0.2)
    phased = dataclasses.replace(constant_profile(), speed_noise=SpeedNoise(0.1, 40.0, 0.0, 1.5, 0.1, 90.0))
    assert with_level(config, phased, 0.2).speed_noise == (0.1, 40.0, 0.2, 1.5, 0.1, 90.0)
    # the session's long phases (`session_long_phases`) join the profile's process, or a flat one of their own
    long = {"slow_factor": 1.2, "slow_share": 0.07, "slow_ms": 360.0}
    assert with_level(config, phased, 0.2, long).speed_noise == (0.1, 40.0, 0.2, 1.5, 0.1, 90.0, 1.2, 0.07, 360.0)
    assert with_level(config, constant_profile(), 0.0, long).speed_noise == (0.0, LONG_ONLY_MS, 0.0, 1.0, 0.0, 1.0,
                                                                             1.2, 0.07, 360.0)


def test_the_session_long_phases_pool_every_profiles_windows():
    import dataclasses

    from simulator.runner.speed_fit import MIN_SLOW_PHASES
    from simulator.runner.validation import session_long_phases
    from tests.helpers import constant_profile

    def state(levels):
        profile = constant_profile()
        recorded = {"window_ms": 250.0, "levels": {f"run {i}": x for i, x in enumerate(levels)}}
        return SimpleNamespace(profile=dataclasses.replace(profile, provenance={**profile.provenance,
                                                                                "window_levels_measured": recorded}))

    one_phase = [1.0] * 9 + [1.2, 1.2]                      # one phase of two windows at 1.2x
    few = [state([one_phase] * (MIN_SLOW_PHASES - 1))]
    assert session_long_phases(few) is None                  # too few phases to fit
    enough = few + [state([one_phase, [1.0] * 11])]          # split over the scenarios: pooled
    facts = session_long_phases(enough)
    assert facts["phases"] == MIN_SLOW_PHASES and facts["slow_ms"] == pytest.approx(500.0)
    assert facts["slow_factor"] == pytest.approx(1.2) and facts["slow_share"] == pytest.approx(10 / 66)
    assert session_long_phases([SimpleNamespace(profile=constant_profile())]) is None   # profiles before run AJ


def test_the_session_level_sigma_pools_every_burst_weighted_by_the_profiled_stage_times():
    from types import SimpleNamespace

    from simulator.runner.validation import burst_level, session_level_sigma
    from tests.helpers import constant_profile

    profile = constant_profile(latency_ms=0.9, overhead_ms=0.1)          # a stage: 0.9 ms compute + 0.1 decision
    models = ("m", "m")
    # compute 1.5x as long, decision as profiled: service (2 * 1.35 + 2 * 0.1) / 2.0 = 1.45x
    assert burst_level((np.array([1.5, 1.5]), 1.0), models, profile) == pytest.approx(1.45)
    assert burst_level((np.array([1.0, 1.0]), 3.0), models, profile) == pytest.approx(1.2)
    states = [SimpleNamespace(config=SimpleNamespace(models=models), profile=profile,
                              bursts=[(np.full(2, np.e ** 0.3), np.e ** 0.3)]),
              SimpleNamespace(config=SimpleNamespace(models=models), profile=profile,
                              bursts=[(np.full(2, np.e ** -0.1), np.e ** -0.1), (np.ones(2), 1.0)])]
    # levels e^0.3, e^-0.1, 1: the root mean square of their logs, uncentred (a profile's own offset counts)
    assert session_level_sigma(states) == pytest.approx(np.sqrt((0.09 + 0.01 + 0.0) / 3))
    assert session_level_sigma([]) == 0.0


def test_the_session_speed_is_the_bursts_geometric_mean_and_its_spread_is_centred_per_scenario():
    import dataclasses

    from simulator.runner.validation import (burst_levels, serving_factor_beyond_drift, session_speed,
                                             session_spread_sigma)
    from tests.helpers import constant_profile

    profile = constant_profile(latency_ms=0.9, overhead_ms=0.1)
    models = ("m",)
    bursts = [(np.full(1, np.e ** 0.3), np.e ** 0.3), (np.full(1, np.e ** 0.1), np.e ** 0.1)]
    assert burst_levels(bursts, models, profile) == pytest.approx([np.e ** 0.3, np.e ** 0.1])
    assert session_speed(burst_levels(bursts, models, profile)) == pytest.approx(np.e ** 0.2)
    assert session_speed([]) == 1.0
    states = [SimpleNamespace(config=SimpleNamespace(models=models), profile=profile, bursts=bursts),
              SimpleNamespace(config=SimpleNamespace(models=models), profile=profile,
                              bursts=[(np.full(1, np.e ** -0.5), np.e ** -0.5)])]
    # around each scenario's own session level: +0.1, -0.1 and 0 (the second scenario's offset of -0.5 drops out)
    assert session_spread_sigma(states) == pytest.approx(np.sqrt(0.02 / 3))
    assert session_spread_sigma([]) == 0.0
    open_loop, closed_loop = SimpleNamespace(clients=0), SimpleNamespace(clients=4)
    measured = dataclasses.replace(profile, provenance={"serving_factor_measured": {"factor": 1.2,
                                                                                    "factor_at_levels": 1.05}})
    older = dataclasses.replace(profile, provenance={"serving_factor_measured": {"factor": 1.2}})
    assert serving_factor_beyond_drift(measured, open_loop) == 1.05
    assert serving_factor_beyond_drift(older, open_loop) == 1.2      # measured before the levels were
    assert serving_factor_beyond_drift(measured, closed_loop) == 1.0
    assert serving_factor_beyond_drift(profile, open_loop) == 1.0


def test_the_verdicts_serving_factor_is_pooled_over_the_sessions_poll_open_loops():
    """The median of the poll-release open loops' factors beyond the drift; a dispatcher thread's scenario and a
    closed loop keep their own (1.0 for the closed loop), and without a poll open loop there is nothing to pool."""
    import dataclasses

    from simulator.runner.validation import pooled_serving_factor, verdict_serving_factor
    from tests.helpers import constant_profile

    def state(release: str, factor: float, clients: int = 0):
        profile = dataclasses.replace(constant_profile(latency_ms=0.9), provenance={
            "serving_factor_measured": {"factor": 1.5, "factor_at_levels": factor}})
        return SimpleNamespace(scenario=SimpleNamespace(release=release), profile=profile,
                               drawn=[SimpleNamespace(clients=clients)])

    states = [state("poll", 0.98), state("poll", 1.09), state("poll", 1.01), state("thread", 1.2),
              state("poll", 1.3, clients=4)]
    pooled = pooled_serving_factor(states)
    assert pooled == pytest.approx(1.01)
    assert [verdict_serving_factor(s, pooled) for s in states] == pytest.approx([1.01, 1.01, 1.01, 1.2, 1.0])
    assert pooled_serving_factor(states[3:]) is None
    assert verdict_serving_factor(states[0], None) == pytest.approx(0.98)


def test_the_own_runs_factor_leaves_the_level_out_and_the_verdict_takes_it():
    """A run served 1.15x slower than the profile while the host ran 1.1x slow gives 1.15 beyond the drift; the
    verdict takes it for an open loop (poll or thread) over the every-stage runs' factors, 1.0 for a closed loop,
    and keeps the earlier rule for a profile measured without it."""
    import dataclasses

    from simulator.errors import FlexsimError
    from simulator.runner.serving import fit_own_run_factor
    from simulator.runner.validation import own_run_factor, verdict_serving_factor
    from tests.helpers import constant_profile

    arrival_s = np.sort(np.random.default_rng(7).uniform(0.0, 1.0, 400))
    inputs = tiny_inputs(arrival_s, latency_ms=2.0, n_stages=2)
    real = SimpleNamespace(requests=_records(inputs, 1.15 * 1.1))
    facts = fit_own_run_factor(real, lambda seed, scale: _records(inputs, scale), level=1.1)
    assert facts["factor_at_level"] == pytest.approx(1.15, rel=0.02) and facts["level"] == 1.1
    assert facts["queued_requests"] > 300 and facts["real_ms"] > facts["simulated_ms"] > 0
    with pytest.raises(FlexsimError, match="need a positive level"):
        fit_own_run_factor(real, lambda seed, scale: _records(inputs, scale), level=float("nan"))

    def state(release: str, clients: int = 0, own=None):
        measured = {"factor": 1.5, "factor_at_levels": 1.2, **({} if own is None else {"own_run": own})}
        profile = dataclasses.replace(constant_profile(latency_ms=0.9),
                                      provenance={"serving_factor_measured": measured})
        return SimpleNamespace(scenario=SimpleNamespace(release=release), profile=profile,
                               drawn=[SimpleNamespace(clients=clients)])

    poll, thread, closed = (state("poll", own=facts), state("thread", own=facts),
                            state("poll", clients=4, own=facts))
    assert verdict_serving_factor(poll, 1.01) == verdict_serving_factor(thread, None) == facts["factor_at_level"]
    assert verdict_serving_factor(closed, 1.01) == own_run_factor(closed.profile, closed.drawn[0]) == 1.0
    assert own_run_factor(state("poll").profile, poll.drawn[0]) is None
    assert verdict_serving_factor(state("poll"), 1.01) == 1.01 and verdict_serving_factor(state("thread"), 1.01) == 1.2
