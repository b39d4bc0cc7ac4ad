"""What the runner's profiling measures besides the stages (per-model decision overhead, dispatch overhead, the
wake-up table) on hand-built real runs with known costs, and that the simulated prediction uses them. Exact or
tolerance checks on synthetic timings: no real timing is asserted."""

from types import SimpleNamespace

import numpy as np
import pytest

from simulator.config import RunConfig
from simulator.profiles import load_profile, parse_profile, save_profile
from simulator.run import prepare, run_inputs
from simulator.runner.calibrate import speed_factors, without_host_costs
from simulator.runner.idle import MIN_WOKEN, WARM_FROM_STAGE, member_idle_table, wakeup_table
from simulator.runner.measure import dispatch_overhead
from simulator.runner.host import HostReport
from simulator.runner.profiling import (PROFILING_RETRIES, disturbed_runs, last_attempts, screened_run,
                                         with_bursts, with_host_costs, with_serving_pattern)
from simulator.runner.result import RealRun, StageTimes
from tests.helpers import constant_profile

BASE_MS = (0.4, 0.6)            # compute time of stages 0 and 1 on a warm host
DECISION_MS = (0.05, 0.08)      # decision time after stages 0 and 1


def served(arrival_s, wake=lambda gap_ms, position: 1.0, speed=lambda t_s: 1.0, dispatch_ms=0.0,
           cold=lambda idle_ms: 1.0, n_stages=2, idle_dispatch_ms=None, release_lag_ms=None,
           release_ms=0.0) -> RealRun:
    """A FIFO worker serving `n_stages` stages per request: stage k takes ``(BASE_MS[k % 2] x cold(ms since stage k
    last ended) + DECISION_MS[k % 2]) x speed(now) x wake(idle gap before its busy period, position in the busy
    period)``, plus `dispatch_ms` before each request (`idle_dispatch_ms` before one that found the worker idle,
    where given); with `release_lag_ms` (a dispatcher thread), each request is released that long after its
    arrival, and a stage takes `release_ms` longer per release while it runs (its nominal duration)."""
    arrival_s = np.asarray(arrival_s, dtype=float)
    lag_s = None if release_lag_ms is None else np.full(arrival_s.size, release_lag_ms / 1000.0)
    released_s = arrival_s + (0.0 if lag_s is None else lag_s)
    start, finish, rows = np.empty_like(arrival_s), np.empty_like(arrival_s), []
    free, gap_ms, position = 0.0, np.inf, 0
    member_end = np.full(n_stages, np.nan)
    for r, arrival in enumerate(arrival_s):
        if r == 0 or arrival > free:
            gap_ms, position = (np.inf if r == 0 else (arrival - free) * 1000.0), 0
        woken = r == 0 or arrival > free
        t = max(arrival, free) + (dispatch_ms if idle_dispatch_ms is None or not woken else idle_dispatch_ms) / 1000.0
        start[r] = max(arrival, free)
        for k in range(n_stages):
            factor = speed(t) * wake(gap_ms, position)
            member = cold((t - member_end[k]) * 1000.0) if np.isfinite(member_end[k]) else 1.0
            compute_s = BASE_MS[k % 2] * member * factor / 1000.0
            decision_s = DECISION_MS[k % 2] * factor / 1000.0
            if release_lag_ms is not None:
                during = np.count_nonzero((released_s > t) & (released_s <= t + compute_s + decision_s))
                compute_s += during * release_ms / 1000.0
            rows.append((r, k, t, compute_s, decision_s))
            t += compute_s + decision_s
            member_end[k] = t
            position += 1
        finish[r] = free = t
    request, stage, stage_start, compute, decision = (np.array(c) for c in zip(*rows))
    times = StageTimes(request=request.astype(np.int32), stage=stage.astype(np.int8), start_s=stage_start,
                       compute_s=compute, decision_s=decision)
    return RealRun(requests=SimpleNamespace(arrival_s=arrival_s, start_s=start, finish_s=finish), batches=None,
                   summary=None, stage_times=times, release_lag_s=lag_s, host=None, measured_energy_j=None)


def open_loop_arrivals(seed: int = 0, n: int = 600, mean_gap_ms: float = 5.0) -> np.ndarray:
    """Exponential gaps (offered load about 0.45) with the profiling runs' bursts."""
    service_s = 2 * sum(BASE_MS + DECISION_MS) / 1000.0
    return with_bursts(np.cumsum(np.random.default_rng(seed).exponential(mean_gap_ms / 1000.0, n)), service_s)


def double_first_stage_after(min_gap_ms: float):
    return lambda gap_ms, position: 2.0 if position == 0 and gap_ms > min_gap_ms else 1.0


# ------------------------------------------------------------------------------------------ records

def test_waited_idle_and_stage_work_of_a_run():
    run = served([0.0, 0.0005, 0.010, 0.0101])
    assert run.waited.tolist() == [False, True, False, True]
    idle = run.idle_before_ms
    assert np.isnan(idle[0]) and idle[1] == 0.0 and idle[3] == 0.0
    np.testing.assert_allclose(idle[2], 10.0 - 2 * sum(BASE_MS + DECISION_MS))
    np.testing.assert_allclose(run.stage_work_s * 1000.0, [sum(BASE_MS + DECISION_MS)] * 4)


def test_dispatch_overhead_is_the_time_between_finishes_beyond_the_stages():
    run = served(np.zeros(50), dispatch_ms=0.02)
    measured = dispatch_overhead([run])
    assert measured["n"] == 49
    np.testing.assert_allclose(measured["mean"], 0.02, atol=1e-9)


def test_dispatch_overhead_without_waiting_requests_is_zero():
    assert dispatch_overhead([served([0.0, 1.0, 2.0])]) == {"mean": 0.0, "p50": None, "n": 0}


def test_release_cost_is_the_busy_workers_slowdown_per_release():
    from simulator.runner.measure import release_cost

    arrivals = open_loop_arrivals(n=1500, mean_gap_ms=2.0)
    measured = release_cost([served(arrivals, release_lag_ms=0.05, release_ms=0.07)])
    assert measured["n"] > 100 and measured["mean"] == pytest.approx(0.07, abs=0.01)
    # no cost, or no dispatcher thread (poll release: no release times): nothing
    assert release_cost([served(arrivals, release_lag_ms=0.05)])["mean"] < 0.005
    assert release_cost([served(arrivals)]) == {"mean": 0.0, "n": 0}


def test_idle_dispatch_is_measured_apart_from_arrival_at_an_idle_worker():
    run = served(open_loop_arrivals(), dispatch_ms=0.02, idle_dispatch_ms=0.1)
    queued, idle = dispatch_overhead([run]), dispatch_overhead([run], idle=True)
    assert queued["n"] > 100 and idle["n"] > 100 and queued["n"] + idle["n"] == run.requests.arrival_s.size
    np.testing.assert_allclose([queued["mean"], idle["mean"]], [0.02, 0.1], atol=1e-9)


# ------------------------------------------------------------------------------------------ wake-up table

def test_wakeup_table_recovers_a_known_slowdown():
    run = served(open_loop_arrivals(), wake=double_first_stage_after(1.0))
    points, decay = wakeup_table([run])
    assert decay == 0.0
    assert points, "no bucket had enough woken requests"
    idle_ms = [p["idle_ms"] for p in points]
    assert all(x > 0 for x in idle_ms) and idle_ms == sorted(set(idle_ms))
    assert all(p["requests"] >= MIN_WOKEN for p in points)
    for p in points:
        lo, hi = p["bucket_ms"][0], p["bucket_ms"][1] or np.inf
        if lo >= 1.0:
            np.testing.assert_allclose(p["factor"], 2.0, rtol=1e-6)
        elif hi <= 1.0:
            np.testing.assert_allclose(p["factor"], 1.0, rtol=1e-6)


def test_a_wakeup_that_fades_over_the_busy_period_gives_its_decay():
    def fading(gap_ms, position):          # stage j of a period after more than 1 ms idle: 1 + 1.0 * 0.6**j
        return 1.0 + 0.6 ** position if np.isfinite(gap_ms) and gap_ms > 1.0 else 1.0

    points, decay = wakeup_table([served(open_loop_arrivals(1), wake=fading)])
    assert decay == pytest.approx(0.6, abs=0.021)
    for p in points:
        if p["bucket_ms"][0] >= 1.0:
            assert p["factor"] == pytest.approx(2.0, rel=0.03)


def test_the_hosts_drift_cancels():
    """The host slows down by half over the run: requests queue up when it is slow, so the waited requests of
    the whole run are slower than the woken ones; the reference taken nearby is not fooled."""
    arrival = open_loop_arrivals(2)
    run = served(arrival, wake=double_first_stage_after(1.0), speed=lambda t: 1.0 + 0.5 * t / arrival[-1])
    for p in wakeup_table([run])[0]:
        if p["bucket_ms"][0] >= 1.0:
            np.testing.assert_allclose(p["factor"], 2.0, rtol=0.05)


def test_factors_below_one_are_kept_and_sparse_buckets_dropped():
    run = served(open_loop_arrivals(3), wake=lambda gap_ms, position: 0.8 if position == 0 and gap_ms < 1e3 else 1.0)
    points, _ = wakeup_table([run])
    assert points and all(0.0 < p["factor"] < 1.0 for p in points)
    sparse = served(np.arange(MIN_WOKEN - 1) * 0.01, wake=double_first_stage_after(0.0))
    assert wakeup_table([sparse]) == ([], 0.0)


def cold_members(idle_ms):
    """A member's compute takes 1.3x as long after more than 3 ms since it last ran."""
    return 1.3 if idle_ms > 3.0 else 1.0


def test_member_idle_table_recovers_a_known_member_slowdown():
    """Four stages per request: the first request of a busy period after idle runs cold members at positions 2
    and 3, whose excess is the member's; the warm ones (members that ran a request ago) show none."""
    run = served(open_loop_arrivals(4, n=1500), cold=cold_members, n_stages=4)
    points = member_idle_table([run])
    assert points and all(p["runs"] >= 40 for p in points)
    for p in points:
        lo, hi = p["bucket_ms"][0], p["bucket_ms"][1] or np.inf
        if lo >= 4.0:     # (the windows' levels keep a trace of each window's mix of cold and warm members)
            assert p["factor"] == pytest.approx(1.3, rel=1e-3)
        elif hi <= 2.0:
            assert p["factor"] == pytest.approx(1.0, rel=1e-3)


def test_a_slower_phase_that_holds_the_warm_runs_does_not_bias_the_member_idle_table():
    """At a low load the stage runs deep in a busy period, the tables' reference, come in the long busy periods,
    which a slower phase makes (here the whole host 2x for 0.5 s): divided by their windows' levels
    (`stage_levels`, a two-way fit), the table still finds the 1.3x of cold members; taken as they are, the slow
    references make it about 1.08x (run AO's `spin-50`)."""
    from simulator.runner.speed_fit import stage_levels

    arrival_s = np.cumsum(np.random.default_rng(0).exponential(0.007, 1500))
    start_s = 0.4 * arrival_s[-1]
    slow = lambda t_s: 2.0 if start_s <= t_s < start_s + 0.5 else 1.0
    run = served(arrival_s, cold=cold_members, n_stages=4, speed=slow)
    in_phase = (run.stage_times.start_s >= start_s + 0.25) & (run.stage_times.start_s < start_s + 0.5)
    # at 2x more members go cold between two requests, which the level takes in too
    assert 1.8 < np.median(stage_levels(run)[in_phase]) < 2.6
    assert np.median(stage_levels(run)[run.stage_times.start_s < start_s]) == pytest.approx(1.0, abs=0.02)
    cold = [p["factor"] for p in member_idle_table([run]) if p["bucket_ms"][0] >= 4.0]
    assert cold and all(f == pytest.approx(1.3, abs=0.1) for f in cold)


def test_the_wakeup_fitted_with_the_member_table_does_not_count_it_twice():
    run = served(open_loop_arrivals(5, n=1500), wake=double_first_stage_after(1.0), cold=cold_members, n_stages=4)
    points = member_idle_table([run])
    member = (tuple(p["idle_ms"] for p in points), tuple(p["factor"] for p in points))
    with_member, without = wakeup_table([run], member)[0], wakeup_table([run])[0]
    for a, b in zip(with_member, without):
        if a["bucket_ms"][0] >= 5.0:        # idle beyond 5 ms: the members are cold too
            assert a["factor"] == pytest.approx(2.0, rel=0.02)
            assert b["factor"] > 2.2


def test_no_warm_reference_gives_no_table():
    """Every request alone (no busy period reaches `WARM_FROM_STAGE`): nothing to compare with."""
    run = served(np.arange(200) * 0.01)
    assert WARM_FROM_STAGE > 2 and wakeup_table([run]) == ([], 0.0)


# ------------------------------------------------------------------------------------------ the profile

def test_host_costs_make_a_valid_profile(tmp_path):
    profile = constant_profile(latency_ms=BASE_MS[0], idle_power_w=None, overhead_ms=DECISION_MS[0])
    closed = (served(np.zeros(100), dispatch_ms=0.01), ("m", "m"))
    opens = [(served(open_loop_arrivals(seed), wake=double_first_stage_after(1.0), dispatch_ms=0.03,
                     idle_dispatch_ms=0.09), ("m", "m")) for seed in (4, 5)]
    measured = with_host_costs(profile, closed, opens)
    save_profile(tmp_path / "p.json", measured)
    loaded = load_profile(tmp_path / "p.json")
    idle_ms, factor = loaded.wakeup
    assert len(idle_ms) >= 2 and max(factor) == pytest.approx(2.0) and min(factor) == pytest.approx(1.0)
    assert 0.01 < loaded.dispatch_overhead_ms < 0.03 and loaded.idle_dispatch_ms == pytest.approx(0.09)
    assert loaded.provenance["wakeup_measured"]["points"][0]["idle_ms"] == idle_ms[0]
    assert loaded.provenance["dispatch_overhead_measured"]["n"] > 99


def test_the_scenarios_own_run_sets_the_member_table_where_it_has_points(tmp_path):
    """`with_serving_pattern`: the table of the scenario's own run replaces the every-stage runs' (kept in the
    provenance); a run without a point leaves the profile's table, and says so."""
    profile = constant_profile(latency_ms=BASE_MS[0], idle_power_w=None, overhead_ms=DECISION_MS[0])
    closed = (served(np.zeros(100)), ("m", "m"))
    opens = [(served(open_loop_arrivals(seed, n=1500), cold=lambda ms: 1.5 if ms > 3.0 else 1.0, n_stages=4),
              ("m",) * 4) for seed in (4, 5)]
    every_stage = with_host_costs(profile, closed, opens)
    assert max(every_stage.member_idle[1]) == pytest.approx(1.5, rel=1e-3)
    own = with_serving_pattern(every_stage, served(open_loop_arrivals(6, n=1500), cold=cold_members, n_stages=4))
    assert max(own.member_idle[1]) == pytest.approx(1.3, rel=1e-3)  # the scenario's own slowdown, not 1.5
    member = own.provenance["member_idle_measured"]
    assert member["every_stage_points"] == every_stage.provenance["member_idle_measured"]["points"]
    assert member["points"][0]["idle_ms"] == own.member_idle[0][0] and "scenario itself" in member["method"]
    assert "the scenario's own run" in own.provenance["window_levels_measured"]["levels"]
    alone = with_serving_pattern(every_stage, served(np.arange(200) * 0.01))    # no warm reference: no point
    assert alone.member_idle == every_stage.member_idle
    assert "serving_pattern" in alone.provenance["member_idle_measured"]
    save_profile(tmp_path / "p.json", own)
    assert load_profile(tmp_path / "p.json").member_idle == own.member_idle


def test_profile_from_runs_has_each_models_decision_overhead():
    pytest.importorskip("torch")
    from simulator.runner.measure import profile_from_runs

    profile = profile_from_runs("p", {"name": "test", "kind": "cpu"}, [(served(np.zeros(40)), ("a", "b"))])
    assert profile.decision_overhead_for("a") == pytest.approx(DECISION_MS[0])
    assert profile.decision_overhead_for("b") == pytest.approx(DECISION_MS[1])
    assert profile.decision_overhead_ms == pytest.approx(np.mean(DECISION_MS))
    assert profile.dispatch_overhead_ms == pytest.approx(0.0, abs=1e-9)
    assert np.mean(profile.models["b"].batches[1].latency.samples_ms) == pytest.approx(BASE_MS[1])
    parse_profile(profile.to_json())


def test_speed_factors_compare_decisions_per_model_and_can_skip_woken_requests():
    profile = parse_profile({**constant_profile(latency_ms=BASE_MS[0]).to_json(), "models": {
        "a": {"batches": {"1": {"latency_ms": {"samples": [BASE_MS[0]]}}}, "decision_overhead_ms": DECISION_MS[0]},
        "b": {"batches": {"1": {"latency_ms": {"samples": [BASE_MS[1]]}}}, "decision_overhead_ms": DECISION_MS[1]}}})
    run = served(open_loop_arrivals(6), wake=double_first_stage_after(0.0))
    stage, decision = speed_factors(run, ("a", "b"), profile, waited_only=True)
    np.testing.assert_allclose(stage, [1.0, 1.0])
    assert decision == pytest.approx(1.0)
    stage, decision = speed_factors(run, ("a", "b"), profile)
    assert stage[0] > 1.0 and stage[1] == pytest.approx(1.0) and decision > 1.0


# ------------------------------------------------------------------------------------------ the prediction

def _trace_config(tmp_path, profile) -> RunConfig:
    path = tmp_path / "wake.json"
    save_profile(path, profile)
    trace = tmp_path / "trace.csv"
    trace.write_text("arrival_s\n0.0\n0.0\n0.5\n")       # two back to back, then one after a long idle time
    return RunConfig(profile=(str(path),), arrivals=f"trace:{trace}", requests=None, members=(0, 1),
                     thresholds=(-np.inf,), models=("m", "m"), record_batches=True)


def test_the_prediction_slows_the_first_stage_after_idle_and_adds_the_dispatch(tmp_path):
    from dataclasses import replace

    plain = constant_profile(latency_ms=1.0, overhead_ms=0.1)
    woken = replace(plain, wakeup=((1.0, 100.0), (1.5, 3.0)), dispatch_overhead_ms=0.2)
    inputs = prepare(_trace_config(tmp_path, woken))
    batches = run_inputs(inputs).batches
    duration_ms = (batches.end_s - batches.start_s) * 1000.0
    assert batches.stage.tolist() == [0, 0, 0]
    np.testing.assert_allclose(duration_ms, [1.1 + 0.2, 1.1 + 0.2, 1.1 * 3.0 + 0.2])
    bare = run_inputs(without_host_costs(inputs, plain.decision_overhead_ms)).batches
    np.testing.assert_allclose((bare.end_s - bare.start_s) * 1000.0, [1.1, 1.1, 1.1])


# ------------------------------------------------------------------------------------------ speed process

def ou_speed(sigma: float, correlation_ms: float, noise_sd: float, seed: int = 0):
    """speed(t): a known Ornstein-Uhlenbeck trace (1 ms slots) times independent per-stage noise."""
    from simulator.speed import SpeedNoise, speed_trace

    rng = np.random.default_rng(seed)
    slots = speed_trace(SpeedNoise(sigma, correlation_ms), 20_000, rng)
    step_s = SpeedNoise(sigma, correlation_ms).step_s
    return lambda t_s: slots[int(t_s / step_s) % slots.size] * np.exp(noise_sd * rng.standard_normal())


def test_speed_process_is_recovered_from_a_closed_loop_run():
    from simulator.runner.speed_fit import fit_speed_noise

    run = served(np.zeros(4000), speed=ou_speed(0.15, 40.0, 0.1))      # back to back: a closed loop, ~4.5 s
    noise, facts = fit_speed_noise([run])
    assert noise.sigma == pytest.approx(0.15, rel=0.3)
    assert 20.0 < noise.correlation_ms < 80.0
    assert facts["total_sd"] > noise.sigma


def test_short_disturbances_do_not_pass_for_a_deep_fast_process():
    """Slow stages that come in pairs (a 0.8 ms disturbance, 1.6x slower, every ~33 ms) on top of a weak process:
    binned by lag, the pairs whose first stage was slow fall in the bins just above the stage time, and the fit took
    them for a process of 0.040-0.046 with a correlation of 3-4.5 ms. Grouped by distance it finds the process."""
    from simulator.runner.speed_fit import fit_speed_noise
    from simulator.speed import SpeedNoise, speed_trace

    truth = SpeedNoise(0.03, 10.0)
    slots = speed_trace(truth, 40_000, np.random.default_rng(0))
    rng = np.random.default_rng(100)
    hits = np.cumsum(rng.exponential(1 / 0.03, 4000))

    def speed(t_s):
        since = t_s * 1000.0 - hits[max(np.searchsorted(hits, t_s * 1000.0) - 1, 0)]
        disturbed = 1.6 if 0.0 <= since < 0.8 else 1.0
        return slots[int(t_s / truth.step_s) % slots.size] * np.exp(0.05 * rng.standard_normal()) * disturbed

    noise, facts = fit_speed_noise([served(np.zeros(3000), speed=speed)])     # back to back, ~3.4 s
    assert noise.sigma == pytest.approx(0.03, rel=0.25) and 5.0 < noise.correlation_ms < 20.0
    assert facts["total_sd"] > 2 * noise.sigma


def test_slow_phases_are_recovered_and_not_counted_twice():
    from simulator.runner.speed_fit import fit_speed_noise
    from simulator.speed import SpeedNoise, speed_trace

    truth = SpeedNoise(0.05, 20.0, 0.0, slow_factor=1.8, slow_share=0.2, slow_ms=60.0)
    slots = speed_trace(truth, 200_000, np.random.default_rng(6))
    rng = np.random.default_rng(7)
    speed = lambda t_s: slots[int(t_s / truth.step_s) % slots.size] * np.exp(0.05 * rng.standard_normal())
    noise, facts = fit_speed_noise([served(np.zeros(12000), speed=speed)])   # back to back, ~13 s
    assert noise.slow_factor == pytest.approx(1.8, rel=0.15)
    assert noise.slow_share == pytest.approx(0.2, abs=0.05)
    assert noise.slow_ms == pytest.approx(60.0, rel=0.3)
    assert noise.sigma < 0.15 and facts["phases"] >= 20     # the phases are not also read as a deep process


def test_steady_host_has_no_speed_process():
    from simulator.runner.speed_fit import fit_speed_noise

    rng = np.random.default_rng(2)
    noise, facts = fit_speed_noise([served(np.zeros(2000), speed=lambda t: np.exp(0.1 * rng.standard_normal()))])
    assert noise is None and "no slow variation" in facts["reason"]
    assert fit_speed_noise([served(np.zeros(50))])[0] is None       # too short


def test_run_speed_facts_count_slow_phases_too_few_for_a_profile():
    """Two 60 ms phases at 1.8x in a ~3.4 s run: too few for the profile's fit (`MIN_SLOW_PHASES`), still counted
    for the report; a steady run has neither a process nor phases."""
    from simulator.runner.speed_fit import MIN_SLOW_PHASES, fit_speed_noise, run_speed_facts

    slow_s = ((1.0, 1.06), (2.0, 2.06))
    speed = lambda t_s: 1.8 if any(a <= t_s < b for a, b in slow_s) else 1.0
    run = served(np.zeros(3000), speed=speed)
    facts = run_speed_facts(run)
    assert facts["phases"] == 2 < MIN_SLOW_PHASES and facts["window_ms"] == 20.0
    assert facts["slow_factor"] == pytest.approx(1.8, rel=0.05)
    total_s = run.stage_times.start_s[-1]
    assert facts["slow_share"] == pytest.approx(0.12 / total_s, rel=0.35)     # 6 of ~170 windows, give or take one
    assert fit_speed_noise([run])[0] is None or not fit_speed_noise([run])[0].has_slow_phases
    assert facts["windows"] == pytest.approx(total_s * 1000.0 / 20.0, abs=2)
    steady = run_speed_facts(served(np.zeros(2000)))
    assert steady["sigma"] is None and steady["phases"] == 0 and steady["slow_share"] == 0.0
    from simulator.runner.report import _speed_cell

    assert _speed_cell(steady) == "none; 0.0% (0)" and _speed_cell({**steady, "windows": 0}) == "none; –"
    assert _speed_cell(None) == "–" and _speed_cell(facts).endswith(f"; {100 * facts['slow_share']:.1f}% (2)")


def test_demodulated_samples_keep_means_and_lose_the_slow_phases():
    from simulator.runner.speed_fit import demodulated, fit_speed_noise, log_residuals

    run = served(np.zeros(4000), speed=ou_speed(0.2, 40.0, 0.05, seed=1))
    noise, facts = fit_speed_noise([run])
    flat = demodulated(run, noise, facts["stage_ms"])
    for k in range(2):
        at = run.stage_times.stage == k
        assert flat.stage_times.compute_s[at].mean() == pytest.approx(run.stage_times.compute_s[at].mean())
        assert flat.stage_times.decision_s[at].mean() == pytest.approx(run.stage_times.decision_s[at].mean())
    assert log_residuals(flat).std() < 0.5 * log_residuals(run).std()


def _host_run(other_cpu_cores: float):
    host = HostReport(wall_s=1.0, other_cpu_cores=other_cpu_cores, steal_fraction=0.0, preemptions_per_s=1.0, cpus=2)
    return SimpleNamespace(host=host, stall_fraction=0.0), ("model",)


@pytest.mark.parametrize("busy, attempts, kept_disturbed", [
    ([0.0], 1, False),
    ([0.9, 0.0], 2, False),
    ([0.9] * (PROFILING_RETRIES + 1), PROFILING_RETRIES + 1, True),
])
def test_a_profiling_run_the_host_disturbed_is_measured_again(busy, attempts, kept_disturbed):
    measured = iter(_host_run(b) for b in busy)
    record = []
    run = screened_run(lambda: next(measured), "closed loop", record)
    assert run[0].host.other_cpu_cores == busy[-1]                 # the last attempt is kept
    assert [a["attempt"] for a in record] == list(range(attempts))
    assert [a["interfered"] for a in record] == [b > 0.3 for b in busy]
    profile = SimpleNamespace(provenance={"profiling_interference": record})
    assert last_attempts(profile)["closed loop"]["attempt"] == attempts - 1
    assert disturbed_runs(profile) == (["closed loop"] if kept_disturbed else [])
    assert disturbed_runs(SimpleNamespace(provenance={})) == []    # measured before the screening


def test_window_levels_show_a_slower_phase_of_the_seconds_scale():
    from simulator.runner.speed_fit import LONG_WINDOW_MS, long_slow_share, window_levels

    rng = np.random.default_rng(3)
    slow = lambda t_s: 1.25 if 1.0 <= t_s < 1.5 else 1.0             # two windows of 250 ms, 1.25x
    run = served(np.zeros(3000), speed=lambda t_s: slow(t_s) * np.exp(0.05 * rng.standard_normal()))
    levels = window_levels(run)
    seconds = run.stage_times.start_s[-1]                            # back to back, ~3.4 s
    assert levels.size == int(seconds * 1000.0 // LONG_WINDOW_MS) + 1
    assert sorted(levels)[-2] == pytest.approx(1.25, rel=0.02) and np.median(levels) == pytest.approx(1.0)
    share, windows = long_slow_share([levels])
    assert windows == levels.size and share == pytest.approx(2 / levels.size, abs=1 / levels.size)
    steady = window_levels(served(np.zeros(3000), speed=lambda t_s: np.exp(0.05 * rng.standard_normal())))
    assert long_slow_share([steady])[0] == 0.0 and long_slow_share([]) == (None, 0)
