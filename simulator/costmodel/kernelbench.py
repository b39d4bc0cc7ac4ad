"""Microbenchmarks of synthetic kernels for the kernel model (`simulator.costmodel.kernels`); needs PyTorch.

Configurations are drawn at random from ranges that span the kernels of convolutional networks (channels 1-2048,
spatial size 1-224, kernels 1-11, strides 1-4; linear layers up to 32768 x 16384), never copied from an
architecture's layers, so that leave-one-architecture-out stays honest. Each is timed at batch sizes 1, 2, 3, 4, 8
and 16 (those whose work stays under a cap) with PyTorch on this host, in inference mode, with the thread count of
the profile it is meant for: a few warm-up calls, then the median wall time of repeated single calls. In-place
kernels get a fresh copy of their input before each (untimed) call, as inside a model, where the input was just
written by the previous kernel. Kernels with weights read a different copy of them at each call, the copies together
larger than the last-level cache: inside a model the weights of a layer were pushed out of the cache by the rest of
the model since its previous call (timed hot, the kernels of MobileNet-v3 and EfficientNet-B0 add up to ~60% of
their measured call; the linear layers of MobileNet-v3 run 5x faster hot than inside the model).
"""

from __future__ import annotations

import platform
import time

import numpy as np
import torch  # noqa: F401  (fails early, with ImportError, where PyTorch is missing)

from simulator.costmodel.kernels import FAMILIES, KernelTable, conv_out

BATCH_SIZES = (1, 2, 3, 4, 8, 16)
#: configurations per family
COUNTS = {"conv": 500, "dwconv": 160, "linear": 80, "batch_norm": 30, "relu": 18, "relu_": 18, "hardswish_": 18,
          "silu_": 18, "sigmoid": 18, "hardsigmoid": 18, "add_": 20, "mul": 20, "max_pool2d": 25, "mean": 25,
          "adaptive_avg_pool2d": 15}
MAX_FLOPS = 8e9  # per measured call
MAX_ELEMS = 3.2e7  # activation elements per measured call
MIN_TIME_S, MAX_REPEATS, MIN_REPEATS = 0.03, 300, 5
#: weights are cycled through copies that together exceed this many bytes (over the last-level cache), so that
#: each call reads cold weights, as in a model whose weights and activations do not all stay in the cache
COLD_BYTES = 96 * 2 ** 20
MAX_COPIES = 64


def _log_int(rng, low: int, high: int) -> int:
    return int(round(np.exp(rng.uniform(np.log(low), np.log(high)))))


def _conv(rng):
    k = int(rng.choice([1, 3, 5, 7, 11], p=[0.35, 0.4, 0.1, 0.1, 0.05]))
    s = int(rng.choice([1, 2, 4], p=[0.7, 0.25, 0.05]))
    p = k // 2 if rng.random() < 0.8 else 0
    c_in = int(rng.choice([1, 3])) if rng.random() < 0.1 else _log_int(rng, 4, 2048)
    return c_in, _log_int(rng, 4, 2048), _log_int(rng, max(1, k - 2 * p), 224), k, s, p


def _dwconv(rng):
    k, s = int(rng.choice([3, 5, 7])), int(rng.choice([1, 2]))
    return _log_int(rng, 8, 2048), _log_int(rng, 1, 224), k, s, k // 2


def _pool(rng):
    k = int(rng.choice([2, 3]))
    return _log_int(rng, 8, 1024), _log_int(rng, 4, 224), k, 2, int(rng.choice([0, k // 2]))


def _adaptive(rng):
    h = _log_int(rng, 1, 16)
    return _log_int(rng, 8, 1024), h, h if rng.random() < 0.5 else int(rng.integers(1, h + 1))


def _plain(rng):
    return _log_int(rng, 8, 4096), _log_int(rng, 1, 224)


_SAMPLERS = {"conv": _conv, "dwconv": _dwconv, "linear": lambda rng: (_log_int(rng, 8, 32768), _log_int(rng, 8, 16384)),
             "max_pool2d": _pool, "adaptive_avg_pool2d": _adaptive}


def work(family: str, config) -> tuple[float, float]:
    """FLOPs and activation elements of one sample of a configuration (to cap what is measured)."""
    f = dict(zip(FAMILIES[family], config))
    if family == "conv":
        ho = conv_out(f["h"], f["kernel"], f["stride"], f["padding"])
        return 2.0 * f["c_in"] * f["c_out"] * f["kernel"] ** 2 * ho ** 2, f["c_in"] * f["h"] ** 2 + f["c_out"] * ho ** 2
    if family == "linear":
        return 2.0 * f["in_features"] * f["out_features"], f["in_features"] + f["out_features"]
    elems = f["c"] * f["h"] ** 2
    return float(elems * f.get("kernel", 1) ** 2), float(elems)


def sample_configs(seed: int = 0, counts: dict = COUNTS) -> list[tuple[str, tuple[int, ...]]]:
    """Random configurations per family, within the work caps at batch 1 and without valid-size violations."""
    rng = np.random.default_rng(seed)
    out = []
    for family, n in counts.items():
        seen = set()
        while len(seen) < n:
            config = tuple(int(v) for v in _SAMPLERS.get(family, _plain)(rng))
            flops, elems = work(family, config)
            fields = dict(zip(FAMILIES[family], config))
            if "kernel" in fields and conv_out(fields["h"], fields["kernel"], fields["stride"], fields["padding"]) < 1:
                continue
            if flops <= MAX_FLOPS / 2 and elems <= MAX_ELEMS / 2 and config not in seen:
                seen.add(config)
                out.append((family, config))
    return out


class _Cold:
    """Copies of a kernel's weights (a list of tensors), handed out in turn: each call reads weights that the
    other copies pushed out of the cache."""

    def __init__(self, torch, shapes, cold_bytes: int):
        size = 4 * sum(int(np.prod(s)) for s in shapes)
        n = int(np.clip(-(-cold_bytes // max(size, 1)), 1, MAX_COPIES)) if cold_bytes else 1
        self.copies, self.i = [[torch.randn(s) for s in shapes] for _ in range(n)], 0

    def next(self):
        self.i = (self.i + 1) % len(self.copies)
        return self.copies[self.i]


def _kernel(torch, family: str, config, batch: int, cold_bytes: int = COLD_BYTES):
    """(setup, run) callables of one configuration at `batch`: `setup` refreshes inputs of in-place kernels;
    kernels with weights read a different copy of them at each call (cold weights, see `COLD_BYTES`)."""
    F = torch.nn.functional
    f = dict(zip(FAMILIES[family], config))
    if family == "linear":
        x = torch.randn(batch, f["in_features"])
        weights = _Cold(torch, [(f["out_features"], f["in_features"]), (f["out_features"],)], cold_bytes)
        return None, lambda: F.linear(x, *weights.next())
    x = torch.randn(batch, f.get("c_in", f.get("c")), f["h"], f["h"])
    if family == "conv":
        weights = _Cold(torch, [(f["c_out"], f["c_in"], f["kernel"], f["kernel"]), (f["c_out"],)], cold_bytes)
        return None, lambda: F.conv2d(x, *weights.next(), f["stride"], f["padding"])
    if family == "dwconv":
        weights = _Cold(torch, [(f["c"], 1, f["kernel"], f["kernel"]), (f["c"],)], cold_bytes)
        return None, lambda: F.conv2d(x, *weights.next(), f["stride"], f["padding"], 1, f["c"])
    if family == "batch_norm":
        weights = _Cold(torch, [(f["c"],)] * 4, cold_bytes)
        for copy in weights.copies:
            copy[1] = copy[1].abs() + 0.5  # running variance

        def batch_norm():
            mean, var, w, b = weights.next()
            return F.batch_norm(x, mean, var, w, b, training=False)
        return None, batch_norm
    if family == "max_pool2d":
        return None, lambda: F.max_pool2d(x, f["kernel"], f["stride"], f["padding"])
    if family == "mean":
        return None, lambda: x.mean((2, 3), keepdim=True)
    if family == "adaptive_avg_pool2d":
        return None, lambda: F.adaptive_avg_pool2d(x, f["out"])
    if family == "mul":
        s = torch.rand(batch, f["c"], 1, 1)
        return None, lambda: x * s
    if family in ("sigmoid", "hardsigmoid", "relu"):
        op = {"sigmoid": torch.sigmoid, "hardsigmoid": F.hardsigmoid, "relu": torch.relu}[family]
        return None, lambda: op(x)
    base, other, work_ = x, torch.randn_like(x), [x.clone()]
    inplace = {"relu_": torch.relu_, "hardswish_": lambda t: F.hardswish(t, inplace=True),
               "silu_": lambda t: F.silu(t, inplace=True), "add_": lambda t: t.add_(other)}[family]

    def setup():
        work_[0].copy_(base)

    return setup, lambda: inplace(work_[0])


def time_ms(setup, run, clock=time.perf_counter) -> tuple[float, int]:
    """Median wall time (ms) of single calls of `run` after warm-up, and the number of calls timed."""
    samples, t_start = [], clock()
    for _ in range(3):  # warm-up
        if setup:
            setup()
        run()
    estimate = (clock() - t_start) / 3
    repeats = int(np.clip(MIN_TIME_S / max(estimate, 1e-7), MIN_REPEATS, MAX_REPEATS))
    for _ in range(repeats):
        if setup:
            setup()
        t0 = clock()
        run()
        samples.append(clock() - t0)
    return float(np.median(samples) * 1e3), repeats


def measure(configs, threads: int, device: str, seed: int, progress=None, allocator: str = "steady") -> KernelTable:
    """Time every configuration at each batch size within the caps, with `allocator` (that of the profile the
    table serves, `simulator.profiler.allocator`); the measured table with its provenance."""
    import torch

    from simulator.profiler.allocator import set_allocator

    allocator_used = set_allocator(allocator)
    rows = {}
    started, before = time.time(), torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            for i, (family, config) in enumerate(configs):
                flops, elems = work(family, config)
                for b in BATCH_SIZES:
                    if b > 1 and (b * flops > MAX_FLOPS or b * elems > MAX_ELEMS):
                        continue
                    latency, _ = time_ms(*_kernel(torch, family, config, b))
                    rows.setdefault(family, []).append((config, b, latency))
                if progress and (i + 1) % 50 == 0:
                    progress(f"{i + 1}/{len(configs)} configurations, {time.time() - started:.0f} s")
    finally:
        torch.set_num_threads(before)
    provenance = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)) + " UTC",
        "torch": torch.__version__, "python": platform.python_version(), "threads": threads,
        "measure_s": round(time.time() - started, 1), "seed": seed, "configurations": len(configs),
        "allocator": allocator_used,
        "method": "simulator.costmodel.kernelbench: synthetic configurations drawn at random from ranges "
                  f"(seed {seed}), not from any architecture; per configuration and batch size "
                  f"({', '.join(map(str, BATCH_SIZES))}, within {MAX_FLOPS:.0e} FLOP and {MAX_ELEMS:.0e} elements "
                  "per call): 3 warm-up calls, then the median wall time of "
                  f"{MIN_REPEATS}-{MAX_REPEATS} single calls (at least {MIN_TIME_S} s), torch.inference_mode, "
                  f"torch.set_num_threads({threads}), fp32; in-place kernels get a fresh input copy before each "
                  "untimed call; weights (convolutions, linear layers, batch norm) cycle through copies that "
                  f"together exceed {COLD_BYTES // 2 ** 20} MiB, so each call reads cold weights"}
    return KernelTable(device=device, provenance=provenance,
                       configs={f: np.array([r[0] for r in v], dtype=float) for f, v in rows.items()},
                       batch={f: np.array([r[1] for r in v], dtype=float) for f, v in rows.items()},
                       latency_ms={f: np.array([r[2] for r in v]) for f, v in rows.items()})
