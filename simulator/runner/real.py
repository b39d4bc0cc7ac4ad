"""Run a policy for real: `run_real(config, setup)` serves the config's workload with real models.

The workload, the sample of each request, the policy and its estimates come from `simulator.run.prepare` (the
`SimulationInputs` a simulation of the same config consumes), so a real run and a simulation are comparable
request by request. Modes:

- ``live``: stage ``k`` runs the trained member ``config.members[k]`` (`simulator.runner.bundle`) on the request's
  image; the policy decides on the logits it computes. The config's logit cache must be these members' cache on
  these images (``fmnist_cpu_logits_test.npz`` for the shipped ensemble).
- ``replay``: stage ``k`` runs a compute model (``setup.compute``: a `simulator.models.registry` name, optionally
  ``@RESOLUTION``) on a fixed input, and the policy decides on the cached logits of member ``config.members[k]``
  for the request's sample: real timing at a chosen member cost, decisions replayed.

Supported: batch 1, one device, FIFO, every built-in policy but ``power-cap`` (and custom policies); energy in the
policy's state is the profile's estimate.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass

import numpy as np

from simulator.config import RunConfig
from simulator.errors import require
from simulator.inputs import SimulationInputs
from simulator.logits import LogitCache, load_cache
from simulator.profiler.settings import MAX_THREADS
from simulator.runner.bundle import MEMBERS_PATH, SAMPLES_PATH

MODES = ("live", "replay")


@dataclass(frozen=True, kw_only=True)
class RunnerSetup:
    """How a real run is made.

    Attributes
    ----------
    mode : {"live", "replay"}
    device : str
        ``cpu`` or ``cuda`` (``cuda:i``).
    execution : {"eager", "graph"}
        ``graph``: CUDA graphs (CUDA only).
    threads : int
        PyTorch intra-op threads (CPU).
    release : {"poll", "thread"}
        Open loop: arrivals in the worker's thread or released by a dispatcher thread (`simulator.runner.worker`).
    idle : {"sleep", "spin"}
        Open loop with poll release: an idle worker sleeps until just before the next arrival, or polls the clock
        the whole time (the CPU never idles).
    members_path, samples_path : str
        Live mode: the trained members and the images they serve.
    compute : tuple of str
        Replay mode: the compute model of each stage, or one for all (``NAME[@RESOLUTION]``).
    warmup_calls : int
        Calls of every stage before the run (first calls build kernels and caches).
    allocator : {"steady", "default"}
        The C library's malloc held steady (no page faults on fresh memory once warm) or left as it is; the setting
        of the profiles that predict the run (`simulator.profiler.allocator`). Process-wide.
    """

    mode: str = "live"
    device: str = "cpu"
    execution: str = "eager"
    threads: int = 1
    release: str = "poll"
    idle: str = "sleep"
    members_path: str = str(MEMBERS_PATH)
    samples_path: str = str(SAMPLES_PATH)
    compute: tuple = ()
    warmup_calls: int = 30
    allocator: str = "steady"

    def __post_init__(self):
        from simulator.profiler.allocator import check_allocator
        from simulator.runner.compute import EXECUTIONS
        from simulator.runner.worker import IDLES, RELEASES

        require(self.mode in MODES, f"invalid mode = {self.mode!r}: must be one of {', '.join(MODES)}")
        require(self.execution in EXECUTIONS, f"invalid execution = {self.execution!r}: must be one of "
                f"{', '.join(EXECUTIONS)}")
        require(self.release in RELEASES, f"invalid release = {self.release!r}: must be one of {', '.join(RELEASES)}")
        require(self.idle in IDLES, f"invalid idle = {self.idle!r}: must be one of {', '.join(IDLES)}")
        require(self.device == "cpu" or self.device.startswith("cuda"),
                f"invalid device = {self.device!r}: must be cpu or cuda[:INDEX]")
        require(self.execution != "graph" or self.device != "cpu",
                "invalid execution = graph on device cpu: execution = graph needs a CUDA device (--device cuda)")
        require(isinstance(self.threads, int) and 1 <= self.threads <= MAX_THREADS,
                f"invalid threads = {self.threads!r}: must be an integer from 1 to {MAX_THREADS}")
        if self.device != "cpu":
            import torch

            from simulator.profiler.targets import check_device
            check_device(torch, self.device)
        require(self.mode == "live" or len(self.compute) >= 1,
                "replay mode needs a compute model per stage (or one for all), e.g. resnet18@64")
        require(isinstance(self.warmup_calls, int) and self.warmup_calls >= 1,
                f"invalid warmup_calls = {self.warmup_calls!r}: must be an integer >= 1")
        check_allocator(self.allocator)


def check_supported(config: RunConfig) -> None:
    """The real runner serves batch 1 on one device with a FIFO queue; reject anything else."""
    require(config.batch_size == 1, f"real runner: batch_size = {config.batch_size} is not supported (batch 1 only)")
    devices = max(config.devices, len(config.profile))
    require(devices == 1, f"real runner: {devices} devices given (one device only)")
    require(config.queue == "fifo", f"real runner: queue = {config.queue!r} is not supported (fifo only)")
    require("power-cap" not in config.policy, "real runner: policy power-cap is not supported (no per-call energy)")


def run_real(config: RunConfig, setup: RunnerSetup = RunnerSetup(), inputs: SimulationInputs | None = None,
             cache: LogitCache | None = None):
    """Serve `config`'s workload for real; return a `simulator.runner.result.RealRun`.

    `inputs` (from `simulator.run.prepare`) and `cache` may be given to reuse them; they must be the config's.
    """
    from simulator.profiler.allocator import set_allocator
    from simulator.run import prepare
    from simulator.runner import stages as stage_lib
    from simulator.runner.compute import set_threads
    from simulator.runner.decide import HostDecision

    check_supported(config)
    cache = cache or load_cache(config.logits)
    inputs = inputs or prepare(config, cache)
    require(inputs.n_devices == 1 and inputs.max_batch == 1, "real runner: the inputs are not batch-1 on one device")
    set_allocator(setup.allocator)
    previous = set_threads(setup.threads)
    try:
        stages = stage_lib.build_stages(config.members, setup, cache, inputs.sample)
        decision = HostDecision(inputs, config.combiner, config.signal, cache.labels)
        return serve(stages, decision, inputs, cache, setup)
    finally:
        set_threads(previous)


def serve(stages, decision, inputs: SimulationInputs, cache: LogitCache, setup: RunnerSetup):
    """Warm up, then serve `inputs`' requests with `stages`; return the `RealRun`."""
    from simulator.runner.compute import logit_dtype
    from simulator.runner.energy import open_meter
    from simulator.runner.host import HostMonitor
    from simulator.runner.result import build_real_run
    from simulator.runner.worker import Worker

    warm_up(stages, decision, inputs, cache, setup.warmup_calls)
    worker = Worker(stages, decision, inputs, cache.labels, cache.n_classes, setup.idle,
                    logit_dtype(cache.logits.dtype))
    meter = open_meter(setup.device)
    energy0 = meter.read_j() if meter else None
    monitor = HostMonitor().start()
    if inputs.clients:
        worker.run_closed(inputs.clients)
    elif setup.release == "thread":
        worker.run_open_thread(inputs.arrival_s)
    else:
        worker.run_open_poll(inputs.arrival_s)
    host = monitor.stop()
    energy = meter.read_j() - energy0 if meter else None
    return build_real_run(worker, inputs, host, energy, describe(setup))


def warm_up(stages, decision, inputs: SimulationInputs, cache: LogitCache, calls: int) -> None:
    """Call every stage and the decision `calls` times, so that one-off costs (kernel selection, JIT compilation of
    the policy, allocator growth) stay out of the run."""
    from simulator.runner.compute import logit_dtype

    history = np.zeros((len(stages), cache.n_classes), dtype=logit_dtype(cache.logits.dtype))
    samples = inputs.sample[:calls] if inputs.sample.shape[0] >= calls else np.resize(inputs.sample, calls)
    for s in samples:
        for k, stage in enumerate(stages):
            history[k] = stage(int(s))
            value, prediction = decision.combined(history[:k + 1])
            decision.stops(0, int(s), k, value, prediction, 0.0, 0, 0.0)


def describe(setup: RunnerSetup) -> dict:
    """The setup and the software and host it ran on."""
    import torch

    from simulator.profiler.allocator import allocator_facts
    from simulator.profiler.environment import cpu_capability, cpu_model_name, cpuinfo_field

    return {**asdict(setup), "allocator_facts": allocator_facts(), "torch": torch.__version__,
            "python": platform.python_version(), "host": platform.node(), "machine": platform.machine(),
            "processor": cpu_model_name(), "cpu_family": cpuinfo_field("cpu family"),
            "cpu_model": cpuinfo_field("model"), "cpu_capability": cpu_capability(torch)}


def device_name(device: str) -> str:
    """The name of `device`: the CUDA device's, or the CPU's model name."""
    if device.startswith("cuda"):
        import torch
        return torch.cuda.get_device_name(torch.device(device))
    from simulator.profiler.environment import cpu_model_name
    return cpu_model_name()
