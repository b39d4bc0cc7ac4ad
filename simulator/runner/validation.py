"""Real runs against simulations of the same inputs: the experiment behind ``flexsim validate``.

For every scenario (a policy, a workload and a mode):

1. the scenario's members are profiled on this host by the runner itself (`simulator.runner.profiling`), every
   scenario's profile first: a closed-loop run through the worker gives each model's latency samples, its decision
   overhead and the host's speed process, and open-loop runs at lower loads what the host pays besides (wake-up
   after idle, dispatch overhead, the serving factor of open-loop service: `simulator.runner.serving`);
2. the workload is drawn once (`simulator.run.prepare`) and written as a trace (arrival times and samples);
3. the real runner serves that trace ``repeats`` times, in rounds interleaved over the scenarios (`run_validation`):
   each scenario's repeats are spread over the whole session;
4. the simulator (Numba engine) simulates the same trace with the same profile over ``seeds`` seeds of the
   service-time draws and speed traces, giving a median and a 5-95% band (the ``profile`` prediction, the
   scenario's top-level figures). The speed traces carry the host's speed-level uncertainty too: for the median,
   the drift between profiling runs seconds apart, pooled over the session's poll-release profiles
   (`session_level`); for the band, the spread of the host's level over the whole session, measured by the
   closed-loop bursts before every real run against each scenario's profile (``level_sigma``,
   `session_level_sigma`). The prediction the verdict uses (``session``, since 2026-12-06) is the same profile at
   the host's speed level over the session, the geometric mean of those bursts (`session_simulations`): the
   simulator given the device's speed while the runs were served, which on a shared host drifts by tens of percent
   between the profiling and the runs; since run AK its speed process also has the long phases of the session's
   profiling runs (`session_long_phases`), phases of a few hundred milliseconds at 1.1-1.3x. For comparison, and
   as a diagnostic: the profile without the host's other costs (``bare``: the closed-loop latencies and one
   decision overhead, what the simulator predicted before those were measured); without the speed process only
   (``steady``); and, per real run, the profile scaled by the host's speed measured by the one burst right before
   that run (``fresh``);
5. per run: latency (mean, p50, p99) real vs simulated, stages run and predictions request by request, the
   utilisation, the host's interference; per scenario: the spread between the real repeats.

`run_validation` returns everything as one JSON-able dict and writes the raw traces; `simulator.runner.report`
turns it into the Markdown report and the figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from simulator.config import RunConfig
from simulator.errors import FlexsimError, given_twice, require
from simulator.io import atomic_path
from simulator.logits import load_cache
from simulator.runner.bundle import CACHE_PATH
from simulator.runner.real import RunnerSetup

BAND = (5.0, 95.0)
#: Bootstrap resamples of the seeds behind the Monte Carlo error of a simulated median (`median_mc_error`), and
#: the seed of their draws (fixed: a report re-renders the same figure).
MC_RESAMPLES = 1000
MC_SEED = 0
METRICS = ("latency_mean_ms", "latency_p50_ms", "latency_p99_ms")
#: Interference thresholds: a run is flagged when others used more CPU than this (cores), the hypervisor stole
#: more than this fraction, or more than this fraction of its stages were stalls (`result.STALL_FACTOR`).
MAX_OTHER_CPU_CORES = 0.3
MAX_STEAL_FRACTION = 0.02
MAX_STALL_FRACTION = 0.005
#: Host drift: a run is flagged when its mean service time per request (start to finish) differs from the
#: simulation's (median over the seeds) by more than this fraction: the host ran the same forward passes at
#: another speed than it had while profiling, minutes before (a shared VM's neighbours leave no trace in the
#: guest's CPU accounting).
MAX_HOST_DRIFT = 0.10
#: Fewest runs without interference for a timing verdict at loads up to 80% (a spread needs two): with fewer the
#: verdict is undecided, whatever the errors.
MIN_QUIET_RUNS = 2
#: Correlation time (ms) of the constant speed trace of a profile without a speed process when only the level
#: uncertainty is simulated (any value: with sigma 0 the trace is flat; a long one keeps it short).
LEVEL_ONLY_MS = 1000.0
#: The same where long phases are simulated (`session_long_phases`): slots of 1/8 of it, well within a phase.
LONG_ONLY_MS = 100.0
#: Margin thresholds of the flexible ensemble (4 members) and of the cascade (3 members).
ENSEMBLE = (0, 1, 2, 3)
ENSEMBLE_THRESHOLDS = (0.6, 0.5, 0.4)
CASCADE = (0, 4, 5)
CASCADE_THRESHOLDS = (0.8, 0.7)


#: The plan's counts: (lowest, highest). The highest only keep an impossible request (a billion repeats, arrays of
#: terabytes) from running for ever or failing deep inside: a validation here takes 3,000 requests x 5 repeats.
PLAN_BOUNDS = {"requests": (10, 10_000_000), "repeats": (1, 1000), "seeds": (1, 100_000),
               "profiling_requests": (10, 10_000_000)}


@dataclass(frozen=True)
class Scenario:
    """One validated configuration.

    ``changes`` are `RunConfig` fields; ``deadline_stages``, when set, makes the deadline that many times the
    profiled mean time of the first stage (latency + decision overhead); ``max_requests`` caps the plan's
    requests per run (for costly members).
    """

    name: str
    description: str
    changes: dict
    mode: str = "live"
    compute: tuple = ()
    release: str = "poll"
    idle: str = "sleep"
    deadline_stages: float | None = None
    max_requests: int | None = None

    @property
    def load(self) -> float | None:
        arrivals = self.changes.get("arrivals", "")
        return float(arrivals.split("load=")[1].split(":")[0]) if "load=" in arrivals else None

    @property
    def threshold_only(self) -> bool:
        """Decisions independent of timing: stages and predictions must equal the simulator's."""
        return set(self.changes.get("policy", ("threshold",))) <= {"threshold", "static", "oracle"}


def _ensemble(load: str) -> dict:
    return dict(members=ENSEMBLE, thresholds=ENSEMBLE_THRESHOLDS, arrivals=load)


SCENARIOS = (
    Scenario("open-50", "flexible ensemble (4 x w8), Poisson at 50% load", _ensemble("poisson:load=0.5")),
    Scenario("open-80", "flexible ensemble (4 x w8), Poisson at 80% load", _ensemble("poisson:load=0.8")),
    Scenario("open-95", "flexible ensemble (4 x w8), Poisson at 95% load", _ensemble("poisson:load=0.95")),
    Scenario("closed-4", "flexible ensemble (4 x w8), closed loop, 4 clients", _ensemble("closed:4")),
    Scenario("deadline-80", "flexible ensemble + deadline (1.5 first-stage times), Poisson at 80% load",
             {**_ensemble("poisson:load=0.8"), "policy": ("threshold", "deadline")}, deadline_stages=1.5),
    Scenario("cascade-80", "heterogeneous cascade w8 -> w16 -> w32 (last-stage softmax), Poisson at 80% load",
             dict(members=CASCADE, thresholds=CASCADE_THRESHOLDS, combiner="last", arrivals="poisson:load=0.8")),
    Scenario("replay-80", "replay mode: ResNet-18 at 32x32 computes, cached logits of 4 x w8 decide, 80% load",
             _ensemble("poisson:load=0.8"), mode="replay", compute=("resnet18@32",), max_requests=1000),
    Scenario("spin-50", "as open-50, the idle worker polls the clock instead of sleeping (the CPU never idles)",
             _ensemble("poisson:load=0.5"), idle="spin"),
    Scenario("thread-50", "as open-50, requests released by a dispatcher thread (the worker blocks on a queue)",
             _ensemble("poisson:load=0.5"), release="thread"),
)


@dataclass(frozen=True)
class ValidationPlan:
    """What `run_validation` does: scenarios, sizes and the runner's setup."""

    out_dir: Path
    scenarios: tuple = SCENARIOS
    requests: int = 3000
    repeats: int = 5
    seeds: int = 200
    profiling_requests: int = 1500
    seed: int = 1
    logits: str = str(CACHE_PATH)
    setup: RunnerSetup = field(default_factory=RunnerSetup)

    def __post_init__(self):
        for name, (lowest, highest) in PLAN_BOUNDS.items():
            value = getattr(self, name)
            require(lowest <= value <= highest, f"invalid {name.replace('_', ' ')} = {value}: must be from {lowest} "
                    f"to {highest}")
        require(self.seed >= 0, f"invalid seed = {self.seed}: must be >= 0")


def stage_models(scenario: Scenario, model_names) -> tuple:
    """The profile model of each stage: the member's model (live) or the compute model (replay)."""
    members = scenario.changes["members"]
    if scenario.mode == "live":
        return tuple(model_names[m] for m in members)
    return scenario.compute * len(members) if len(scenario.compute) == 1 else tuple(scenario.compute)


def scenario_setup(plan: ValidationPlan, scenario: Scenario) -> RunnerSetup:
    return replace(plan.setup, mode=scenario.mode, compute=scenario.compute, release=scenario.release,
                   idle=scenario.idle)


def base_config(plan: ValidationPlan, scenario: Scenario, profile: str, model_names, **changes) -> RunConfig:
    """The scenario's `RunConfig` on `profile`."""
    requests = min(plan.requests, scenario.max_requests or plan.requests)
    fields = dict(logits=plan.logits, profile=(profile,), requests=requests, seed=plan.seed,
                  models=stage_models(scenario, model_names))
    return RunConfig(**{**fields, **scenario.changes, **changes})


# ----------------------------------------------------------------------------------------------- one scenario

@dataclass(frozen=True)
class SessionFacts:
    """What the session's measurements pool over its scenarios for the predictions: the level uncertainty over the
    session (`session_level_sigma`) and around each scenario's session level (`session_spread_sigma`), the poll-
    release open loops' serving factor (`pooled_serving_factor`) and the long phases of the profiling runs
    (`session_long_phases`)."""

    level_sigma: float
    spread_sigma: float = 0.0
    serving_factor: float | None = None
    long_phases: dict | None = None


@dataclass
class ScenarioRuns:
    """One scenario across the interleaved rounds of `run_validation`: its measured profile, its config (open-loop
    arrivals drawn once, as a trace), the seeded simulation inputs with the level uncertainty `level`, and the real
    runs served so far, each with the host's speed measured by a burst right before it and its start (seconds into
    the session)."""

    scenario: Scenario
    profile_path: Path
    profile: object
    config: RunConfig
    drawn: list
    level: float
    reals: list = field(default_factory=list)
    bursts: list = field(default_factory=list)
    started_s: list = field(default_factory=list)


def prepare_scenario(plan: ValidationPlan, scenario: Scenario, profile_path: Path, profile, cache,
                     level: float = 0.0, long: dict | None = None) -> ScenarioRuns:
    """The scenario's config on its measured `profile` (loaded from `profile_path`) and its seeded simulation inputs;
    the simulations add the speed-level uncertainty `level` (``speed_noise.level_sigma``, `simulator.speed`) and,
    where given, the long phases `long` (`with_level`) to the profile's speed process."""
    from simulator.run import prepare

    folder = plan.out_dir / scenario.name
    folder.mkdir(parents=True, exist_ok=True)
    config = scenario_config(plan, scenario, profile_path, profile, cache, folder)
    simulated = with_level(config, profile, level, long)
    drawn = [prepare(replace(simulated, seed=config.seed + i), cache) for i in range(plan.seeds)]
    return ScenarioRuns(scenario, profile_path, profile, config, drawn, level)


def serve_once(plan: ValidationPlan, runs: ScenarioRuns, cache, session_start: float) -> None:
    """One more real run of `runs`' scenario (the same trace every time), after a burst that measures the host's
    speed against the profile."""
    import time

    from simulator.runner.profiling import burst_factors
    from simulator.runner.real import run_real

    runs.bursts.append(burst_factors(plan, cache, runs.scenario, runs.profile_path, runs.profile))
    runs.started_s.append(time.monotonic() - session_start)
    runs.reals.append(run_real(runs.config, scenario_setup(plan, runs.scenario), inputs=runs.drawn[0], cache=cache))


def finish_scenario(plan: ValidationPlan, runs: ScenarioRuns, cache, session: SessionFacts) -> tuple[dict, tuple]:
    """Simulate `runs`' scenario over the seeds, compare with its real runs; raw traces written under
    ``out_dir/name``. The profile's prediction takes its median from the seeds drawn with the profiling runs' level
    uncertainty (``runs.level``) and its 5-95% band from the same seeds drawn with the level uncertainty measured
    over the session (``session.level_sigma``); the verdict's (``session``, `session_simulations`) pools more of
    the session's measurements (`SessionFacts`); the other predictions and the diagnostics keep the profiling runs'.

    Returns the scenario's figures and its latency CDF panel ``(title, real latencies, simulated latencies,
    simulated latencies without the host's other costs)``.
    """
    from simulator.run import run_inputs
    from simulator.runner.calibrate import scaled, without_host_costs
    from simulator.runner.idle import idle_effect, member_idle_effect
    from simulator.runner.profiling import disturbed_runs

    scenario, config, drawn, profile, reals = runs.scenario, runs.config, runs.drawn, runs.profile, runs.reals
    factor = serving_factor(profile, drawn[0])
    seeded = [scaled(x, factor) for x in drawn]
    sims = [run_inputs(inputs, "numba") for inputs in seeded]
    band_sims = band_simulations(with_level(config, profile, session.level_sigma), cache, factor, len(drawn))
    for i, real in enumerate(reals):
        save_raw(plan.out_dir / scenario.name / f"real-{i}.npz", real)
    session_sims, session_band, session_facts = session_simulations(runs, cache, session)
    figures = compare(scenario, config, reals, sims, band_sims, reference=session_sims)
    for run, started_s in zip(figures["runs"], runs.started_s):
        run["session_s"] = float(started_s)
    figures["profile"] = runs.profile_path.name
    figures["serving_factor"], figures["level_sigma"], figures["level_sigma_profiling"] = (factor, session.level_sigma,
                                                                                           runs.level)
    plain = [without_host_costs(x, profile.decision_overhead_ms) for x in drawn]
    bare = [run_inputs(x, "numba") for x in plain]
    figures["bare"] = prediction(figures, bare)
    figures["steady"] = prediction(figures, [run_inputs(replace(x, speed=None), "numba") for x in seeded])
    figures["fresh"] = fresh_prediction(figures, seeded, runs.bursts)
    figures["session"] = {**prediction(figures, session_sims, session_band), **session_facts}
    figures["drift_reference"] = "session"
    figures["profile_disturbed"] = disturbed_runs(profile)
    panel = (f"{scenario.name} ({scenario.mode}, {scenario.changes['arrivals']})", [r.requests.latency_ms for r in reals],
             [s.requests.latency_ms for s in session_sims], [s.requests.latency_ms for s in bare])
    figures["idle"] = idle_effect(reals)
    figures["member_idle"] = member_idle_effect(reals)
    figures["diagnostics"] = diagnose(reals, drawn, config.models, profile, drawn[0].clients)
    return figures, panel


def session_simulations(runs: ScenarioRuns, cache, session: SessionFacts) -> tuple[list, list, dict]:
    """The simulations of the prediction the verdict uses (``session``): the profile at the host's speed level over
    the session (`session_speed`) times what open-loop serving costs beyond the drift (`verdict_serving_factor`:
    the scenario's own profiling run's where measured), its speed process with the session's
    long phases (``session.long_phases``, where the profiling runs had enough); for its median the seeds of the
    profile's (drawn again where the long phases are added), for its 5-95% band seeds drawn with the level
    uncertainty around the session level (``session.spread_sigma``). Returns both sets and the facts (``speed``,
    ``serving_factor``, the every-stage runs' ``serving_factor_own``, ``serving_factor_source`` where it is the own
    run's, ``level_sigma``, ``long_phases`` and each burst's level, ``burst_levels``)."""
    from simulator.run import run_inputs
    from simulator.runner.calibrate import scaled

    config, profile, long = runs.config, runs.profile, session.long_phases
    levels = burst_levels(runs.bursts, config.models, profile)
    speed = session_speed(levels)
    beyond = verdict_serving_factor(runs, session.serving_factor)
    scale = speed * beyond
    if long is None:
        sims = [run_inputs(scaled(x, scale), "numba") for x in runs.drawn]
    else:
        sims = band_simulations(with_level(config, profile, runs.level, long), cache, scale, len(runs.drawn))
    band_sims = band_simulations(with_level(config, profile, session.spread_sigma, long), cache, scale,
                                 len(runs.drawn))
    own_run = own_run_factor(profile, runs.drawn[0])
    return sims, band_sims, {"speed": speed, "serving_factor": beyond,
                             "serving_factor_own": serving_factor_beyond_drift(profile, runs.drawn[0]),
                             **({} if own_run is None else {"serving_factor_source": "own run"}),
                             "level_sigma": session.spread_sigma, "long_phases": long, "burst_levels": levels}


def band_simulations(config: RunConfig, cache, factor: float, seeds: int) -> list:
    """`seeds` simulations of `config` (seeds ``config.seed`` on), every stage scaled by `factor`: a band's."""
    from simulator.run import prepare, run_inputs
    from simulator.runner.calibrate import scaled

    return [run_inputs(scaled(prepare(replace(config, seed=config.seed + i), cache), factor), "numba")
            for i in range(seeds)]


def with_level(config: RunConfig, profile, level: float, long: dict | None = None) -> RunConfig:
    """`config` with the profile's speed process plus the level uncertainty `level` and, where given, the long
    phases `long` (`simulator.runner.speed_fit.phase_facts`); unchanged where neither. A profile without a process
    gets a flat one of correlation time `LEVEL_ONLY_MS` (`LONG_ONLY_MS` with long phases: the trace's slots must be
    shorter than the phases)."""
    from simulator.speed import SpeedNoise

    if level <= 0 and long is None:
        return config
    noise = profile.speed_noise or SpeedNoise(0.0, LEVEL_ONLY_MS if long is None else LONG_ONLY_MS)
    noise = replace(noise, level_sigma=level)
    if long is not None:
        noise = replace(noise, long_factor=long["slow_factor"], long_share=long["slow_share"],
                        long_ms=long["slow_ms"])
    return replace(config, speed_noise=noise.as_tuple())


def session_level(measured: list) -> float:
    """The speed-level uncertainty from the session's poll-release profiles (``(release, Profile)`` pairs):
    `simulator.runner.serving.level_sigma` of their open-loop runs' ratios at factor 1."""
    from simulator.runner.serving import level_sigma

    ratios = [r for release, profile in measured if release == "poll"
              for r in profile.provenance.get("serving_factor_measured", {}).get("ratio_at_one", [])]
    return level_sigma(ratios)


def burst_level(burst: tuple, models: tuple, profile) -> float:
    """The host's speed level that a burst (`simulator.runner.profiling.burst_factors`: per-stage compute factors
    and one decision factor against `profile`) measured: its factors weighted by the profiled stage times, i.e. a
    request's service time through the stages `models` at the burst's speed over the profiled one."""
    stage_factors, decision_factor = burst
    compute = np.array([profile.entry(m, 1).latency.icdf_ms().mean() for m in models])
    decision = np.array([profile.decision_overhead_for(m) for m in models])
    return float((np.dot(stage_factors, compute) + decision_factor * decision.sum()) / (compute.sum() + decision.sum()))


def session_level_sigma(states: list) -> float:
    """The speed-level uncertainty over the session: `simulator.runner.serving.level_sigma` of every burst's level
    (`burst_level`; the closed-loop bursts right before each real run, over every scenario, against the scenario's
    own profile). The bursts are spread over the session as the real runs are, so this measures how far a run's
    level lands from its profile's minutes later, where the profiling runs' drift (`session_level`) measures it over
    seconds; it includes each profile's own offset from the session's typical level."""
    from simulator.runner.serving import level_sigma

    return level_sigma([level for s in states for level in burst_levels(s.bursts, s.config.models, s.profile)])


def burst_levels(bursts: list, models: tuple, profile) -> list[float]:
    """`burst_level` of each of `bursts`, in order."""
    return [burst_level(b, models, profile) for b in bursts]


def session_speed(levels: list) -> float:
    """The host's speed level over the session: the geometric mean of the `levels` (`burst_levels`) of the
    closed-loop bursts right before each of the scenario's real runs; 1.0 without bursts."""
    return float(np.exp(np.mean(np.log(levels)))) if len(levels) else 1.0


def session_spread_sigma(states: list) -> float:
    """How far a run's speed level lands from its scenario's session level (`session_speed`):
    `simulator.runner.serving.level_sigma` of every burst's level over its scenario's session level, pooled over
    the scenarios: the level uncertainty of the session prediction's band (`session_level_sigma` without each
    profile's own offset, which the session level takes out)."""
    from simulator.runner.serving import level_sigma

    ratios = []
    for s in states:
        levels = burst_levels(s.bursts, s.config.models, s.profile)
        ratios += [level / session_speed(levels) for level in levels]
    return level_sigma(ratios)


def serving_factor_beyond_drift(profile, inputs) -> float:
    """What open-loop serving costs beyond the host's drift (`simulator.runner.serving`, ``factor_at_levels``) where
    `inputs` is an open loop, the serving factor itself for a profile measured before the levels were (2026-12-06);
    1.0 for a closed loop."""
    if inputs.clients:
        return 1.0
    facts = profile.provenance.get("serving_factor_measured", {})
    return float(facts.get("factor_at_levels", facts.get("factor", 1.0)))


def pooled_serving_factor(states: list) -> float | None:
    """The verdict's serving factor of a poll-release open loop: `serving_factor_beyond_drift` pooled (the median)
    over the session's poll-release open-loop scenarios; None without any.

    Those profiles describe one worker serving one way, minutes apart, yet their factors beyond the drift spread from
    0.98 to 1.09 within a session (runs AB and AF, `docs/validation-history.md`): mostly the noise of the few seconds
    each is measured over. The median keeps what they share (a session-wide slowdown of open-loop serving, run X's
    1.09) and cuts that noise by about the square root of their number. A dispatcher thread's scenario keeps its
    own: that arrangement serves differently."""
    factors = [serving_factor_beyond_drift(s.profile, s.drawn[0]) for s in states if _poll_open_loop(s)]
    return float(np.median(factors)) if factors else None


def session_long_phases(states: list) -> dict | None:
    """The long phases of the session (`simulator.runner.speed_fit.long_phases`) pooled over the profiling runs of
    every scenario's profile, all measured before the real runs; None where they show fewer than
    `simulator.runner.speed_fit.MIN_SLOW_PHASES` phases, or the profiles predate the record (run AJ).

    A scenario's own profiling runs, a few seconds, hold two or three such phases at most, too few to fit; the
    phases are the host's, not the scenario's (run AJ: 7.2% of the profiling runs' 250 ms windows in 34 phases, at
    1.20x for 360 ms on average, against 5.4%, 1.16x and 364 ms in the real runs that followed)."""
    from simulator.runner.speed_fit import MIN_SLOW_PHASES, long_phases

    levels = [x for s in states
              for x in s.profile.provenance.get("window_levels_measured", {}).get("levels", {}).values()]
    facts = long_phases(levels)
    return facts if facts["phases"] >= MIN_SLOW_PHASES else None


def _poll_open_loop(runs) -> bool:
    """Whether `runs`' scenario is an open loop whose requests the worker polls for (no dispatcher thread)."""
    return runs.scenario.release == "poll" and not runs.drawn[0].clients


def own_run_factor(profile, inputs) -> float | None:
    """The serving factor beyond the drift of the scenario's own profiling run (`simulator.runner.serving.
    fit_own_run_factor`, measured since run AX) where `inputs` is an open loop; 1.0 for a closed loop; None for a
    profile measured before it."""
    if inputs.clients:
        return 1.0
    own = profile.provenance.get("serving_factor_measured", {}).get("own_run")
    return None if own is None else float(own["factor_at_level"])


def verdict_serving_factor(runs, pooled: float | None) -> float:
    """The serving factor of `runs`' scenario in the verdict's prediction: its own run's (`own_run_factor`; 1.0 for
    a closed loop); for a profile measured before that one was (run AX), as then: `pooled`
    (`pooled_serving_factor`) for a poll-release open loop, the every-stage runs' beyond the drift otherwise."""
    own_run = own_run_factor(runs.profile, runs.drawn[0])
    if own_run is not None:
        return own_run
    own = serving_factor_beyond_drift(runs.profile, runs.drawn[0])
    return pooled if _poll_open_loop(runs) and pooled is not None else own


def serving_factor(profile, inputs) -> float:
    """The serving factor measured with `profile` (`simulator.runner.serving`) where `inputs` is an open loop; 1.0
    for a closed loop (the arrangement the profile's samples were measured in) or a profile without one."""
    if inputs.clients:
        return 1.0
    return float(profile.provenance.get("serving_factor_measured", {}).get("factor", 1.0))


def scenario_config(plan: ValidationPlan, scenario: Scenario, profile_path: Path, profile, cache,
                    folder: Path) -> RunConfig:
    """The scenario's config on the measured `profile` (at `profile_path`); open-loop arrivals drawn once and
    written as a trace."""
    from simulator.run import prepare
    from simulator.workload import parse_arrivals

    config = base_config(plan, scenario, str(profile_path), cache.model_names,
                         **deadline_change(scenario, profile, cache))
    if parse_arrivals(config.arrivals).closed:
        return config
    inputs = prepare(config, cache)
    trace = folder / "trace.csv"
    write_trace(trace, inputs.arrival_s, inputs.sample)
    return replace(config, arrivals=f"trace:{trace}")


def deadline_change(scenario: Scenario, profile, cache) -> dict:
    """``{"deadline_ms": ...}`` for a scenario with a deadline (``deadline_stages`` times the profiled mean time of
    its first stage, decision included), else nothing."""
    if scenario.deadline_stages is None:
        return {}
    first = stage_models(scenario, cache.model_names)[0]
    mean_ms = float(np.mean(profile.entry(first, 1).latency.icdf_ms())) + profile.decision_overhead_for(first)
    return {"deadline_ms": scenario.deadline_stages * mean_ms}


def write_trace(path: Path, arrival_s: np.ndarray, sample: np.ndarray) -> None:
    """A trace CSV (``arrival_s,sample``) that `simulator.workload.read_trace` reads, written atomically."""
    with atomic_path(path) as tmp:
        np.savetxt(tmp, np.column_stack([arrival_s, sample]), fmt=["%.9f", "%d"], delimiter=",",
                   header="arrival_s,sample", comments="")


def save_raw(path: Path, real) -> None:
    """A real run's per-request and per-stage records as a compressed ``.npz``."""
    req, st = real.requests, real.stage_times
    arrays = {"arrival_s": req.arrival_s, "start_s": req.start_s, "finish_s": req.finish_s,
              "stages_run": req.stages_run, "prediction": req.prediction, "sample": req.sample,
              "queue_len": req.queue_len, "stage_request": st.request, "stage": st.stage,
              "stage_start_s": st.start_s, "stage_compute_ms": (st.compute_s * 1e3).astype(np.float32),
              "stage_decision_ms": (st.decision_s * 1e3).astype(np.float32)}
    if real.release_lag_s is not None:
        arrays["release_lag_ms"] = (real.release_lag_s * 1e3).astype(np.float32)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def load_raw(path: Path):
    """The per-request and per-stage records of `save_raw` as a `RealRun` (requests, stage times, release lags where
    recorded; no host report, no batches, no summary), for diagnostics on a committed validation folder."""
    from types import SimpleNamespace

    from simulator.runner.result import RealRun, StageTimes

    with np.load(path, allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files}
    times = StageTimes(request=arrays["stage_request"], stage=arrays["stage"], start_s=arrays["stage_start_s"],
                       compute_s=arrays["stage_compute_ms"].astype(np.float64) / 1e3,
                       decision_s=arrays["stage_decision_ms"].astype(np.float64) / 1e3)
    requests = SimpleNamespace(**{k: arrays[k] for k in ("arrival_s", "start_s", "finish_s", "stages_run",
                                                          "prediction", "sample", "queue_len")})
    lag = arrays["release_lag_ms"].astype(np.float64) / 1e3 if "release_lag_ms" in arrays else None
    return RealRun(requests=requests, batches=None, summary=None, stage_times=times, release_lag_s=lag, host=None,
                   measured_energy_j=None)


# ----------------------------------------------------------------------------------------------- comparison

def latency_figures(latency_ms: np.ndarray) -> dict:
    p50, p99 = np.percentile(latency_ms, [50, 99])
    return {"latency_mean_ms": float(latency_ms.mean()), "latency_p50_ms": float(p50), "latency_p99_ms": float(p99)}


def interfered(real) -> bool:
    """Whether the host disturbed a real run beyond the thresholds of this module."""
    host = real.host
    return bool(host.other_cpu_cores > MAX_OTHER_CPU_CORES or host.steal_fraction > MAX_STEAL_FRACTION
                or real.stall_fraction > MAX_STALL_FRACTION)


def service_ms(result) -> float:
    """Mean service time per request (ms), start to finish, of a real run or a simulation."""
    req = result.requests
    return float(np.mean(req.finish_s - req.start_s) * 1000.0)


def real_figures(real, sim0, sim_service_ms: float) -> dict:
    """One real run's figures, its request-by-request agreement with the simulation `sim0`, its service time
    against the simulated one (`sim_service_ms`; flagged as host drift beyond `MAX_HOST_DRIFT`) and its
    `simulator.runner.speed_fit.window_levels` and `run_speed_facts`."""
    from simulator.runner.profiling import rounded
    from simulator.runner.speed_fit import run_speed_facts, window_levels

    req = real.requests
    drift = service_ms(real) / sim_service_ms - 1.0
    disturbed = interfered(real)
    return {**latency_figures(req.latency_ms), "utilisation": real.summary.utilisation,
            "mean_stages": real.summary.mean_stages, "accuracy": real.summary.accuracy,
            "stages_equal": float(np.mean(req.stages_run == sim0.requests.stages_run)),
            "predictions_equal": float(np.mean(req.prediction == sim0.requests.prediction)),
            "mean_compute_ms": float(real.stage_times.compute_s.mean() * 1e3),
            "mean_decision_ms": float(real.stage_times.decision_s.mean() * 1e3),
            "stall_fraction": real.stall_fraction, "host": real.host.to_dict(), "service_drift": float(drift),
            "window_levels": rounded(window_levels(real)), "speed_process": run_speed_facts(real),
            "interfered": bool(disturbed or abs(drift) > MAX_HOST_DRIFT),
            "flag": "interference" if disturbed else ("host drift" if abs(drift) > MAX_HOST_DRIFT else ""),
            "measured_energy_j": real.measured_energy_j,
            "release_lag_p50_ms": None if real.release_lag_s is None else float(np.median(real.release_lag_s) * 1e3)}


def sim_figures(sims) -> dict:
    """Median, mean and 5-95% band over the seeded simulations."""
    per_seed = {m: np.array([latency_figures(s.requests.latency_ms)[m] for s in sims]) for m in METRICS}
    per_seed["utilisation"] = np.array([s.summary.utilisation for s in sims])
    out = {m: float(np.median(v)) for m, v in per_seed.items()}
    out["mean_over_seeds"] = {m: float(np.mean(per_seed[m])) for m in METRICS}
    out["band"] = {m: [float(x) for x in np.percentile(v, BAND)] for m, v in per_seed.items()}
    out["mc_error"] = {m: median_mc_error(per_seed[m]) for m in METRICS}
    energy = [s.summary.device_energy_j for s in sims]
    out["device_energy_j"] = None if None in energy else float(np.median(energy))
    out["service_ms"] = float(np.median([service_ms(s) for s in sims]))
    out["mean_stages"] = float(sims[0].summary.mean_stages)
    out["accuracy"] = float(sims[0].summary.accuracy)
    return out


def median_mc_error(per_seed: np.ndarray) -> float | None:
    """The Monte Carlo error of the median of `per_seed` (one figure per seeded simulation, all positive): the
    standard deviation of the log of the median over `MC_RESAMPLES` bootstrap resamples of the seeds, i.e. about
    the relative error by which another set of as many seeds would move the simulated median. None for fewer
    than two seeds or a figure that is not positive.

    With a few thousand requests per run the simulated mean latency moves by several percent from seed to seed (the
    service-time draws, the speed process, the level), so a median over 20 seeds can be off by as much as the 5%
    target (`docs/validation-history.md`, the entry on the seeds); the report shows this error beside the errors."""
    values = np.asarray(per_seed, dtype=float)
    if values.size < 2 or not np.all(values > 0):
        return None
    picks = np.random.default_rng(MC_SEED).integers(0, values.size, size=(MC_RESAMPLES, values.size))
    return float(np.std(np.log(np.median(values[picks], axis=1))))


def banded_figures(sims: list, band_sims: list | None) -> dict:
    """`sim_figures` of `sims`, with the 5-95% band of `band_sims` instead where given (stretched to the median,
    `spanning`)."""
    sim = sim_figures(sims)
    if band_sims is not None:
        sim["band"] = spanning(sim_figures(band_sims)["band"], sim)
    return sim


def spanning(band: dict, median: dict) -> dict:
    """`band` (per metric ``[low, high]``) widened where needed to include `median`'s value of that metric.

    The verdict's band and its median come from two sets of seeds (the band's with the session's level
    uncertainty, the median's with the profiling runs'): with few seeds, or a session uncertainty smaller than the
    profiling runs', the 5-95% of one set can miss the median of the other by a little. A prediction whose band
    excludes its own median is incoherent, so the band is stretched to it (`docs/validation.md` says so)."""
    return {m: [min(lo, median[m]), max(hi, median[m])] for m, (lo, hi) in band.items()}


def compare(scenario: Scenario, config: RunConfig, reals: list, sims: list, band_sims: list | None = None,
            reference: list | None = None) -> dict:
    """The scenario's figures: each real run, the simulation (the median of `sims`; the 5-95% band of `band_sims`
    where given, else of `sims`), errors, spread and band checks. Each run's agreement and its host drift are
    taken against `reference` (the verdict's simulations, `session_simulations`) where given, else `sims`."""
    sim = banded_figures(sims, band_sims)
    reference = reference or sims
    reference_ms = float(np.median([service_ms(s) for s in reference]))
    runs = [real_figures(r, reference[0], reference_ms) for r in reals]
    used = used_runs(runs)
    out = {"name": scenario.name, "description": scenario.description, "mode": scenario.mode,
           "release": scenario.release, "load": scenario.load, "policy": list(config.policy),
           "members": list(config.members), "models": list(config.models), "thresholds": list(config.thresholds),
           "combiner": config.combiner, "deadline_ms": _finite(config.deadline_ms), "arrivals": config.arrivals,
           "requests": config.requests, "threshold_only": scenario.threshold_only, "runs": runs, "sim": sim,
           "runs_used": runs_used_note(runs), "quiet_runs": len(quiet_index(runs))}
    out.update(versus(metric_values(used), sim))
    out["all_runs"] = versus(metric_values(runs), sim)
    out["utilisation"] = {"real": float(np.mean([r["utilisation"] for r in used])), "sim": sim["utilisation"]}
    measured = [r["measured_energy_j"] for r in used]
    out["energy_j"] = None if None in measured or sim["device_energy_j"] is None else {
        "real": float(np.mean(measured)), "sim": sim["device_energy_j"],
        "error": float(np.mean(measured) / sim["device_energy_j"] - 1.0)}
    return out


def diagnose(reals: list, seeded: list, models: tuple, profile, clients: int) -> list:
    """Per real run: its speed against the profile (over the stages of the requests that waited in the queue: the
    profile's wake-up slowdown accounts for the others), the speed-calibrated simulation (median and band over the
    seeds) and the replay of its own service times (`simulator.runner.calibrate`), each with its error."""
    from simulator.run import run_inputs
    from simulator.runner.calibrate import calibrated, replay_service_ms, speed_factors

    out = []
    for real in reals:
        stage_factors, decision_factor = speed_factors(real, models, profile, waited_only=True)
        cal = sim_figures([run_inputs(calibrated(x, stage_factors, decision_factor), "numba") for x in seeded])
        replay = latency_figures(replay_service_ms(real, clients))
        measured = latency_figures(real.requests.latency_ms)
        out.append({
            "stage_factors": [float(f) for f in stage_factors], "decision_factor": decision_factor,
            "calibrated": {m: {"sim": cal[m], "error": measured[m] / cal[m] - 1.0,
                               "inside_band": bool(cal["band"][m][0] <= measured[m] <= cal["band"][m][1])}
                           for m in METRICS},
            "replay": {m: {"sim": replay[m], "error": measured[m] / replay[m] - 1.0} for m in METRICS}})
    return out


def quiet_index(runs: list) -> list:
    """Indices of the runs not flagged for interference (other processes, the hypervisor's steal time or stalls:
    the host demonstrably took time from them)."""
    return [i for i, r in enumerate(runs) if r["flag"] != "interference"]


def used_index(runs: list) -> list:
    """Indices of the runs the errors and the spread are computed from: never a run flagged for interference
    (unless every run is: then all, and the verdict is undecided, `MIN_QUIET_RUNS`); of the others, those without
    host drift when at least half of them are, else all of them."""
    quiet = quiet_index(runs) or list(range(len(runs)))
    clean = [i for i in quiet if not runs[i]["interfered"]]
    return clean if clean and 2 * len(clean) >= len(quiet) else quiet


def runs_used_note(runs: list) -> str:
    """``"k of n"``, and why flagged runs are among them where they are."""
    used = used_index(runs)
    note = f"{len(used)} of {len(runs)}"
    if not quiet_index(runs):
        return note + " (every run interfered with: kept)"
    if any(runs[i]["interfered"] for i in used):
        return note + " (too few without host drift: drifted ones kept)"
    return note


def used_runs(runs: list) -> list:
    return [runs[i] for i in used_index(runs)]


def metric_values(runs: list) -> dict:
    return {m: np.array([r[m] for r in runs]) for m in METRICS}


def versus(values: dict, sim: dict) -> dict:
    """Per metric: the real runs' mean, the simulation's median, the error, the real spread, inside the band."""
    out = {}
    for m in METRICS:
        v = values[m]
        low, high = sim["band"][m]
        out[m] = {"real": float(v.mean()), "sim": sim[m], "error": float(v.mean() / sim[m] - 1.0),
                  "spread": float((v.max() - v.min()) / v.mean()), "inside_band": bool(np.all((v >= low) & (v <= high)))}
    return out


def prediction(figures: dict, sims: list, band_sims: list | None = None) -> dict:
    """Another prediction of the scenario whose figures are `figures`: the simulations `sims` (one per seed), their
    figures and their errors against the real runs used; the 5-95% band of `band_sims` where given (stretched to
    the median, `spanning`)."""
    sim = banded_figures(sims, band_sims)
    return {"sim": sim, **versus(metric_values(used_runs(figures["runs"])), sim),
            "all_runs": versus(metric_values(figures["runs"]), sim)}


def fresh_prediction(figures: dict, seeded: list, bursts: list) -> dict:
    """Per real run, the simulation with the profile's latencies and decision overheads scaled by the host's speed
    measured right before it (the burst's factors): per-run errors and band checks, averaged over the runs used."""
    from simulator.run import run_inputs
    from simulator.runner.calibrate import calibrated

    per_run = [sim_figures([run_inputs(calibrated(x, stage_factors, decision_factor), "numba") for x in seeded])
               for stage_factors, decision_factor in bursts]
    used = used_index(figures["runs"])
    out = {"burst_stage_factors": [float(np.mean(f)) for f, _ in bursts],
           "burst_decision_factors": [float(d) for _, d in bursts]}
    for m in METRICS:
        real = np.array([figures["runs"][i][m] for i in used])
        sim = np.array([per_run[i][m] for i in used])
        inside = [per_run[i]["band"][m][0] <= figures["runs"][i][m] <= per_run[i]["band"][m][1] for i in used]
        out[m] = {"real": float(real.mean()), "sim": float(sim.mean()), "error": float(np.mean(real / sim - 1.0)),
                  "spread": figures[m]["spread"], "inside_band": bool(all(inside))}
    out["sim"] = {"band": {m: [float(np.mean([per_run[i]["band"][m][j] for i in used])) for j in (0, 1)]
                           for m in METRICS}}
    return out


def _finite(x: float):
    return x if math.isfinite(x) else None


# ----------------------------------------------------------------------------------------------- whole plan

def run_validation(plan: ValidationPlan, progress=print) -> tuple[dict, list]:
    """Profile every scenario's stage set, then serve the scenarios' real runs in interleaved rounds (round ``r``
    serves every scenario once, in an order rotated by ``r``), then simulate and compare; return the results and the
    latency CDF panels.

    Interleaving spreads each scenario's repeats over the whole session: a shared host that drifts or switches
    speed over minutes then moves every scenario's runs alike instead of one scenario's all, and the spread between a
    scenario's repeats measures how much the session's host varies (consecutive repeats measure a minute of it)."""
    import time

    from simulator.profiles import load_profile
    from simulator.runner.bundle import load_members, load_samples
    from simulator.runner.profiling import measure_scenario_profile, profiling_setup

    cache = load_cache(plan.logits)
    check_scenarios(plan, cache)
    if any(sc.mode == "live" for sc in plan.scenarios):
        cache = live_ensemble(plan, cache, load_members(plan.setup.members_path),
                              load_samples(plan.setup.samples_path))
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    setup = profiling_setup(plan, cache)
    profiles, measured = [], []
    try:
        for sc in plan.scenarios:
            progress(f"scenario {sc.name}: profile")
            profiles.append(measure_scenario_profile(plan, cache, sc, setup, progress))
            measured.append((sc.release, load_profile(profiles[-1])))
    finally:
        setup[0].unlink(missing_ok=True)
    level = session_level(measured)
    states = [prepare_scenario(plan, sc, path, profile, cache, level)
              for sc, path, (_, profile) in zip(plan.scenarios, profiles, measured)]
    session_start = time.monotonic()
    for r in range(plan.repeats):
        progress(f"round {r + 1} of {plan.repeats}: one real run of every scenario ({plan.requests} requests each)")
        for state in rotated(states, r):
            serve_once(plan, state, cache, session_start)
    session_sigma, spread_sigma = session_level_sigma(states), session_spread_sigma(states)
    progress(f"simulating every scenario ({plan.seeds} seeds; level uncertainty over the session {session_sigma:.3f}, "
             f"around each scenario's session level {spread_sigma:.3f})")
    session = SessionFacts(session_sigma, spread_sigma, pooled_serving_factor(states), session_long_phases(states))
    finished = [finish_scenario(plan, state, cache, session) for state in states]
    return ({"plan": _plan_dict(plan), "profiles": [str(p) for p in profiles], "scenarios": [f for f, _ in finished]},
            [panel for _, panel in finished])


def check_scenarios(plan: ValidationPlan, cache) -> None:
    """FlexsimError naming the scenario where two share a name (their outputs would overwrite each other's) or one
    runs a member the cache does not hold."""
    from simulator.run import check_members

    names = [sc.name for sc in plan.scenarios]
    twice = given_twice(names)
    require(not twice, f"invalid scenarios: {', '.join(twice)} given more than once")
    for sc in plan.scenarios:
        try:
            check_members(sc.changes["members"], cache)
        except FlexsimError as exc:
            raise FlexsimError(f"scenario {sc.name}: {exc}") from None


def live_ensemble(plan: ValidationPlan, cache, members, samples):
    """`cache`, checked against the trained `members` and the `samples` they run on (live scenarios): the members
    the live scenarios run are the same models in both (a cache naming none takes the weights file's names), and
    the samples file holds an image for every sample of the cache (its sample i is image i: every one is served
    while the profiles are measured)."""
    live = sorted({m for sc in plan.scenarios if sc.mode == "live" for m in sc.changes["members"]})
    beyond = [m for m in live if m >= members.n_members]
    require(not beyond, f"runner: the live scenarios run member {beyond[0] if beyond else 0}, but {members.source} "
            f"has {members.n_members} members")
    require(samples.n_samples >= cache.n_samples, f"runner: the logit cache {cache.source} has {cache.n_samples} "
            f"samples, but the samples file {samples.source} holds {samples.n_samples} images: the cache's sample i "
            "is image i, so the samples file must hold every sample of the cache (were they made together?)")
    if cache.model_names is None:
        require(cache.n_members == members.n_members, f"runner: the logit cache {cache.source} names no models and "
                f"has {cache.n_members} members, the weights file {members.source} {members.n_members}: give a "
                "cache whose model_names say which member is which")
        return replace(cache, model_names=members.model_names)
    differ = [m for m in live if cache.model_names[m] != members.model_names[m]]
    m = differ[0] if differ else 0
    require(not differ, f"runner: member {m} is {cache.model_names[m]!r} in the logit cache {cache.source} but "
            f"{members.model_names[m]!r} in {members.source}" + (f" (and {len(differ) - 1} more)" if differ[1:] else "")
            + ": not the same ensemble")
    return cache


def rotated(items: list, r: int) -> list:
    """`items` starting at index ``r`` (modulo their number), wrapping round: round ``r``'s order of the scenarios."""
    k = r % len(items) if items else 0
    return items[k:] + items[:k]


def _plan_dict(plan: ValidationPlan) -> dict:
    from simulator.runner.real import describe

    return {"requests": plan.requests, "repeats": plan.repeats, "seeds": plan.seeds,
            "profiling_requests": plan.profiling_requests, "seed": plan.seed, "logits": plan.logits,
            "setup": describe(plan.setup)}
