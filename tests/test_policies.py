"""Each built-in policy on its own, composition, and custom policies, without running an engine."""

import numpy as np
import pytest
from numba import njit

from simulator import policies as pol
from simulator.errors import FlexsimError
from simulator.policies import make_state


def test_threshold_stops_at_or_above_the_stage_threshold():
    p = pol.Threshold((0.7, 0.5))
    assert p.decide(make_state(stage=0, n_stages=3, signal=0.7))
    assert not p.decide(make_state(stage=0, n_stages=3, signal=0.69))
    assert p.decide(make_state(stage=1, n_stages=3, signal=0.5))
    assert not p.decide(make_state(stage=1, n_stages=3, signal=0.49))


def test_last_stage_always_stops_and_infinite_thresholds():
    assert pol.Threshold((np.inf, np.inf)).decide(make_state(stage=2, n_stages=3, signal=0.0))
    assert not pol.Threshold((np.inf, np.inf)).decide(make_state(stage=0, n_stages=3, signal=1.0))
    assert pol.Threshold((-np.inf, -np.inf)).decide(make_state(stage=0, n_stages=3, signal=0.0))


def test_static_k_runs_exactly_k_stages():
    p = pol.StaticK(2)
    assert not p.decide(make_state(stage=0, n_stages=4))
    assert p.decide(make_state(stage=1, n_stages=4))


def test_deadline_stops_when_the_next_stage_estimate_misses():
    p = pol.DeadlineAware()
    assert p.decide(make_state(stage=0, n_stages=3, elapsed_s=0.009, next_latency_s=0.002, deadline_s=0.010))
    assert not p.decide(make_state(stage=0, n_stages=3, elapsed_s=0.008, next_latency_s=0.002, deadline_s=0.010))


def test_energy_budget_stops_when_the_next_stage_would_exceed_it():
    p = pol.EnergyBudget()
    assert p.decide(make_state(stage=0, n_stages=3, energy_j=0.25, next_energy_j=0.25, energy_budget_j=0.375))
    assert not p.decide(make_state(stage=0, n_stages=3, energy_j=0.25, next_energy_j=0.125, energy_budget_j=0.375))


def test_power_cap_stops_when_the_bucket_cannot_pay_the_next_stage():
    p = pol.PowerCap(cap_w=100.0, window_s=1.0)
    assert p.decide(make_state(stage=0, n_stages=3, device_tokens_j=0.5, next_stage_energy_j=0.6))
    assert not p.decide(make_state(stage=0, n_stages=3, device_tokens_j=0.6, next_stage_energy_j=0.6))


def test_oracle_stops_at_the_first_correct_stage():
    assert pol.Oracle().decide(make_state(stage=0, n_stages=3, correct=True))
    assert not pol.Oracle().decide(make_state(stage=0, n_stages=3, correct=False))


def test_load_adaptive_levels_pick_max_stages_and_thresholds_from_queue_length():
    p = pol.LoadAdaptive(((0, 3, None), (4, 2, (0.5, 0.5)), (10, 1, None)))
    assert not p.decide(make_state(stage=0, n_stages=3, queue_len=3, signal=0.9))
    assert p.decide(make_state(stage=0, n_stages=3, queue_len=4, signal=0.6))
    assert not p.decide(make_state(stage=0, n_stages=3, queue_len=4, signal=0.4))
    assert p.decide(make_state(stage=1, n_stages=3, queue_len=4, signal=0.0))
    assert p.decide(make_state(stage=0, n_stages=3, queue_len=10, signal=0.0))


def test_composition_stops_when_any_part_says_stop():
    both = pol.Threshold((0.9, 0.9)) & pol.DeadlineAware()
    late = make_state(stage=0, n_stages=3, signal=0.1, elapsed_s=1.0, next_latency_s=1.0, deadline_s=1.5)
    assert both.decide(late)
    assert not both.decide(make_state(stage=0, n_stages=3, signal=0.1, deadline_s=1.5))
    assert both.decide(make_state(stage=0, n_stages=3, signal=0.95))


def test_composed_thresholds_take_the_lower_one():
    params = pol.compose([pol.Threshold((0.9, 0.2)), pol.Threshold((0.5, 0.8))], 3).params
    assert list(params.thresholds[0]) == [0.5, 0.2, np.inf]


@njit
def stop_if_prediction_is_zero(state, params):
    return state.prediction == 0 and state.signal > params[0]


def test_custom_policy_decides_and_composes():
    p = pol.CustomPolicy(stop_if_prediction_is_zero, (0.3,))
    assert p.decide(make_state(stage=0, n_stages=3, prediction=0, signal=0.4))
    assert not p.decide(make_state(stage=0, n_stages=3, prediction=1, signal=0.4))
    assert (p & pol.StaticK(1)).decide(make_state(stage=0, n_stages=3, prediction=1))


def test_should_stop_equals_stop_rule_at_the_level():
    params = pol.compose([pol.LoadAdaptive(((0, 3, (0.9, 0.9)), (2, 3, (0.1, 0.1))))], 3).params
    state = make_state(stage=0, n_stages=3, queue_len=2, signal=0.5)
    assert pol.should_stop(state, params)
    assert pol.stop_rule(state, 0.1, 3, False, False, False, False)


@pytest.mark.parametrize("policy, n_stages, message", [
    (pol.Threshold((0.5,)), 3, "need 2"),
    (pol.Threshold((0.5, "x")), 3, "must be a number"),
    (pol.Threshold((0.5, float("nan"))), 3, "must be a number"),
    (pol.StaticK(0), 3, "static_k"),
    (pol.StaticK(4), 3, "static_k"),
    (pol.DeadlineAware(1.5), 3, "deadline_quantile"),
    (pol.PowerCap(-1.0), 3, "power_cap_w"),
    (pol.LoadAdaptive(((1, 2, None),)), 3, "must start at 0"),
    (pol.LoadAdaptive(((0, 2, None), (0, 1, None))), 3, "increase"),
    (pol.LoadAdaptive(((0, 5, None),)), 3, "max_stages"),
])
def test_invalid_policy_parameters_are_named(policy, n_stages, message):
    with pytest.raises(FlexsimError, match=message):
        pol.compose([policy], n_stages)


def test_custom_policy_must_be_compiled():
    with pytest.raises(FlexsimError, match="numba.njit"):
        pol.compose([pol.CustomPolicy(lambda s, p: True)], 2)


def test_parse_load_levels():
    assert pol.parse_load_levels("0:6;4:3:0.5/0.4;16:1") == ((0, 6, None), (4, 3, (0.5, 0.4)), (16, 1, None))
    with pytest.raises(FlexsimError, match="load_levels level 0"):
        pol.parse_load_levels("0-6")
    with pytest.raises(FlexsimError, match="QLEN and MAX_STAGES must be integers"):
        pol.parse_load_levels("0:x")


def test_make_state_rejects_unknown_fields():
    with pytest.raises(FlexsimError, match="no field"):
        make_state(stagee=1)


def test_a_custom_policy_that_cannot_run_is_named_in_one_line():
    from numba import njit

    from simulator.errors import FlexsimError
    from simulator.policies import CustomPolicy, compose

    @njit
    def boom(state, params):
        raise ValueError("boom")

    @njit
    def one_argument(state):
        return True

    @njit
    def half(state, params):
        return 0.5

    @njit
    def no_such_field(state, params):
        return state.nope > 0

    @njit
    def fine(state, params):
        return state.signal >= params[0]

    for function, params, message in ((boom, (), "boom: calling it on a neutral state failed: ValueError: boom"),
                                      (one_argument, (), "one_argument: calling it .* TypeError"),
                                      (half, (), "half: it must return a bool"),
                                      (no_such_field, (), "Unknown attribute 'nope'"),
                                      (fine, None, "params must be a flat sequence of finite numbers"),
                                      (fine, (float("nan"),), "params must be a flat sequence"),
                                      (fine, (), r"fine: it reads past an array on a neutral state after stage 0 "
                                                 r"\(index 0 is out of bounds.*given 0 parameter\(s\)\)")):
        with pytest.raises(FlexsimError, match=message):
            compose([CustomPolicy(function, params)], 3)
    assert compose([CustomPolicy(fine, (0.5,))], 3).custom is fine


def test_a_custom_policy_that_can_return_none_or_reads_past_its_params_later_is_refused():
    from simulator.policies import CustomPolicy, compose

    @njit
    def late_only(state, params):
        if state.stage == 0:
            return False
        if state.signal >= 0.5:
            return True                                   # no return on the other path: None

    @njit
    def per_stage(state, params):
        return state.signal >= params[state.stage]        # one threshold per stage

    with pytest.raises(FlexsimError, match=r"late_only: it must return a bool \(True = stop\) on every path, but "
                                           r"compiled to return OptionalType\(bool\)"):
        compose([CustomPolicy(late_only)], 6)
    with pytest.raises(FlexsimError, match="per_stage: it reads past an array on a neutral state after stage 1"):
        compose([CustomPolicy(per_stage, (0.7,))], 6)
    assert compose([CustomPolicy(per_stage, (0.7,) * 5)], 6).custom is per_stage


def test_composing_leaves_the_users_params_as_they_were():
    from simulator.policies import CustomPolicy, compose

    @njit
    def counts(state, params):
        params[0] += 1.0
        return False

    params = np.zeros(1)
    compose([CustomPolicy(counts, params)], 6)
    assert params[0] == 0.0


def test_a_deadline_aware_policy_needs_tables_built_at_its_quantile():
    import dataclasses

    from simulator import RunConfig, prepare
    from simulator.policies import DeadlineAware, Threshold, compose

    thresholds = (0.4, 0.5, 0.2, 0.2, 0.2)
    inputs = prepare(RunConfig(requests=200, deadline_ms=3.0))
    with pytest.raises(FlexsimError, match="at quantile 0.99, but the device tables were built for quantile 0.5"):
        dataclasses.replace(inputs, policy=compose([Threshold(thresholds), DeadlineAware(0.99)], 6))
    inputs = prepare(RunConfig(requests=200, deadline_ms=3.0, policy=("threshold", "deadline"), deadline_quantile=0.99))
    assert dataclasses.replace(inputs, policy=compose([Threshold(thresholds), DeadlineAware(0.99)], 6))


def test_the_engine_for_a_custom_policy_is_not_written_to_the_disk_cache():
    from simulator.engine_numba import _custom_kernel, _kernel_builtin

    kernel = _custom_kernel()
    callees = [kernel.py_func.__globals__[name] for name in ("_single_server", "_general")]
    assert all(type(k._cache).__name__ == "NullCache" for k in (kernel, *callees))
    assert type(_kernel_builtin._cache).__name__ != "NullCache"


@pytest.mark.parametrize("make, message", [
    (lambda: pol.compose([pol.Threshold(None)], 3), "invalid thresholds = None"),
    (lambda: pol.compose([pol.DeadlineAware("0.5")], 3), "invalid deadline_quantile = '0.5'"),
    (lambda: pol.compose([pol.PowerCap("100")], 3), "invalid power_cap_w = '100'"),
    (lambda: pol.compose([pol.LoadAdaptive(((0, 2.7, None),))], 3), r"invalid load_levels\[0\] = \(0, 2.7, None\)"),
    (lambda: pol.compose([pol.StaticK(True)], 3), "invalid static_k = True"),
    (lambda: pol.compose([lambda state: True], 3), "policies are Policy objects"),
    (lambda: pol.compose([pol.Threshold((0.5, 0.4))], "3"), "invalid number of stages '3'"),
])
def test_policy_objects_with_wrong_arguments_are_named(make, message):
    from simulator.errors import FlexsimError

    with pytest.raises(FlexsimError, match=message):
        make()


def test_a_threshold_outside_the_signals_range_is_refused_from_python_too():
    from simulator.errors import FlexsimError

    for bad in ((5.0,), (-3,)):
        with pytest.raises(FlexsimError, match=r"must be a number in \[0, 1\]"):
            pol.compose([pol.Threshold(bad)], 2)
    assert pol.compose([pol.Threshold((np.inf,))], 2) is not None
    with pytest.raises(FlexsimError, match="up to 2147483647"):
        pol.compose([pol.LoadAdaptive(((0, 3, None), (2 ** 63, 1, None)))], 3)


@pytest.mark.parametrize("fields, message", [
    (dict(stage="x"), "field stage = 'x': must be an integer"),
    (dict(stage=1.5), "field stage = 1.5: must be an integer"),
    (dict(signal=None), "field signal = None: must be a number"),
    (dict(correct=0.3), "field correct = 0.3: must be a bool"),
    (dict(queue=1), "no field"),
])
def test_make_state_names_a_field_of_the_wrong_type(fields, message):
    with pytest.raises(FlexsimError, match=message):
        make_state(**fields)


@pytest.mark.parametrize("fields, message", [
    (dict(static_k=2), "static_k is set but the policy has no static"),
    (dict(power_cap_w=100.0), "power_cap_w is set but the policy has no power-cap"),
    (dict(load_levels="0:6;4:3"), "load_levels is set but the policy has no load-adaptive"),
])
def test_a_policy_field_without_its_policy_is_refused(fields, message):
    from simulator import simulate

    with pytest.raises(FlexsimError, match=message):
        simulate(requests=10, **fields)


@pytest.mark.parametrize("engine", ["numba", "simpy"])
@pytest.mark.parametrize("deadline_ms, stages", [(2.4, 1), (2.6, 2)])
def test_the_deadline_estimate_is_the_latency_quantile_alone(engine, deadline_ms, stages):
    """The contract's rule: after stage 0 (1 ms + 0.5 ms decision) a request goes on where 1.5 ms + the next stage's
    median (1 ms) is within the deadline; the decision overhead is not in the estimate (it was until 2026-12-07)."""
    from simulator.inputs import SimulationInputs, device_tables
    from simulator.run import run_inputs
    from simulator.signals import stage_signals
    from tests.helpers import constant_profile

    logits = np.random.default_rng(0).normal(size=(2, 4, 3)).astype(np.float32)
    tables = device_tables(constant_profile(latency_ms=1.0, overhead_ms=0.5), ["m", "m"], 1, 0.5)
    assert tables.est_latency_s[1, 0] == pytest.approx(0.001)
    inputs = SimulationInputs(
        stages=stage_signals(logits, np.zeros(4, int), [0, 1]), cost_scale=np.ones((2, 4)), devices=(tables,),
        arrival_s=np.zeros(1), clients=0, sample=np.zeros(1, np.int32), draw=np.zeros((1, 2), np.uint16),
        deadline_s=np.array([deadline_ms / 1000]), energy_budget_j=np.array([np.inf]), max_batch=1, edf=False,
        policy=pol.compose([pol.DeadlineAware(0.5)], 2))
    assert run_inputs(inputs, engine).requests.stages_run.tolist() == [stages]
