"""The stages of a real run: one callable per stage position, built for the live or the replay mode."""

from __future__ import annotations

import numpy as np

from simulator.errors import require
from simulator.logits import LogitCache
from simulator.runner.bundle import SampleSet, load_members, load_samples


def build_stages(members, setup, cache: LogitCache, sample: np.ndarray) -> list:
    """The stage callables of the cache members `members` (one per stage) in `setup.mode` (see
    `simulator.runner.real`); `sample` holds the sample of every request to serve."""
    if setup.mode == "live":
        return live_stages(members, setup, cache, sample)
    return replay_stages(members, setup, cache)


def check_samples(samples: SampleSet, cache: LogitCache, sample: np.ndarray) -> None:
    """Every request's sample must have an image, and the images must be the cache's samples (same labels)."""
    n = min(samples.n_samples, cache.n_samples)
    differ = np.flatnonzero(samples.labels[:n] != cache.labels[:n])
    require(differ.size == 0, f"runner: the labels of {samples.source} and of the cache {cache.source} differ "
            f"(first at sample {differ[0] if differ.size else 0}): the cache was not made on these images")
    beyond = np.flatnonzero(sample >= samples.n_samples)
    require(beyond.size == 0, f"runner: request {beyond[0] if beyond.size else 0} is served with sample "
            f"{sample[beyond[0]] if beyond.size else 0}, but {samples.source} holds {samples.n_samples} images; "
            "give the trace a 'sample' column or serve fewer requests")


def live_stages(members_of_stages, setup, cache: LogitCache, sample: np.ndarray) -> list:
    """Stage k: trained member ``members_of_stages[k]`` on the request's image."""
    from simulator.runner.compute import make_stage, member_modules, normalized_images

    members = load_members(setup.members_path)
    samples = load_samples(setup.samples_path)
    check_samples(samples, cache, sample)
    for k, m in enumerate(members_of_stages):
        require(m < members.n_members, f"runner: stage {k} uses member {m}, but {members.source} has "
                f"{members.n_members} members")
    modules = member_modules(members, setup.device)
    images = normalized_images(samples, members.pixel_mean, members.pixel_std, setup.device)
    stages = []
    for m in members_of_stages:
        stage = make_stage(modules[m], images, setup.execution)
        width = stage(0).shape[-1]
        require(width == cache.n_classes, f"runner: member {m} ({members.model_names[m]}) outputs {width} "
                f"classes, but the cache {cache.source} has {cache.n_classes}")
        stages.append(stage)
    return stages


def replay_stages(members_of_stages, setup, cache: LogitCache) -> list:
    """Stage k: compute model ``setup.compute[k]`` on a fixed input; the policy sees the cached logits of member
    ``members_of_stages[k]``."""
    from simulator.runner.compute import ReplayStage, compute_model, make_stage

    n = len(members_of_stages)
    require(len(setup.compute) in (1, n), f"runner: {len(setup.compute)} compute models given for {n} stages "
            "(give one, or one per stage)")
    specs = setup.compute * n if len(setup.compute) == 1 else setup.compute
    stages = []
    for k, (m, spec) in enumerate(zip(members_of_stages, specs)):
        module, x = compute_model(spec, setup.device, seed=k)
        stages.append(ReplayStage(make_stage(module, x, setup.execution), cache.logits[m]))
    return stages
