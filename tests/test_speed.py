"""The host speed process (`simulator.speed`): its trace, its profile field and what the engines do with it."""

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings

from simulator import testing
from simulator.errors import FlexsimError
from simulator.profiles import parse_profile
from simulator.speed import STEPS_PER_CORRELATION, SpeedNoise, device_speed, speed_trace
from tests.helpers import constant_profile, tiny_inputs


def test_trace_has_the_stated_statistics():
    noise = SpeedNoise(sigma=0.2, correlation_ms=10.0)
    factor = speed_trace(noise, 400_000, np.random.default_rng(3))
    x = np.log(factor)
    assert factor.mean() == pytest.approx(1.0, abs=0.01)
    assert x.std() == pytest.approx(0.2, rel=0.05)
    lag = STEPS_PER_CORRELATION          # one correlation time apart
    corr = np.corrcoef(x[:-lag], x[lag:])[0, 1]
    assert corr == pytest.approx(np.exp(-1.0), abs=0.03)


def test_profile_round_trip_keeps_the_speed_noise():
    profile = dataclasses.replace(constant_profile(), speed_noise=SpeedNoise(0.15, 80.0))
    again = parse_profile(json.loads(json.dumps(profile.to_json())))
    assert again.speed_noise == SpeedNoise(0.15, 80.0)


def test_level_multiplies_each_trace_by_one_factor_of_mean_one():
    plain, level = SpeedNoise(0.1, 10.0), SpeedNoise(0.1, 10.0, level_sigma=0.2)
    factors = []
    for seed in range(2000):
        base = speed_trace(plain, 50, np.random.default_rng(seed))
        ratio = speed_trace(level, 50, np.random.default_rng(seed)) / base
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-12)     # the process as without a level, times a constant
        factors.append(ratio[0])
    assert np.mean(factors) == pytest.approx(1.0, abs=0.02)
    assert np.std(np.log(factors)) == pytest.approx(0.2, rel=0.08)
    again = parse_profile(json.loads(json.dumps(dataclasses.replace(constant_profile(), speed_noise=level).to_json())))
    assert again.speed_noise == level
    assert "level_sigma" not in plain.to_json()


def _phases(in_slow: np.ndarray) -> tuple[int, int]:
    """Slots in slow phases and the number of phases of a boolean trace."""
    return int(in_slow.sum()), int((in_slow & ~np.concatenate([[False], in_slow[:-1]])).sum())


def test_slow_phases_have_the_stated_share_duration_and_factor():
    plain = SpeedNoise(0.05, 8.0)
    phased = SpeedNoise(0.05, 8.0, slow_factor=1.8, slow_share=0.2, slow_ms=150.0)
    ratio = speed_trace(phased, 2_000_000, np.random.default_rng(4)) / speed_trace(plain, 2_000_000,
                                                                                    np.random.default_rng(4))
    levels = np.unique(np.round(ratio, 9))
    assert levels.size == 2                                   # the process as without phases, times two levels
    assert levels[1] / levels[0] == pytest.approx(1.8)
    in_slow = ratio > levels.mean()
    slots, phases = _phases(in_slow)
    assert slots / in_slow.size == pytest.approx(0.2, abs=0.01)
    assert slots / phases * phased.step_s * 1000.0 == pytest.approx(150.0, rel=0.05)
    assert ratio.mean() == pytest.approx(1.0, abs=0.01)       # normalised: the mean service time is kept
    again = parse_profile(json.loads(json.dumps(dataclasses.replace(constant_profile(),
                                                                    speed_noise=phased).to_json())))
    assert again.speed_noise == phased
    assert "slow_share" not in plain.to_json()


def test_long_phases_are_a_second_chain_on_top_of_the_slow_ones():
    phased = SpeedNoise(0.05, 8.0, slow_factor=1.8, slow_share=0.2, slow_ms=150.0)
    both = dataclasses.replace(phased, long_factor=1.2, long_share=0.07, long_ms=400.0)
    ratio = speed_trace(both, 2_000_000, np.random.default_rng(4)) / speed_trace(phased, 2_000_000,
                                                                                  np.random.default_rng(4))
    levels = np.unique(np.round(ratio, 9))
    assert levels.size == 2 and levels[1] / levels[0] == pytest.approx(1.2)   # the slow chain as drawn, times one more
    slots, phases = _phases(ratio > levels.mean())
    assert slots / ratio.size == pytest.approx(0.07, abs=0.01)
    assert slots / phases * both.step_s * 1000.0 == pytest.approx(400.0, rel=0.1)
    assert ratio.mean() == pytest.approx(1.0, abs=0.01)
    assert both.as_tuple() == (0.05, 8.0, 0.0, 1.8, 0.2, 150.0, 1.2, 0.07, 400.0)
    alone = SpeedNoise(0.05, 8.0, long_factor=1.2, long_share=0.07, long_ms=400.0)
    assert alone.as_tuple() == (0.05, 8.0, 0.0, 1.0, 0.0, 1.0, 1.2, 0.07, 400.0) and SpeedNoise(*alone.as_tuple()) == \
        dataclasses.replace(alone, slow_ms=1.0)
    for noise in (both, alone):
        again = parse_profile(json.loads(json.dumps(dataclasses.replace(constant_profile(),
                                                                        speed_noise=noise).to_json())))
        assert again.speed_noise.as_tuple() == noise.as_tuple()
    assert "long_share" not in phased.to_json() and phased.as_tuple() == (0.05, 8.0, 0.0, 1.8, 0.2, 150.0)


def test_slow_phases_lengthen_queues_more_than_the_process_alone():
    from simulator.run import run_inputs

    rng = np.random.default_rng(5)
    plain = tiny_inputs(arrival_s=np.cumsum(rng.exponential(0.00125, size=20_000)), n_stages=1)
    slots = int(30.0 / SpeedNoise(0.1, 20.0).step_s)                 # the whole run, no wrapping
    process = run_inputs(_with_noise(plain, SpeedNoise(0.1, 20.0), n_slots=slots)).requests
    phased = run_inputs(_with_noise(plain, SpeedNoise(0.1, 20.0, 0.0, 1.6, 0.15, 150.0), n_slots=slots)).requests
    assert phased.latency_ms.mean() > 1.5 * process.latency_ms.mean()


def test_config_slow_phases_reach_the_devices():
    from simulator.config import RunConfig
    from simulator.run import prepare

    inputs = prepare(RunConfig(requests=200, seed=2, speed_noise=(0.0, 20.0, 0.0, 1.5, 0.1, 100.0)))
    assert inputs.devices[0].speed_noise == SpeedNoise(0.0, 20.0, 0.0, 1.5, 0.1, 100.0)
    assert len(np.unique(inputs.speed[0])) == 2


def test_config_level_alone_makes_a_process():
    from simulator.config import RunConfig
    from simulator.run import prepare

    inputs = prepare(RunConfig(requests=200, seed=2, speed_noise=(0.0, 50.0, 0.1)))
    assert inputs.devices[0].speed_noise == SpeedNoise(0.0, 50.0, 0.1)
    factor = inputs.speed[0]
    assert np.all(factor == factor[0, 0]) and factor[0, 0] != 1.0


@pytest.mark.parametrize("spec, field", [
    ({"sigma": -0.1, "correlation_ms": 5.0}, "speed_noise.sigma"),
    ({"sigma": float("nan"), "correlation_ms": 5.0}, "speed_noise.sigma"),
    ({"sigma": 0.1, "correlation_ms": 0.0}, "speed_noise.correlation_ms"),
    ({"sigma": 0.1, "correlation_ms": 1e-14}, r"speed_noise.correlation_ms = 1e-14 must be a finite number >= 0.01"),
    ({"sigma": 0.1}, "speed_noise must be an object"),
    ({"sigma": 0.1, "correlation_ms": 5.0, "step_ms": 1.0}, "speed_noise must be an object"),
    ({"sigma": 0.1, "correlation_ms": 5.0, "level_sigma": -0.01}, "speed_noise.level_sigma"),
    ([0.1, 5.0], "speed_noise must be an object"),
    ({"sigma": 0.1, "correlation_ms": 5.0, "slow_factor": 1.5}, "all of slow_factor, slow_share, slow_ms"),
    ({"sigma": 0.1, "correlation_ms": 5.0, "slow_factor": 0.9, "slow_share": 0.1, "slow_ms": 50.0},
     "speed_noise.slow_factor"),
    ({"sigma": 0.1, "correlation_ms": 5.0, "slow_factor": 1.5, "slow_share": 1.0, "slow_ms": 50.0},
     "speed_noise.slow_share"),
    ({"sigma": 0.1, "correlation_ms": 5.0, "slow_factor": 1.5, "slow_share": 0.1, "slow_ms": 0.0},
     "speed_noise.slow_ms"),
    ({"sigma": 0.1, "correlation_ms": 5.0, "long_factor": 1.5, "long_share": 0.1}, "all of long_factor, long_share"),
    ({"sigma": 0.1, "correlation_ms": 5.0, "long_factor": 1.2, "long_share": -0.1, "long_ms": 300.0},
     "speed_noise.long_share"),
])
def test_bad_speed_noise_is_named(spec, field):
    obj = constant_profile().to_json()
    obj["speed_noise"] = spec
    with pytest.raises(FlexsimError, match=field):
        parse_profile(obj)


def _with_noise(inputs, noise, n_slots=None, seed=0):
    devices = tuple(dataclasses.replace(d, speed_noise=noise) for d in inputs.devices)
    horizon_s = 1.0 if n_slots is None else n_slots * noise.step_s - 1e-12
    return dataclasses.replace(inputs, devices=devices,
                               speed=device_speed(devices, horizon_s, np.random.default_rng(seed)))


def test_each_stage_lasts_its_slot_factor_times_its_latency():
    """One stage per request, constant 1 ms: every duration is 1 ms times the factor of the slot it starts in,
    including after the trace wraps around."""
    inputs = _with_noise(tiny_inputs(arrival_s=np.arange(40) * 0.0007, n_stages=1),
                         SpeedNoise(0.3, 0.8), n_slots=7)
    factor, step_s = inputs.speed
    result = testing.run_both(inputs)
    req = result.requests
    expected = 0.001 * factor[0, (req.start_s / step_s[0]).astype(int) % factor.shape[1]]
    np.testing.assert_allclose(req.finish_s - req.start_s, expected, rtol=1e-12)
    assert req.start_s[-1] > factor.shape[1] * step_s[0]        # it did wrap


def test_zero_sigma_changes_nothing_to_the_bit():
    plain = tiny_inputs(arrival_s=np.arange(30) * 0.0006, n_stages=2)
    quiet = _with_noise(plain, SpeedNoise(0.0, 1.0))
    testing.assert_same_results(testing.run_both(plain), testing.run_both(quiet))


def test_slow_phases_lengthen_queues():
    """Same mean speed, correlated slow phases: at 80% load the mean latency rises (what near-saturation real
    runs show and independent draws miss)."""
    rng = np.random.default_rng(1)
    arrival_s = np.cumsum(rng.exponential(0.00125, size=20_000))
    plain = tiny_inputs(arrival_s=arrival_s, n_stages=1)
    noisy = _with_noise(plain, SpeedNoise(0.2, 50.0))
    from simulator.run import run_inputs

    base, slow = run_inputs(plain).requests, run_inputs(noisy).requests
    busy = (slow.finish_s - slow.start_s).mean() / (base.finish_s - base.start_s).mean()
    assert busy == pytest.approx(1.0, abs=0.05)
    assert slow.latency_ms.mean() > 1.2 * base.latency_ms.mean()


@settings(max_examples=40)
@given(testing.simulation_inputs(max_devices=2))
def test_engines_agree_with_noise_on_every_device(inputs):
    noisy = _with_noise(inputs, SpeedNoise(0.4, 1.5), n_slots=5)
    testing.check_invariants(testing.run_both(noisy), noisy)


def test_config_speed_noise_overrides_the_profiles():
    from simulator.config import RunConfig
    from simulator.run import prepare, run_inputs

    base = RunConfig(requests=3000, seed=2)
    noisy = prepare(dataclasses.replace(base, speed_noise=(0.2, 50.0)))
    assert all(d.speed_noise == SpeedNoise(0.2, 50.0) for d in noisy.devices) and noisy.speed is not None
    off = prepare(dataclasses.replace(base, speed_noise=(0.0, 50.0)))
    assert off.speed is None
    testing.assert_same_results(run_inputs(off), run_inputs(prepare(base)))


@pytest.mark.parametrize("value", [(0.1,), (-0.1, 5.0), (0.1, 0.0), (float("nan"), 5.0), (0.1, float("inf")),
                                   (0.1, 5.0, -0.1), (0.1, 5.0, 0.1, 1.0)])
def test_bad_config_speed_noise_is_named(value):
    from simulator.config import RunConfig

    with pytest.raises(FlexsimError, match="invalid speed_noise"):
        RunConfig(speed_noise=value)


@pytest.mark.parametrize("values, usable", [
    ((0.1, 20.0), True), ((0.1, 20.0, 0.05), True), ((0.1, 20.0, 0.0, 1.5, 0.1, 100.0), True),
    ((0.1, 20.0, 0.0, 1.0, 0.0, 1.0, 1.2, 0.05, 300.0), True),
    ((0.1, 20.0, 0.0, 1.5, 0.1, 100.0, 0.9, 0.05, 300.0), False),
    ((0.1, 20.0, 0.0, 1.5, 0.1, 100.0, 1.2), False),
    ((0.1, 0.0), False), ((-0.1, 20.0), False), ((0.1, 20.0, -0.1), False), ((0.1, float("inf")), False),
    ((0.1, 20.0, 0.0, 0.9, 0.1, 100.0), False), ((0.1, 20.0, 0.0, 1.5, 1.0, 100.0), False),
    ((0.1, 20.0, 0.0, 1.5, 0.1, 0.0), False), ((0.1, 20.0, 0.0, 1.5), False), ((0.1,), False),
])
def test_the_run_options_speed_process_has_the_profile_files_bounds(values, usable):
    """`--speed-noise` (a tuple) and a profile's ``speed_noise`` (an object) are checked by the same rules."""
    from simulator.config import RunConfig, validate
    from simulator.speed import usable_speed_noise

    assert usable_speed_noise(values) == usable
    if usable:
        validate(RunConfig(speed_noise=values))
        assert RunConfig(speed_noise=list(values)).speed_noise == values     # a list from Python: its tuple
        assert not usable_speed_noise(list(values))                          # (the rules themselves take tuples)
    else:
        with pytest.raises(FlexsimError, match="invalid speed_noise"):
            validate(RunConfig(speed_noise=values))
