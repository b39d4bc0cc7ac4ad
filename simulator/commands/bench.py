"""``flexsim bench``: requests/s of the Numba engine against the SimPy engine and a bare Lindley loop.

Workload: the 6-member flexible ensemble (default thresholds, shipped logits, default profile), batch 1,
one device, Poisson arrivals at 80% load. All engines run on the same prepared inputs in one process:

- JIT compile time is reported apart: cold (a fresh process with an empty Numba cache) and warm (this process's
  first, tiny run, which loads the cache);
- Numba engine: best of ``--repeat`` runs over ``--requests`` requests, end to end as `simulate` runs in a loop
  (each run's outputs allocated; their memory comes from the outputs' pool, mapped by an earlier run whose
  result is gone: `simulator.results`), the same with fresh memory each run (the pool emptied before each: the
  first run of a process pays this), and the compiled kernel alone writing into outputs allocated once;
- floor: a compiled Lindley recursion ``start = max(arrival, previous finish)`` over the same service times
  (each request's simulated ``finish - start``) writing into outputs allocated once: the loop alone, best of
  ``--repeat``;
- SimPy engine: one run over ``--simpy-requests`` requests (default: the same number);
- memory: peak resident memory of a separate process that simulates ``--memory-requests`` requests.

The last line printed is the speedup over SimPy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

DESCRIPTION = __doc__


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests", type=int, default=1_000_000, help="requests per Numba run, >= 1000 (default 1000000)")
    parser.add_argument("--simpy-requests", type=int, default=None, help="requests of the SimPy run, >= 1 "
                        "(default: --requests)")
    parser.add_argument("--repeat", type=int, default=5, help="Numba and floor runs; the best is kept (default 5)")
    parser.add_argument("--memory-requests", type=int, default=10_000_000,
                        help="requests of the peak-memory run in a separate process; 0 skips it (default 10000000)")
    parser.add_argument("--record-batches", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the Numba engine with the batch-stage log, and record it in the memory run "
                             "(default: yes)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH as JSON")


def run(args: argparse.Namespace) -> int:
    from simulator.errors import require
    from simulator.io import check_output_file
    from simulator.config import RunConfig
    from simulator.run import check_memory

    require(args.requests >= 1000, f"invalid --requests = {args.requests}: must be >= 1000")
    require(args.repeat >= 1, f"invalid --repeat = {args.repeat}: must be >= 1")
    require(args.simpy_requests is None or args.simpy_requests >= 1,
            f"invalid --simpy-requests = {args.simpy_requests}: must be >= 1")
    require(args.memory_requests >= 0, f"invalid --memory-requests = {args.memory_requests}: must be >= 0 (0 skips "
            "the memory run)")
    for flag, n in (("--requests", args.requests), ("--simpy-requests", args.simpy_requests or 0),
                    ("--memory-requests", args.memory_requests)):           # before minutes of measuring
        check_memory(n, len(RunConfig().members), flag)     # the default flexible ensemble, as `_inputs`
    if args.json is not None:
        check_output_file(args.json, "--json")
    n_simpy = args.requests if args.simpy_requests is None else args.simpy_requests
    figures = measure(args.requests, n_simpy, args.repeat, args.record_batches)
    figures["jit_cold_s"] = measure_cold_compile()
    if args.memory_requests:
        figures.update(measure_memory(args.memory_requests, args.record_batches))
    report(figures)
    if args.json is not None:
        from simulator.io import write_json_atomic
        write_json_atomic(args.json, figures)
    return 0


def _inputs(n: int, record_batches: bool):
    from simulator.config import RunConfig
    from simulator.run import prepare

    return prepare(RunConfig(requests=n, arrivals="poisson:load=0.8", record_batches=record_batches))


def measure(n: int, n_simpy: int, repeat: int, record_batches: bool) -> dict:
    """Time the engines side by side; return the figures.

    The Numba engine is timed without the batch-stage log (the headline: what a sweep runs) and, when
    `record_batches`, with it as well. SimPy runs without the log.
    """
    import dataclasses

    from simulator.engine_numba import simulate_numba
    from simulator.engine_simpy import simulate_simpy

    t0 = time.perf_counter()
    inputs = _inputs(n, False)
    prepare_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    simulate_numba(_inputs(1000, True))
    jit_s = time.perf_counter() - t0
    numba_s, raw = _best(lambda: simulate_numba(inputs), repeat)
    fresh_s = _best(lambda: _fresh(simulate_numba, inputs), repeat)[0]
    kernel_s = _kernel_only(inputs, repeat)
    logged = dataclasses.replace(inputs, record_batches=True)
    numba_log_s = _best(lambda: simulate_numba(logged), repeat)[0] if record_batches else float("nan")
    service = raw.finish_s - raw.start_s
    floor_s = _floor(raw.arrival_s, service, repeat)
    simpy_inputs = inputs if n_simpy == n else _inputs(n_simpy, False)
    t0 = time.perf_counter()
    simulate_simpy(simpy_inputs)
    simpy_s = time.perf_counter() - t0
    return {
        "requests": n, "simpy_requests": n_simpy,
        "utilisation": float(service.sum() / (raw.finish_s.max() - raw.arrival_s.min())),
        "mean_stages": float(raw.stages_run.mean()),
        "prepare_s": prepare_s, "jit_or_cache_load_s": jit_s,
        "numba_s": numba_s, "numba_rps": n / numba_s, "numba_fresh_memory_s": fresh_s,
        "ratio_fresh_memory_to_floor": fresh_s / floor_s, "kernel_s": kernel_s,
        "ratio_kernel_to_floor": kernel_s / floor_s,
        "numba_with_log_s": numba_log_s, "numba_with_log_rps": n / numba_log_s,
        "floor_s": floor_s, "floor_rps": n / floor_s,
        "simpy_s": simpy_s, "simpy_rps": n_simpy / simpy_s,
        "ratio_to_floor": numba_s / floor_s, "ratio_to_floor_with_log": numba_log_s / floor_s,
        "speedup_over_simpy": (n / numba_s) / (n_simpy / simpy_s),
    }


def _fresh(simulate, inputs):
    """`simulate` on outputs in memory mapped afresh: the outputs' pool emptied first."""
    from simulator.results import clear_pool

    clear_pool()
    return simulate(inputs)


def _kernel_only(inputs, repeat: int) -> float:
    """Best time of the compiled kernel alone, writing into outputs allocated once."""
    from simulator.engine_numba import _kernel_args, _kernel_builtin
    from simulator.results import RawOutputs

    args = _kernel_args(inputs, RawOutputs.allocate(inputs))
    return _best(lambda: _kernel_builtin(inputs.policy.params, *args), repeat)[0]


def _best(fn, repeat: int):
    best, result = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _floor(arrival_s: np.ndarray, service_s: np.ndarray, repeat: int) -> float:
    """Best time of the Lindley loop over `service_s`, writing into outputs allocated once."""
    from simulator.floor import lindley

    start, finish = np.empty_like(arrival_s), np.empty_like(arrival_s)
    lindley(arrival_s[:10], service_s[:10], start, finish)          # compiled before it is timed
    return _best(lambda: lindley(arrival_s, service_s, start, finish), repeat)[0]


_MEMORY_SCRIPT = """
import json, resource, sys, time
from simulator.config import RunConfig
from simulator.run import prepare, run_inputs
n, record = int(sys.argv[1]), sys.argv[2] == "1"
t0 = time.perf_counter()
result = run_inputs(prepare(RunConfig(requests=n, arrivals="poisson:load=0.8", record_batches=record)))
print(json.dumps({"memory_requests": n, "memory_run_s": time.perf_counter() - t0,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "memory_accuracy": result.summary.accuracy}))
"""


_COLD_SCRIPT = """
import time
t0 = time.perf_counter()
from simulator.config import RunConfig
from simulator.run import prepare, run_inputs
run_inputs(prepare(RunConfig(requests=1000)))
print(time.perf_counter() - t0)
"""


def measure_cold_compile() -> float:
    """Seconds a fresh process with an empty Numba cache takes to import, compile and run 1000 requests."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as cache_dir:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
        done = subprocess.run([sys.executable, "-c", _COLD_SCRIPT], capture_output=True, text=True, check=True,
                              env=env)
    return float(done.stdout.strip().splitlines()[-1])


def measure_memory(n: int, record_batches: bool) -> dict:
    """Peak resident memory (MB) of a fresh process simulating `n` requests end to end (prepare + run + summary)."""
    done = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(n), "1" if record_batches else "0"],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(f: dict) -> None:
    print(f"workload: 6-member flexible ensemble, Poisson at 80% load (measured utilisation {f['utilisation']:.1%}), "
          f"mean stages {f['mean_stages']:.3f}, {f['requests']} requests")
    print(f"prepare inputs: {f['prepare_s']:.3f} s;  JIT: cold compile {f['jit_cold_s']:.1f} s (fresh process, "
          f"empty cache), cache load {f['jit_or_cache_load_s']:.2f} s (neither counted below)")
    print(f"numba engine            : {f['numba_s'] * 1e3:9.2f} ms  {f['numba_rps']:14,.0f} requests/s   "
          f"numba / floor = {f['ratio_to_floor']:.1f}x (target <= 10x)")
    print(f"  on fresh memory       : {f['numba_fresh_memory_s'] * 1e3:9.2f} ms (the pool emptied before each run: "
          f"first touching the outputs' pages)   {f['ratio_fresh_memory_to_floor']:.1f}x")
    print(f"  of which the kernel   : {f['kernel_s'] * 1e3:9.2f} ms (outputs allocated once, reused)   "
          f"kernel / floor = {f['ratio_kernel_to_floor']:.1f}x")
    if f["numba_with_log_s"] == f["numba_with_log_s"]:
        print(f"numba + batch-stage log : {f['numba_with_log_s'] * 1e3:9.2f} ms  {f['numba_with_log_rps']:14,.0f} "
              f"requests/s   numba / floor = {f['ratio_to_floor_with_log']:.1f}x")
    print(f"lindley floor           : {f['floor_s'] * 1e3:9.2f} ms  {f['floor_rps']:14,.0f} requests/s   "
          "(the loop alone, outputs allocated once)")
    print(f"simpy engine            : {f['simpy_s'] * 1e3:9.0f} ms  {f['simpy_rps']:14,.0f} requests/s   "
          f"({f['simpy_requests']} requests)")
    if "peak_rss_mb" in f:
        print(f"memory: {f['memory_requests']} requests end to end in a fresh process: peak RSS "
              f"{f['peak_rss_mb']:.0f} MB (target <= 2048 MB), {f['memory_run_s']:.1f} s")
    print(f"speedup over SimPy: {f['speedup_over_simpy']:.0f}x (target >= 300x)")
