"""``flexsim validate``: serve workloads with real models, simulate the same inputs, report how far apart they are."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

DESCRIPTION = """Validate the simulator against real runs on this host (PyTorch needed).

For every scenario (50/80/95% load, closed loop, a deadline-aware policy, a heterogeneous cascade, a replay-mode run,
a polling and a thread-released run): profiles its members (the shipped trained Fashion-MNIST members) with the
real runner (latencies, decision and dispatch overheads, wake-up after idle, the host's speed process, the serving
factor); once every scenario is profiled, serves each one's arrival trace several times for real, in rounds
interleaved over the scenarios (each run after a short closed-loop burst that measures the host's speed), and
simulates it over many seeds; writes the raw traces, the profiles, results.json, the latency CDFs and the Markdown
report (mean, p50 and p99 latency real against simulated, per scenario and per run).

Examples:
  flexsim validate                                    # the full report: docs/validation.md + docs/validation/
  flexsim validate --scenarios open-50,cascade-80 --requests 500 --out runs/val --report runs/val/report.md
  flexsim validate --device cuda --execution graph    # on a GPU
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="docs/validation", help="folder of the raw traces, profile, results.json "
                        "and figure (default docs/validation)")
    parser.add_argument("--report", default="docs/validation.md", help="the Markdown report (default "
                        "docs/validation.md)")
    parser.add_argument("--scenarios", default=None, help="comma-separated scenario names (default: all; see --list)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--requests", type=int, default=3000, help="requests per real run (default 3000)")
    parser.add_argument("--repeats", type=int, default=5, help="real runs per scenario (default 5)")
    parser.add_argument("--seeds", type=int, default=20, help="simulations (service-time seeds) per scenario "
                        "(default 20)")
    parser.add_argument("--profiling-requests", type=int, default=1500, help="requests of each profiling run "
                        "(closed and open loop; at most half a scenario's cap on requests, e.g. replay-80's; "
                        "default 1500)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the arrival traces (default 1)")
    parser.add_argument("--logits", default=None, help="logit cache of the members on the served images "
                        "(default: the shipped simulator/data/fmnist_cpu_logits_test.npz)")
    parser.add_argument("--weights", default=None, help="trained members (default: the shipped "
                        "simulator/data/fmnist_cpu_members.npz)")
    parser.add_argument("--samples", default=None, help="images the requests are served with (default: the shipped "
                        "simulator/data/fmnist_cpu_samples.npz)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:INDEX] (default cpu)")
    parser.add_argument("--execution", default="eager", help="eager or graph (CUDA graphs; default eager)")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch intra-op threads (default 1)")
    parser.add_argument("--allocator", default="steady", help="steady (glibc's malloc held steady: no page faults "
                        "on fresh memory) or default (the C library's settings), for the profiles and the real runs "
                        "alike (default steady)")


def run(args: argparse.Namespace) -> int:
    from simulator.errors import require
    from simulator.io import check_output_dir, check_report_file
    from simulator.runner.bundle import CACHE_PATH, MEMBERS_PATH, SAMPLES_PATH
    from simulator.runner.real import RunnerSetup
    from simulator.runner.validation import SCENARIOS, ValidationPlan

    if args.list:
        for sc in SCENARIOS:
            print(f"{sc.name:<12} {sc.description}")
        return 0
    by_name = {sc.name: sc for sc in SCENARIOS}
    names = list(by_name) if args.scenarios is None else [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in names if n not in by_name]
    require(names and not unknown, f"invalid --scenarios = {args.scenarios!r}: known are {', '.join(by_name)}")
    check_output_dir(args.out, "--out")                    # before hours of real runs, not after them
    check_report_file(args.report, "--report")
    setup = RunnerSetup(device=args.device, execution=args.execution, threads=args.threads, allocator=args.allocator,
                        members_path=args.weights or str(MEMBERS_PATH), samples_path=args.samples or str(SAMPLES_PATH))
    plan = ValidationPlan(out_dir=Path(args.out), scenarios=tuple(by_name[n] for n in names), requests=args.requests,
                          repeats=args.repeats, seeds=args.seeds, profiling_requests=args.profiling_requests,
                          seed=args.seed, logits=args.logits or str(CACHE_PATH), setup=setup)
    write_report(plan, Path(args.report), _command(args, names))
    return 0


def _command(args: argparse.Namespace, names: list) -> str:
    """The command line that regenerates the report, every option spelled out."""
    return (f"flexsim validate --out {args.out} --report {args.report} --scenarios {','.join(names)} "
            f"--requests {args.requests} --repeats {args.repeats} --seeds {args.seeds} "
            f"--profiling-requests {args.profiling_requests} --seed {args.seed} --device {args.device} "
            f"--execution {args.execution} --threads {args.threads} --allocator {args.allocator}"
            + "".join(f" --{name} {getattr(args, name)}" for name in ("logits", "weights", "samples")
                      if getattr(args, name)))


def write_report(plan, report_path: Path, command: str) -> dict:
    """Run `plan`; write results.json, the CDF figure and the report; return the results."""
    from simulator.io import write_json_atomic, write_text_atomic
    from simulator.profiles import load_profile
    from simulator.runner.plots import latency_cdfs
    from simulator.runner.report import best_model, markdown, verdict
    from simulator.runner.validation import run_validation

    t0 = time.perf_counter()
    results, panels = run_validation(plan, progress=lambda line: print(line, flush=True))
    figure = plan.out_dir / "latency-cdf.png"
    latency_cdfs(figure, panels)
    write_json_atomic(plan.out_dir / "results.json", results)
    report_path.parent.mkdir(parents=True, exist_ok=True)
    relative = os.path.relpath(figure, report_path.parent)
    profiles = [load_profile(path) for path in results["profiles"]]
    text = markdown(results, profiles, relative, command, time.perf_counter() - t0)
    write_text_atomic(report_path, text)
    for sc in results["scenarios"]:
        figures = best_model(sc)
        print(f"{sc['name']:<12} " + "  ".join(
            f"{label} {figures[m]['real']:.3f}/{figures[m]['sim']:.3f} ms ({100 * figures[m]['error']:+.1f}%)"
            for label, m in (("mean", "latency_mean_ms"), ("p50", "latency_p50_ms"), ("p99", "latency_p99_ms")))
              + f"  {verdict(sc)}")
    print(f"wrote {report_path}, {plan.out_dir}/results.json, {figure}")
    return json.loads(json.dumps(results))
