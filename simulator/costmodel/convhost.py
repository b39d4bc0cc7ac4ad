"""A CPU's fixed cost per dense convolution, measured on the device and held fixed when the rest is fitted.

On a CPU every dense convolution costs the host a fixed time besides its work: the module call, PyTorch's
dispatch and, through oneDNN, the primitive's set-up and reorders (~42 us a convolution on this project's Zen 4
host, one thread), or on PyTorch's native path (``Slow2d``) far less (~7 us). Fitted on the architectures, that
cost trades off against the per-call cost and the other kernels' fixed cost: a model whose convolutions switch
paths with the batch size (`fmnist-cnn-w8`: all native at batch 1, all oneDNN's from batch 2) is the only one that
shows it, so with that model held out the fit misplaces it (``docs/cost-model.md``, "Convolutions' fixed cost").

So it is measured, on chains of tiny convolutions that belong to no architecture (the profiler's convolution
probes, ``device.measured_peaks.conv_chains``, `simulator.profiler.microbench`): the slope of a chain's best time
over its length, per path, is the fixed cost of one convolution on that path. The latency model splits a kernel's
fixed cost on a CPU into ``kernel_ms + launch_*`` (only their sum matters there), so ``kernel_ms`` is held at
`KERNEL_MS` and ``launch_conv_ms`` / ``launch_native_ms`` at the slopes less it.
"""

from __future__ import annotations

import numpy as np

from simulator.errors import malformed, require

#: The latency parameters set by the convolution probes.
CONV_HOST_PARAMS = ("kernel_ms", "launch_conv_ms", "launch_native_ms")
#: ``kernel_ms`` held with them (ms): on a CPU only ``kernel_ms + launch_*`` matters, so a small share of the slope.
KERNEL_MS = 0.001
#: Profile keys of each path's best times, and the parameter each sets.
PATHS = {"native_best_ms": "launch_native_ms", "onednn_best_ms": "launch_conv_ms"}


def per_convolution_ms(lengths, best_ms) -> float:
    """The fixed cost (ms) of one convolution: the least-squares slope of the chains' best times over their
    lengths."""
    return float(np.polyfit(np.asarray(lengths, dtype=float), np.asarray(best_ms, dtype=float), 1)[0])


def conv_host_params(chains: dict) -> dict:
    """``{parameter: value}`` of `CONV_HOST_PARAMS` from a profile's ``measured_peaks.conv_chains``; raises a
    FlexsimError where the record is malformed or a path's cost per convolution is not above `KERNEL_MS`."""
    try:
        lengths = [int(n) for n in chains["lengths"]]
        best = {key: [float(t) for t in chains[key]] for key in PATHS}
    except (KeyError, TypeError, ValueError) as exc:
        raise malformed("measured_peaks.conv_chains", exc) from None
    require(len(set(lengths)) >= 2 and all(len(b) == len(lengths) for b in best.values()),
            "measured_peaks.conv_chains: needs two or more distinct lengths and one best time per length per path")
    require(all(np.isfinite(t) and t > 0 for b in best.values() for t in b),
            "measured_peaks.conv_chains: best times must be positive and finite")
    params = {"kernel_ms": KERNEL_MS}
    for key, name in PATHS.items():
        slope = per_convolution_ms(lengths, best[key])
        require(slope > KERNEL_MS, f"measured_peaks.conv_chains: {key} grows by {slope:.4g} ms a convolution, not "
                f"more than kernel_ms = {KERNEL_MS} ms: no fixed cost to hold")
        params[name] = slope - KERNEL_MS
    return params


def measured_conv_host_params(profile, spec) -> tuple[dict | None, str]:
    """The convolution fixed costs of a measured CPU profile and where they come from: its convolution probes.
    ``(None, why)`` for a GPU or a profile measured without them: the fit then sets them with the rest."""
    if spec.executes != "cpu":
        return None, "not a CPU"
    chains = profile.device.get("measured_peaks", {}).get("conv_chains")
    if chains is None:
        return None, "no convolution probes: fitted with the architectures"
    return conv_host_params(chains), "the profile's convolution probes"
