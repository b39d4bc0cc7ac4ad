"""Small hand-built inputs for exact tests."""

import re
from pathlib import Path

import numpy as np

from simulator import policies as pol
from simulator.inputs import SimulationInputs, device_tables
from simulator.profiles import GRID, BatchEntry, LatencyDistribution, ModelEntry, Profile
from simulator.signals import stage_signals


def constant_profile(latency_ms=1.0, max_batch=1, energy_j=0.1, idle_power_w=10.0, overhead_ms=0.0,
                     batch_slope=0.0) -> Profile:
    """A profile whose model `m` always takes `latency_ms` (+ batch_slope per extra request in a batch)."""
    batches = {b: BatchEntry(latency=LatencyDistribution(samples_ms=np.array([latency_ms + batch_slope * (b - 1)])),
                             energy_j=energy_j * b) for b in range(1, max_batch + 1)}
    return Profile(name="const", device={"name": "test", "kind": "cpu"}, idle_power_w=idle_power_w,
                   decision_overhead_ms=overhead_ms, provenance={"source": "derived"},
                   models={"m": ModelEntry(batches=batches)})


def tiny_inputs(arrival_s, latency_ms=1.0, max_batch=1, n_stages=2, policies=(), n_samples=4, n_devices=1,
                deadline_ms=np.inf, clients=0, edf=False, seed=0) -> SimulationInputs:
    """Inputs with constant latencies and a random 3-class cache of `n_samples` samples."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n_stages, n_samples, 3)).astype(np.float32)
    labels = rng.integers(0, 3, size=n_samples)
    stages = stage_signals(logits, labels, list(range(n_stages)))
    compiled = pol.compose(list(policies), n_stages)
    tables = device_tables(constant_profile(latency_ms, max_batch), ["m"] * n_stages, max_batch,
                           compiled.deadline_quantile)
    n = len(arrival_s) if clients == 0 else clients * 3
    return SimulationInputs(
        stages=stages, cost_scale=np.ones(stages.signal.shape), devices=(tables,) * n_devices,
        arrival_s=np.asarray(arrival_s, dtype=float) if clients == 0 else np.zeros(0), clients=clients,
        sample=(np.arange(n) % n_samples).astype(np.int32), draw=np.zeros((n, n_stages), dtype=np.uint16),
        deadline_s=np.array([deadline_ms / 1000.0]), energy_budget_j=np.array([np.inf]), max_batch=max_batch,
        edf=edf, policy=compiled)


GRID_SIZE = GRID


ROOT = Path(__file__).resolve().parent.parent


def python_blocks(path: Path) -> str:
    """The ```python blocks of a Markdown file, joined in order."""
    return "\n".join(re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S))


def cli_error(capsys, argv) -> str:
    """Run ``flexsim argv``: it must exit with status 2 and write exactly one line to stderr, returned stripped."""
    from simulator.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    return err.strip()
