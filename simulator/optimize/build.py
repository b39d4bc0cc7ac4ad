"""Build a `ThresholdProblem` from the same configuration that ``flexsim run`` simulates.

The fields of `simulator.config.RunConfig` that matter here are ``logits``, ``members``, ``models``,
``combiner``, ``signal``, ``profile`` (the first one) and ``use_cost_scale``; the stage models are resolved by
`simulator.run.stage_models`, the latency and energy tables by `simulator.inputs.device_tables`, and the signals by
`simulator.signals.stage_signals`, so that the optimiser and the simulator see the same ensemble on the same device.
"""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

import numpy as np

from simulator.config import RunConfig, with_overrides
from simulator.errors import require
from simulator.inputs import device_tables
from simulator.logits import BUILTIN_CACHES, LogitCache, as_cache, cache_file, check_cache_file, load_cache
from simulator.optimize.problem import ThresholdProblem, cumulative_problem
from simulator.profiles import Profile, as_profile, load_profile
from simulator.run import check_members, stage_models
from simulator.signals import stage_signals

#: Held-out cache -> the training split its thresholds are chosen on (built-in caches).
TRAINING_SPLITS = {"fmnist": "fmnist-train", "fmnist-test": "fmnist-train"}


def training_split(logits: str) -> str:
    """The training cache of the held-out cache `logits`: a built-in pairing, or ``X_test.npz`` -> ``X_train.npz``."""
    require(isinstance(logits, (str, Path)), f"training_split: logits must be a cache name or path, got "
            f"{type(logits).__name__}")
    logits = str(logits)
    if logits in TRAINING_SPLITS:
        return TRAINING_SPLITS[logits]
    # an unknown name or a missing file is said as such, not as a missing split
    path = Path(logits) if logits in BUILTIN_CACHES else check_cache_file(logits)
    sibling = path.with_name(path.name.replace("_test.npz", "_train.npz"))
    require(path.name.endswith("_test.npz") and sibling.exists(),
            f"logits {logits!r} has no training split (built-in pairs: "
            f"{', '.join(f'{k} -> {v}' for k, v in TRAINING_SPLITS.items())}; or a file X_test.npz beside "
            "X_train.npz); give the training logits explicitly (--train-logits)")
    return str(sibling)


def build_problem(config: RunConfig, cache: LogitCache | None = None,
                  profile: Profile | None = None) -> ThresholdProblem:
    """The threshold problem of `config`'s ensemble on its first profile, over the samples of its logit cache."""
    require(isinstance(config, RunConfig), f"build_problem: config must be a RunConfig, got {type(config).__name__}")
    cache = as_cache(config.logits if cache is None else cache)
    profile = as_profile(config.profile[0] if profile is None else profile)
    members = list(check_members(config.members, cache))       # a list: it indexes the cost scale's rows
    stages = stage_signals(cache.logits, cache.labels, members, config.combiner, config.signal)
    models = stage_models(config, cache, profile)
    tables = device_tables(profile, models, 1)
    scale = (cache.cost_scale[members] if cache.cost_scale is not None and config.use_cost_scale
             else np.ones(stages.signal.shape))
    overhead_s = tables.overhead_s[:, None].copy()
    overhead_s[0] += tables.dispatch_overhead_s       # paid once per request, with its first stage, at idle power
    latency_ms = (tables.latency_s[:, 0, :].mean(axis=1)[:, None] * scale + overhead_s) * 1000.0
    energy_j = tables.energy_j[:, 0][:, None] * scale + tables.idle_power_w * overhead_s
    return cumulative_problem(stages.signal, stages.correct, latency_ms,
                              energy_j if np.isfinite(energy_j).all() else None,
                              description=describe(config, cache, profile, models))


def describe(config: RunConfig, cache: LogitCache, profile: Profile, models) -> str:
    """One line naming the cache, the members, the combiner, the signal, the profile and the stage `models`."""
    return (f"{cache.source} ({cache.n_samples} samples), members {','.join(map(str, config.members))} "
            f"({config.combiner}, {config.signal}), profile {profile.name} (stage models {_runs_text(models)})")


def _runs_text(names) -> str:
    """Names with runs of one name written once with their count: ``a x3,b``."""
    runs = ((name, sum(1 for _ in run)) for name, run in groupby(names))
    return ",".join(name if n == 1 else f"{name} x{n}" for name, n in runs)


def train_and_test(config: RunConfig, train_logits: str | None = None) -> tuple[ThresholdProblem, ThresholdProblem]:
    """The problems on the training split (thresholds are chosen there) and on `config.logits` (held out)."""
    require(isinstance(config, RunConfig), f"train_and_test: config must be a RunConfig, got {type(config).__name__}")
    train_name = train_logits or training_split(config.logits)
    require(cache_file(train_name) != cache_file(config.logits),
            f"logits {config.logits!r} is the training split {train_name!r} itself (the same file): give the "
            "held-out cache as logits")
    profile = load_profile(config.profile[0])
    train_cache, test_cache = load_cache(train_name), load_cache(config.logits)
    check_same_ensemble(train_cache, test_cache)
    train_config = with_overrides(config, logits=train_name)
    check_members(config.members, test_cache)
    models = stage_models(train_config, train_cache, profile), stage_models(config, test_cache, profile)
    require(models[0] == models[1], f"the training and held-out caches would be costed on different stage models, "
            f"{','.join(models[0])} against {','.join(models[1])} (one names its members' models, the other does "
            "not): choose them with --models")
    train = build_problem(train_config, train_cache, profile)
    test = build_problem(config, test_cache, profile)
    require(train.n_stages == test.n_stages, "training and held-out problems differ in their number of stages")
    return train, test


def check_same_ensemble(train: LogitCache, test: LogitCache) -> None:
    """FlexsimError unless the training and held-out caches hold the same ensemble: as many classes and members,
    and the same member models where both name them (thresholds chosen on one are meant for the other)."""
    where = f"training cache {train.source} and held-out cache {test.source}"
    require(train.n_classes == test.n_classes,
            f"{where} differ: {train.n_classes} classes against {test.n_classes}")
    require(train.n_members == test.n_members,
            f"{where} differ: {train.n_members} members against {test.n_members}")
    if train.model_names is not None and test.model_names is not None:
        for i, (a, b) in enumerate(zip(train.model_names, test.model_names)):
            require(a == b, f"{where} differ: member {i} is {a} against {b}")
