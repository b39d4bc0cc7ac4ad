"""Profiles for ``flexsim validate``, measured by the runner on this host, every scenario's before the real runs.

Each profile covers the scenario's stage set (its mode, members and compute models):

1. a bootstrap profile (each model timed back to back) lets `simulator.run.prepare` build the profiling runs;
2. a closed-loop run (one client, every stage) gives each model's latency samples and its own decision overhead
   (`simulator.runner.measure.profile_from_runs`): the host's decision is slower after a heavy forward pass
   (caches) than after a light one; the samples are de-modulated by the host's speed process during that run
   (`simulator.runner.speed_fit`);
3. open-loop runs at `LOAD_POINTS` (Poisson, every stage, on the profile of step 2, with bursts of simultaneous
   requests spread over them: `open_loop_trace`) give what a real host pays besides (`with_host_costs`): the
   host's speed process (`simulator.runner.speed_fit`), the member-idle table and the wake-up table
   (`simulator.runner.idle.member_idle_table` and `wakeup_table`: the bursts' warm stages are their reference)
   and, pooled with the closed loop, the dispatch overhead (`simulator.runner.measure.dispatch_overhead`). All
   come from the real runs' records; the profile of step 2 only sets the runs' arrival rates;
4. an open-loop run of the scenario itself (its policy, members and arrivals, on the profile of step 3; its own
   seed: `policy_run`) gives the member-idle table in the pattern the real runs serve in (`with_serving_pattern`):
   a threshold cascade runs its later members only for hard inputs, so a member comes back after the worker ran
   other requests' first stages, where in the every-stage runs it comes back after an idle gap (run AL's
   `cascade-80`: 1.016-1.088 at 2.5-11 ms served so, against 1.106-1.154 fitted on the every-stage runs). Where
   that run gives no point, the every-stage runs' table stays;
5. the serving factor (`simulator.runner.serving`): the open-loop runs' busy time per queued request over their
   simulation on the profile of step 3, the slowdown of open-loop service that the profile's model leaves out;
   beside it the same fitted at the host's speed level during each run (closed-loop bursts before, between and
   after them: `level_now`); fitted on the profile of step 3, with the every-stage runs' own member-idle table,
   which describes those runs; and the factor of the scenario's own run of step 4 at the level of the burst right
   before it, on the final profile (`with_own_run_factor`), which the verdict's prediction takes;
6. right before each real run, a short closed-loop burst measures the host's speed at that moment against the
   profile (`burst_factors`): the shared host's speed drifts by tens of percent over minutes.

The profiling runs of steps 2, 3 and 4 are screened for interference as the real runs are
(`simulator.runner.validation.interfered`: other processes' CPU time, the hypervisor's steal time, stalls): one that
was disturbed is measured again, up to `PROFILING_RETRIES` times, and the profile records every attempt
(``profiling_interference`` in its provenance), so a profile measured while the host was busy says so in the report.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from simulator.profiles import Profile, load_profile, save_profile

#: Offered loads of the open-loop profiling runs.
LOAD_POINTS = (0.5, 0.8)
#: Open-loop profiling runs: a burst of `BURST_REQUESTS` simultaneous requests arrives with every `BURST_EVERY`-th
#: Poisson request (and with the last), and the later arrivals move `BURST_ROOM` times the burst's mean service time
#: later, so the Poisson part keeps its offered load. Deep in a burst's busy period the stages run warm: the
#: wake-up's reference, often enough for the host's drift in between to stay small.
BURST_EVERY = 50
BURST_REQUESTS = 10
BURST_ROOM = 1.2
#: How many times a profiling run that was disturbed (`screened_run`) is measured again before it is kept as it is.
PROFILING_RETRIES = 2
#: How the wake-up table is measured (recorded in the profiles' provenance).
WAKEUP_METHOD = (f"open-loop Poisson runs (every stage) at offered loads {'/'.join(map(str, LOAD_POINTS))}, with "
                 f"a burst of {BURST_REQUESTS} simultaneous requests every {BURST_EVERY} requests: the relative "
                 "excess of each early stage run of a busy period (compute + decision, over its 250 ms window's "
                 "level) over warm runs of the same stages nearby (deep in a busy period), fitted as "
                 "(factor - 1) * decay**position with one factor "
                 "per bucket of the worker's idle time before the period and one decay; the point is the bucket's "
                 "median idle time (simulator/runner/idle.py)")

#: How the member-idle table is measured where the scenario's own run gives points (`with_serving_pattern`).
PATTERN_METHOD = ("an open-loop run of the scenario itself (its policy, members and arrivals, another seed; as "
                  "long as a real run): the relative excess of each stage run's compute time (over its 250 ms "
                  "window's level) over warm runs of the same stage nearby, from the third stage of a busy period "
                  "on, averaged per bucket of the time since that stage's member last ended "
                  "(simulator/runner/profiling.py, with_serving_pattern)")
#: How the member-idle table is measured on the every-stage runs (recorded in the profiles' provenance).
MEMBER_METHOD = ("the same open-loop runs: the relative excess of each stage run's compute time (over its 250 "
                 "ms window's level) over warm runs of the same stage nearby, from the third stage of a busy "
                 "period on (the wake-up faded), averaged "
                 "per bucket of the time since that stage's member last ended; the point is the bucket's median "
                 "time; the wake-up table is fitted after this factor is taken out (simulator/runner/idle.py)")


def profiling_requests(plan, scenario) -> int:
    """Requests of each profiling run of `scenario`: the plan's, at most half the scenario's cap on requests (costly
    members)."""
    cap = scenario.max_requests // 2 if scenario.max_requests else plan.profiling_requests
    return max(10, min(plan.profiling_requests, cap))


def group_key(scenario) -> str:
    """The name of a scenario's stage set (also its profile's file name)."""
    members = "-".join(str(m) for m in scenario.changes["members"])
    compute = "".join(f"-{c.replace('@', 'at')}" for c in scenario.compute)
    return f"{scenario.mode}-m{members}{compute}"


def device_facts(setup) -> dict:
    """The device section of the profiles (name, kind, threads, execution)."""
    from simulator.runner.real import device_name

    return {"name": device_name(setup.device), "kind": "cpu" if setup.device == "cpu" else "datacenter",
            "threads": setup.threads, "execution": setup.execution}


def profiling_setup(plan, cache) -> tuple[Path, dict, float | None]:
    """What every profile of `plan` starts from: the bootstrap profile of every stage model (its path; the caller
    deletes it), the device facts and the idle power (None where not measured)."""
    from simulator.runner.energy import idle_power_w

    device = device_facts(plan.setup)
    return write_bootstrap(plan, cache, plan.scenarios, device), device, idle_power_w(plan.setup.device)


def measure_scenario_profile(plan, cache, scenario, setup, progress=print) -> Path:
    """Measure the profile of `scenario`'s stage set; written to ``out_dir/profile-<scenario>.json``."""
    boot, device, idle_w = setup
    progress(f"  profile {group_key(scenario)}: closed loop, then open loop at loads "
             f"{', '.join(map(str, LOAD_POINTS))} with bursts")
    return measure_group(plan, cache, scenario, boot, device, idle_w,
                         plan.out_dir / f"profile-{scenario.name}.json")


def write_bootstrap(plan, cache, scenarios, device: dict) -> Path:
    """A profile of every stage model timed back to back, for building the profiling runs."""
    from simulator.runner.measure import bootstrap_profile
    from simulator.runner.stages import build_stages
    from simulator.runner.validation import scenario_setup, stage_models

    stage_of_model = {}
    for sc in scenarios:
        stages = build_stages(sc.changes["members"], scenario_setup(plan, sc), cache, np.arange(cache.n_samples))
        stage_of_model.update(zip(stage_models(sc, cache.model_names), stages))
    path = plan.out_dir / "profile-bootstrap.json"
    save_profile(path, bootstrap_profile("bootstrap", device, stage_of_model, np.arange(cache.n_samples),
                                         max(20, plan.profiling_requests // 4)))
    return path


def profiling_run(plan, cache, scenario, profile_path: Path, arrivals: str, seed: int, requests: int | None):
    """A run of every stage (static policy) of `scenario`'s stage set on `profile_path` (`requests` requests; None
    for a trace's); returns the run and the profile model of each stage."""
    from simulator.runner.real import run_real
    from simulator.runner.validation import scenario_setup

    config = profiling_config(plan, cache, scenario, profile_path, arrivals, seed, requests)
    return run_real(config, scenario_setup(plan, scenario), cache=cache), config.models


def with_own_run_factor(profile: Profile, plan, cache, scenario, path: Path, run, level: float) -> Profile:
    """`profile` (saved at `path`, final but for this) with the serving factor beyond the drift of the scenario's
    own run `run` (`policy_run`) in its provenance (``serving_factor_measured.own_run``, `own_run_factor_facts`);
    `level`: the host's speed level of the burst right before it (`level_now`)."""
    facts = own_run_factor_facts(plan, cache, scenario, profile, path, run, level,
                                 path.with_name(f"{path.stem}-own.csv"))
    measured = {**profile.provenance["serving_factor_measured"], "own_run": facts}
    return replace(profile, provenance={**profile.provenance, "serving_factor_measured": measured})


def own_run_factor_facts(plan, cache, scenario, profile: Profile, path: Path, run, level: float, trace: Path) -> dict:
    """`simulator.runner.serving.fit_own_run_factor` of the scenario's own run `run` against `profile` (saved at
    `path`), simulated on the run's own arrivals and samples (written to `trace` while the inputs are drawn, then
    removed); also what `experiments/own_run_factor.py` refits on a committed folder."""
    from simulator.run import prepare, run_inputs
    from simulator.runner.calibrate import scaled
    from simulator.runner.serving import SEEDS, fit_own_run_factor
    from simulator.runner.validation import base_config, deadline_change, write_trace

    try:
        arrival_s = run.requests.arrival_s
        write_trace(trace, arrival_s - arrival_s[0], run.requests.sample)
        config = base_config(plan, scenario, str(path), cache.model_names, arrivals=f"trace:{trace}",
                             **deadline_change(scenario, profile, cache))
        drawn = [prepare(replace(config, seed=config.seed + 200 + k), cache) for k in range(SEEDS)]
    finally:
        trace.unlink(missing_ok=True)
    return fit_own_run_factor(run, lambda seed, scale: run_inputs(scaled(drawn[seed], scale), "numba").requests,
                              level)


def profiling_config(plan, cache, scenario, profile_path: Path, arrivals: str, seed: int, requests: int | None):
    """The `RunConfig` of a profiling run (see `profiling_run`)."""
    from simulator.runner.validation import base_config

    return base_config(plan, scenario, str(profile_path), cache.model_names, requests=requests, arrivals=arrivals,
                       policy=("static",), static_k=len(scenario.changes["members"]), seed=seed)


def open_loop_trace(plan, cache, scenario, profile_path: Path, load: float, seed: int, path: Path) -> Path:
    """Write the trace of an open-loop profiling run to `path`: the plan's profiling requests as Poisson arrivals at
    offered `load` (on `profile_path`) with bursts (`with_bursts`); samples in the order `simulator.run.prepare`
    draws them, repeated."""
    from simulator.run import prepare
    from simulator.runner.validation import write_trace

    inputs = prepare(profiling_config(plan, cache, scenario, profile_path, f"poisson:load={load}", seed,
                                      profiling_requests(plan, scenario)), cache)
    arrival_s = with_bursts(inputs.arrival_s, load * float(np.mean(np.diff(inputs.arrival_s))))
    write_trace(path, arrival_s, np.resize(inputs.sample, arrival_s.size))
    return path


def with_bursts(arrival_s: np.ndarray, service_s: float) -> np.ndarray:
    """Sorted arrival times (s): `arrival_s`, with a burst of `BURST_REQUESTS` more arriving with every
    `BURST_EVERY`-th of them and with the last, each burst moving the later ones `BURST_ROOM` times its work later
    (`service_s`: the mean service time of a request)."""
    at = np.unique(np.append(np.arange(0, arrival_s.size, BURST_EVERY), arrival_s.size - 1))
    room_s = BURST_ROOM * BURST_REQUESTS * service_s
    shifted_s = arrival_s + room_s * np.searchsorted(at, np.arange(arrival_s.size))
    return np.sort(np.concatenate([shifted_s, np.repeat(shifted_s[at], BURST_REQUESTS)]), kind="stable")


def burst_factors(plan, cache, scenario, profile_path: Path, profile: Profile) -> tuple[np.ndarray, float]:
    """The host's speed right now against `profile`: a short closed-loop burst of the stage set (a third of the
    profiling requests), its stage and decision times over the profile's (`calibrate.speed_factors`)."""
    from simulator.runner.calibrate import speed_factors

    run, models = profiling_run(plan, cache, scenario, profile_path, "closed:1", plan.seed,
                                max(10, profiling_requests(plan, scenario) // 3))
    return speed_factors(run, models, profile)


CLOSED_LABEL = "closed loop"
POLICY_LABEL = "the scenario's own run"


def open_label(load: float) -> str:
    """How the profile's records name the open-loop profiling run at offered `load`."""
    return f"open loop at load {load}"


def screened_run(measure, label: str, attempts: list):
    """`measure()` (a profiling run: a ``(RealRun, models)`` pair), measured again while the host disturbed it
    (`simulator.runner.validation.interfered`), at most `PROFILING_RETRIES` times; the last attempt is kept. Every
    attempt's host report is appended to `attempts` under `label`."""
    from simulator.runner.validation import interfered

    for attempt in range(PROFILING_RETRIES + 1):
        run = measure()
        disturbed = interfered(run[0])
        attempts.append({"run": label, "attempt": attempt, "interfered": disturbed, "host": run[0].host.to_dict(),
                         "stall_fraction": run[0].stall_fraction})
        if not disturbed:
            break
    return run


def last_attempts(profile: Profile) -> dict:
    """``{profiling run: its last attempt}`` of `screened_run` as `profile` recorded them (``attempt``: how many
    times it was measured again); empty for a profile measured before the screening."""
    return {a["run"]: a for a in profile.provenance.get("profiling_interference", [])}


def disturbed_runs(profile: Profile) -> list[str]:
    """The profiling runs of `profile` kept although the host disturbed them (every attempt of `screened_run` was)."""
    return [label for label, a in last_attempts(profile).items() if a["interfered"]]


def measure_group(plan, cache, scenario, boot: Path, device: dict, idle_w, path: Path) -> Path:
    """Closed-loop profile of one stage set (with the host's speed process), then the host's costs from open-loop
    runs of every stage, each between two closed-loop bursts that measure the host's speed level, the serving
    factor fitted on them, and the member-idle table from a run of the scenario itself (`policy_run`,
    `with_serving_pattern`); written to `path`. Every run but the bursts is screened for interference
    (`screened_run`)."""
    attempts = []
    closed = screened_run(lambda: profiling_run(plan, cache, scenario, boot, "closed:1", plan.seed,
                                                profiling_requests(plan, scenario)), CLOSED_LABEL, attempts)
    save_profile(path, closed_loop_profile(f"{device['name']} ({path.stem})", device, closed, idle_w))
    base = load_profile(path)
    opens, traces, bursts = [], [], [level_now(plan, cache, scenario, path, base)]
    try:
        for i, load in enumerate(LOAD_POINTS):
            traces.append(open_loop_trace(plan, cache, scenario, path, load, plan.seed + 100 + i,
                                          path.with_name(f"{path.stem}-load{load}.csv")))
            opens.append(screened_run(lambda: profiling_run(plan, cache, scenario, path, f"trace:{traces[-1]}",
                                                            plan.seed, None), open_label(load), attempts))
            bursts.append(level_now(plan, cache, scenario, path, base))
        profile = with_host_costs(base, closed, opens)
        save_profile(path, profile)
        own = screened_run(lambda: policy_run(plan, cache, scenario, path, profile), POLICY_LABEL, attempts)
        keep_own_run(path.parent / scenario.name, own[0])
        profile = with_serving_factor(profile, plan, cache, scenario, path, opens, traces, bursts)
        profile = with_serving_pattern(profile, own[0])
        save_profile(path, profile)
        profile = with_own_run_factor(profile, plan, cache, scenario, path, own[0], bursts[-1])
        save_profile(path, replace(profile, provenance={**profile.provenance, "profiling_interference": attempts}))
    finally:
        for trace in traces:
            trace.unlink(missing_ok=True)
    return path


def policy_run(plan, cache, scenario, path: Path, profile: Profile):
    """An open-loop run of `scenario` itself (its policy, members, arrivals and deadline) on `profile` (saved at
    `path`), as long as one of its real runs, its arrivals drawn from a seed of its own; a ``(RealRun, models)``
    pair. Its length: without bursts its warm stage runs, the tables' reference, are few and come in the long busy
    periods; a table from one run of 1,500 requests differed from four real runs' by 0.028 (root mean square of
    the factors), from one of 3,000 by 0.024 (`docs/validation-history.md`, run AO)."""
    from simulator.runner.real import run_real
    from simulator.runner.validation import base_config, deadline_change, scenario_setup

    config = base_config(plan, scenario, str(path), cache.model_names, seed=plan.seed + 200,
                         **deadline_change(scenario, profile, cache))
    return run_real(config, scenario_setup(plan, scenario), cache=cache), config.models


#: The file, in a scenario's folder of the validation, that keeps the scenario's own profiling run (`policy_run`).
OWN_RUN_FILE = "own-run.npz"


def keep_own_run(folder: Path, run) -> None:
    """Write the scenario's own profiling run `run` into its `folder` (`OWN_RUN_FILE`, the real runs' format:
    `simulator.runner.validation.save_raw`): its member-idle table can be checked offline
    (`simulator.runner.idle.member_idle_table` of `simulator.runner.validation.load_raw`)."""
    from simulator.runner.validation import save_raw

    folder.mkdir(parents=True, exist_ok=True)
    save_raw(folder / OWN_RUN_FILE, run)


def with_serving_pattern(profile: Profile, run) -> Profile:
    """`profile` with the member-idle table of `run` (the scenario's own run, `policy_run`) where it gives points,
    the every-stage runs' table kept in the provenance beside it (``every_stage_points``); unchanged otherwise.
    The run's window levels join the profile's (`recorded_levels`)."""
    from simulator.runner.idle import member_idle_table
    from simulator.runner.speed_fit import window_levels

    facts = dict(profile.provenance["member_idle_measured"])
    levels = profile.provenance["window_levels_measured"]
    provenance = {**profile.provenance, "window_levels_measured": {
        **levels, "levels": {**levels["levels"], POLICY_LABEL: rounded(window_levels(run))}}}
    points = member_idle_table([run])
    if not points:
        facts["serving_pattern"] = "no point in the scenario's own run: the every-stage runs' table"
        return replace(profile, provenance={**provenance, "member_idle_measured": facts})
    member = {"points": points, "method": PATTERN_METHOD, "every_stage_points": facts["points"],
              "every_stage_method": facts["method"]}
    return replace(profile, member_idle=_table(points), provenance={**provenance, "member_idle_measured": member})


def level_now(plan, cache, scenario, path: Path, profile: Profile) -> float:
    """The host's speed level right now against the closed-loop `profile` (saved at `path`): a burst
    (`burst_factors`) weighted by the profiled stage times (`simulator.runner.validation.burst_level`)."""
    from simulator.runner.validation import burst_level, stage_models

    return burst_level(burst_factors(plan, cache, scenario, path, profile),
                       stage_models(scenario, cache.model_names), profile)


def with_serving_factor(profile: Profile, plan, cache, scenario, path: Path, opens, traces, bursts) -> Profile:
    """`profile` (saved at `path`, with its host costs) with the serving factor of the open-loop runs `opens` (on
    the traces `traces`) in its provenance (``serving_factor_measured``, `simulator.runner.serving`); `bursts`: the
    host's speed levels measured before, between and after them (`level_now`)."""
    from simulator.run import prepare, run_inputs
    from simulator.runner.calibrate import scaled
    from simulator.runner.serving import fit_serving_factor, levels_between

    prepared = {}

    def simulate(i: int, seed: int, scale: float):
        if (i, seed) not in prepared:
            config = profiling_config(plan, cache, scenario, path, f"trace:{traces[i]}", plan.seed + seed, None)
            prepared[i, seed] = prepare(config, cache)
        return run_inputs(scaled(prepared[i, seed], scale), "numba").requests

    facts = fit_serving_factor([run for run, _ in opens], simulate, levels_between(bursts))
    facts["burst_levels"] = [float(b) for b in bursts]
    return replace(profile, provenance={**profile.provenance, "serving_factor_measured": facts})


def closed_loop_profile(name: str, device: dict, closed, idle_w) -> Profile:
    """The profile of the closed-loop run `closed` (a ``(RealRun, models)`` pair), its latency samples and decision
    overheads de-modulated by the host's speed process during that run (`simulator.runner.speed_fit`)."""
    from simulator.runner.measure import profile_from_runs
    from simulator.runner.speed_fit import demodulated, fit_speed_noise

    run, models = closed
    noise, facts = fit_speed_noise([run])
    sampled = (demodulated(run, noise, facts["stage_ms"]), models) if noise is not None else closed
    profile = profile_from_runs(name, device, [sampled], idle_w)
    return replace(profile, provenance={**profile.provenance, "samples_demodulated_by": facts})


def with_host_costs(profile: Profile, closed, opens) -> Profile:
    """`profile` (from the closed-loop run `closed`) with what the real runs `opens` (open loop, on `profile`) show
    the host pays besides: the speed process, the member-idle and wake-up tables, the dispatch overhead (pooled
    with the closed loop's), the dispatch overhead of a request that arrives at an idle worker and, with a dispatcher
    thread, the release cost (`simulator.runner.measure.release_cost`).
    ``closed`` and ``opens`` are ``(RealRun, models)`` pairs; every figure comes from their real records, none
    from a simulation of `profile`."""
    from simulator.runner.idle import member_idle_table, wakeup_table
    from simulator.runner.measure import dispatch_overhead, release_cost
    from simulator.runner.speed_fit import fit_speed_noise

    runs = [run for run, _ in opens]
    noise, facts = fit_speed_noise(runs)
    member_points = member_idle_table(runs)
    member = _table(member_points)
    points, decay = wakeup_table(runs, member)
    dispatch = dispatch_overhead([run for run, _ in (closed, *opens)])
    idle = dispatch_overhead(runs, idle=True)
    release = release_cost(runs)
    provenance = {**profile.provenance, "dispatch_overhead_measured": dispatch, "idle_dispatch_measured": idle,
                  "release_cost_measured": release, "window_levels_measured": recorded_levels(closed, opens),
                  "speed_noise_measured": facts,
                  "member_idle_measured": {"points": member_points, "method": MEMBER_METHOD},
                  "wakeup_measured": {"points": points, "decay": decay, "method": WAKEUP_METHOD}}
    return replace(profile, wakeup=_table(points), wakeup_decay=decay, member_idle=member,
                   dispatch_overhead_ms=dispatch["mean"], idle_dispatch_ms=idle["mean"] if idle["n"] else None,
                   release_cost_ms=release["mean"],
                   speed_noise=noise, provenance=provenance)


def recorded_levels(closed, opens) -> dict:
    """The profiling runs' `simulator.runner.speed_fit.window_levels` (a diagnostic of the host's slower phases of
    the seconds scale), per run: ``{"window_ms", "levels": {run: [level, ...]}}``."""
    from simulator.runner.speed_fit import LONG_WINDOW_MS, window_levels

    labels = [CLOSED_LABEL, *map(open_label, LOAD_POINTS)]
    runs = [closed, *opens]
    return {"window_ms": LONG_WINDOW_MS,
            "levels": {label: rounded(window_levels(run)) for label, (run, _) in zip(labels, runs)}}


def rounded(levels) -> list[float]:
    """Window levels as stored in a profile or results.json (4 decimals)."""
    return [round(float(x), 4) for x in levels]


def _table(points: list[dict]) -> tuple | None:
    """A profile's ``(idle_ms, factor)`` table from fitted points (`simulator.runner.idle`); None without any."""
    return (tuple(p["idle_ms"] for p in points), tuple(p["factor"] for p in points)) if points else None
