"""Profiles for ``flexsim validate``, measured by the runner on this host before the real runs: one per stage set.

A stage set is the mode, the members and the compute models that one or more scenarios run. For each:

1. a bootstrap profile (each model timed back to back) lets `simulator.run.prepare` build the profiling runs;
2. a closed-loop run (one client, every stage) gives each model's latency samples and the decision overhead
   (`simulator.runner.measure.profile_from_runs`); the decision overhead is the stage set's own, since the host's
   decision is slower after a heavy forward pass (caches) than after a light one;
3. open-loop runs at `LOAD_POINTS` (Poisson, every stage) give the *load-speed curve*: the mean stage and decision
   times there over the closed loop's (`simulator.runner.calibrate.speed_factors`), stored in the profile's
   provenance as ``load_speed`` and read by `simulator.runner.calibrate.load_speed`;
4. right before each real run, a short closed-loop burst measures the host's speed at that moment against the
   profile (`burst_factors`): the shared host's speed drifts by tens of percent over minutes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulator.profiles import Profile, load_profile, save_profile

#: Offered loads of the open-loop profiling runs (the closed loop is load 1, factor 1 by definition).
LOAD_POINTS = (0.5, 0.8)


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


def measure_profiles(plan, cache, progress=print) -> dict[str, Path]:
    """Measure one profile per stage set of `plan`'s scenarios; write them and return their paths by key."""
    from simulator.runner.energy import idle_power_w

    groups = {}
    for sc in plan.scenarios:
        groups.setdefault(group_key(sc), sc)
    device = device_facts(plan.setup)
    boot = write_bootstrap(plan, cache, groups.values(), device)
    idle_w = idle_power_w(plan.setup.device)
    paths = {}
    for key, sc in groups.items():
        progress(f"  profile {key}: closed loop, then open loop at loads {', '.join(map(str, LOAD_POINTS))}")
        paths[key] = measure_group(plan, cache, sc, boot, device, idle_w, plan.out_dir / f"profile-{key}.json")
    boot.unlink()
    return paths


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


def profiling_run(plan, cache, scenario, profile_path: Path, arrivals: str, seed: int, requests: int | None = None):
    """A run of every stage (static policy) of `scenario`'s stage set on `profile_path`; returns the run and the
    profile model of each stage."""
    from simulator.runner.real import run_real
    from simulator.runner.validation import base_config, scenario_setup

    k = len(scenario.changes["members"])
    config = base_config(plan, scenario, str(profile_path), cache.model_names,
                         requests=requests or plan.profiling_requests, arrivals=arrivals, policy=("static",),
                         static_k=k, seed=seed)
    return run_real(config, scenario_setup(plan, scenario), cache=cache), config.models


def burst_factors(plan, cache, scenario, profile_path: Path, profile: Profile) -> tuple[np.ndarray, float]:
    """The host's speed right now against `profile`: a short closed-loop burst of the stage set (a third of the
    profiling requests), its stage and decision times over the profile's (`calibrate.speed_factors`)."""
    from simulator.runner.calibrate import speed_factors

    run, models = profiling_run(plan, cache, scenario, profile_path, "closed:1", plan.seed,
                                max(10, plan.profiling_requests // 3))
    return speed_factors(run, models, profile)


def measure_group(plan, cache, scenario, boot: Path, device: dict, idle_w, path: Path) -> Path:
    """Closed-loop profile of one stage set, then its load-speed curve; written to `path`."""
    from simulator.runner.calibrate import speed_factors
    from simulator.runner.measure import profile_from_runs

    closed = profiling_run(plan, cache, scenario, boot, "closed:1", plan.seed)
    save_profile(path, profile_from_runs(f"{device['name']} ({path.stem})", device, [closed], idle_w))
    profile = load_profile(path)
    stage, decision = [], []
    for i, load in enumerate(LOAD_POINTS):
        run, models = profiling_run(plan, cache, scenario, path, f"poisson:load={load}", plan.seed + 100 + i)
        stage_factors, decision_factor = speed_factors(run, models, profile)
        stage.append(float(np.mean(stage_factors)))
        decision.append(decision_factor)
    save_profile(path, with_load_speed(profile, [*LOAD_POINTS, 1.0], [*stage, 1.0], [*decision, 1.0]))
    return path


def with_load_speed(profile: Profile, loads, stage, decision) -> Profile:
    """`profile` with its load-speed curve recorded in the provenance."""
    from dataclasses import replace

    curve = {"utilisation": loads, "stage_factor": stage, "decision_factor": decision,
             "method": "mean stage and decision times of open-loop Poisson runs (every stage, "
                       f"{'/'.join(map(str, LOAD_POINTS))} offered load) over the closed loop's"}
    return replace(profile, provenance={**profile.provenance, "load_speed": curve})
