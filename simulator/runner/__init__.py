"""The real runner: a policy served with real PyTorch models under a real arrival stream (SPEC semantics: one
worker, FIFO, batch 1), and the validation of the simulator against it (``flexsim validate``).

PyTorch is imported only by the modules that compute (`compute`, and lazily by `real`, `stages`, `measure`):
importing this package, or simulating, never needs it.

Python API::

    from simulator.config import RunConfig
    from simulator.runner.real import RunnerSetup, run_real

    config = RunConfig(logits="simulator/data/fmnist_cpu_logits_test.npz", members=(0, 1, 2, 3),
                       thresholds=(0.6, 0.5, 0.4), profile=("my-cpu.json",), arrivals="poisson:load=0.5",
                       requests=500)
    real = run_real(config, RunnerSetup(mode="live"))     # a RealRun: requests, batches, summary, stage_times, host

Modules: `bundle` (the trained ensemble's files), `fmnist_data` (the Debian dataset), `compute` (stage callables:
eager, CUDA graph, replay), `stages` (building them for a run), `decide` (the host's decision after a stage),
`worker` (the server loop: open loop, closed loop), `host` (interference), `energy` (NVML / RAPL counters),
`result` (`RealRun`), `real` (`run_real`), `measure` (profiles from the runner's measurements), `idle` (first calls
after idle, the profiles' wake-up table), `profiling` (the profiles of ``flexsim validate``), `calibrate`
(diagnostics), `validation`, `report` and `plots` (``flexsim validate``).
"""
