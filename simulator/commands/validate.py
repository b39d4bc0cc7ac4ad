"""``flexsim validate``: serve workloads with real models, simulate the same inputs, report how far apart they are."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import time
from dataclasses import replace
from pathlib import Path

DESCRIPTION = """Validate the simulator against real runs on this host (PyTorch needed).

For every scenario (50/80/95% load, closed loop, a deadline-aware policy, a heterogeneous cascade, a replay-mode run,
a polling and a thread-released run): profiles its members (the shipped trained Fashion-MNIST members) with the
real runner (latencies, decision and dispatch overheads, the dispatch of a request that finds the worker idle and,
with a dispatcher thread, its cost per release, wake-up after idle, members slower after they idled (from a run of
the scenario itself), the host's speed process, the serving factor; a profiling run the host disturbed is measured
again); once every scenario is profiled, serves each one's arrival trace several times for real, in rounds
interleaved over the scenarios (each run after a short closed-loop burst that measures the host's speed), and
simulates it over many seeds, on the profile as measured and, for the verdict, at the host's speed level over the
session (those bursts' geometric mean, with each open loop's serving factor fitted on the scenario's own profiling
run and the long phases of every profiling run); writes the raw traces, the profiles, results.json, the latency CDFs and
the Markdown report (mean, p50 and p99 latency real against simulated, per scenario and per run). The folder's
files are written beside --out first and moved into it at the end, with the report: a run that fails or is stopped
(Ctrl-C, SIGTERM) leaves --out and the report as they were. The entries it replaces in --out must not be symbolic
links, devices or FIFOs, and the report must not be one of them (both refused before anything runs).

Examples:
  flexsim validate                                    # the full report: docs/validation.md + docs/validation/
  flexsim validate --scenarios open-50,cascade-80 --requests 500 --out runs/val --report runs/val/report.md
  flexsim validate --device cuda --execution graph    # on a GPU
  flexsim validate --render --out docs/validation-cuda --report docs/validation-cuda.md   # re-write a report
"""


#: The flags that make the runs, with their defaults: `--render`, which runs nothing, refuses them set otherwise.
RUN_DEFAULTS = {"scenarios": None, "requests": 3000, "repeats": 5, "seeds": 200, "profiling_requests": 1500, "seed": 1,
                "logits": None, "weights": None, "samples": None, "device": "cpu", "execution": "eager", "threads": 1,
                "allocator": "steady"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="docs/validation", help="folder of the raw traces, profile, results.json "
                        "and figure (default docs/validation)")
    parser.add_argument("--report", default="docs/validation.md", help="the Markdown report (default "
                        "docs/validation.md)")
    run_flag = _run_flag(parser)
    run_flag("scenarios", "comma-separated scenario names (default: all; see --list)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    run_flag("requests", "requests per real run (default 3000)", int)
    run_flag("repeats", "real runs per scenario (default 5)", int)
    run_flag("seeds", "simulations (service-time seeds) per scenario and prediction; the report gives the Monte Carlo "
             "error of their median (default 200)", int)
    run_flag("profiling_requests", "requests of each profiling run (closed and open loop; at most half a scenario's "
             "cap on requests, e.g. replay-80's; the scenario's own run is as long as a real run; default 1500)", int)
    run_flag("seed", "seed of the arrival traces (default 1)", int)
    run_flag("logits", "logit cache of the members on the served images (default: the shipped "
             "simulator/data/fmnist_cpu_logits_test.npz)")
    run_flag("weights", "trained members (default: the shipped simulator/data/fmnist_cpu_members.npz)")
    run_flag("samples", "images the requests are served with (default: the shipped "
             "simulator/data/fmnist_cpu_samples.npz)")
    run_flag("device", "cpu or cuda[:INDEX] (default cpu)")
    run_flag("execution", "eager or graph (CUDA graphs; default eager)")
    run_flag("threads", "PyTorch intra-op threads (default 1)", int)
    parser.add_argument("--render", action="store_true", help="run nothing: re-write --report from --out's "
                        "results.json and profiles with this version's report (the figure is kept; the command, "
                        "date and duration are the run's, from results.json or, for a folder written before "
                        "2026-12-06, the existing report's first line)")
    run_flag("allocator", "steady (glibc's malloc held steady: no page faults on fresh memory) or default (the C "
             "library's settings), for the profiles and the real runs alike (default steady)")


def _run_flag(parser: argparse.ArgumentParser):
    """A function adding the flag of `RUN_DEFAULTS`' `name` with its default there, its help and its type."""
    def add(name: str, help_text: str, kind=None) -> None:
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=RUN_DEFAULTS[name], help=help_text)
    return add


def run(args: argparse.Namespace) -> int:
    from simulator.errors import require
    from simulator.io import (check_file_spares_inputs, check_output_dir, check_replaceable, check_report_file,
                              check_spares_inputs)
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
    for flag, path in (("--out", args.out), ("--report", args.report)):
        require(path.strip() != "", f"invalid {flag} = {path!r}: an empty path")
    check_report_file(args.report, "--report")
    check_report_apart(Path(args.report), Path(args.out), [sc.name for sc in SCENARIOS])
    if args.render:
        given = [f"--{name.replace('_', '-')}" for name, default in RUN_DEFAULTS.items()
                 if getattr(args, name) != default]
        require(not given, f"--render runs nothing: {', '.join(given)} would change nothing (leave them out)")
        render_report(Path(args.out), Path(args.report))
        return 0
    check_output_dir(args.out, "--out")                    # before hours of real runs, not after them
    files = ["results.json", "latency-cdf.png", *(f"profile-{name}.json" for name in names)]
    check_replaceable(Path(args.out), [*files, *names], "--out")
    logits, weights, samples = (str(given or default) for given, default in
                                ((args.logits, CACHE_PATH), (args.weights, MEMBERS_PATH), (args.samples, SAMPLES_PATH)))
    check_spares_inputs(args.out, files, [logits, weights, samples], "--out")
    check_file_spares_inputs(args.report, [logits, weights, samples], "--report")
    setup = RunnerSetup(device=args.device, execution=args.execution, threads=args.threads, allocator=args.allocator,
                        members_path=weights, samples_path=samples)
    plan = ValidationPlan(out_dir=Path(args.out), scenarios=tuple(by_name[n] for n in names), requests=args.requests,
                          repeats=args.repeats, seeds=args.seeds, profiling_requests=args.profiling_requests,
                          seed=args.seed, logits=logits, setup=setup)
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


def check_report_apart(report: Path, out: Path, scenarios) -> None:
    """FlexsimError where the report would be one of the files or folders that a run writes in `out` (results.json,
    the figure, a scenario's profile or folder, or anything in one): the report would replace it, or it the
    report."""
    from simulator.errors import require

    try:
        inside = report.resolve().relative_to(out.resolve())
    except ValueError:
        return
    first = inside.parts[0] if inside.parts else ""
    written = {"results.json", "latency-cdf.png", *scenarios, *(f"profile-{name}.json" for name in scenarios)}
    require(len(inside.parts) == 1 and first not in written, f"invalid --report = {str(report)!r}: it is "
            f"{'in ' if len(inside.parts) > 1 else ''}{out / first}, which the run writes in --out "
            "(give the report another name, or put it beside --out)")


def write_report(plan, report_path: Path, command: str) -> dict:
    """Run `plan`; write results.json, the CDF figure and the report (all of them, or none where anything fails);
    return the results."""
    from simulator.io import atomic_path, output_dir, staged_dir, write_json_atomic
    from simulator.runner.plots import latency_cdfs
    from simulator.runner.report import best_model, verdict
    from simulator.runner.validation import run_validation

    t0 = time.perf_counter()
    # the folders made for the report and around --out are removed again where the run fails (while empty)
    with output_dir(report_path.parent, "--report's folder"), output_dir(plan.out_dir.parent, "--out's folder"), \
            atomic_path(report_path) as report_tmp:     # renamed last, once --out is in place
        with staged_dir(plan.out_dir) as staging:       # a run that fails or is stopped leaves --out as it was
            results, panels = run_validation(replace(plan, out_dir=staging),
                                             progress=lambda line: print(line, flush=True))
            results = relocated(results, staging, plan.out_dir)
            results["generated"] = {"command": command, "date": str(datetime.date.today()),
                                    "elapsed_s": time.perf_counter() - t0}
            latency_cdfs(staging / "latency-cdf.png", panels)
            write_json_atomic(staging / "results.json", results)
            Path(report_tmp).write_text(report_text(results, staging, plan.out_dir, report_path))
    figure = plan.out_dir / "latency-cdf.png"
    for sc in results["scenarios"]:
        figures = best_model(sc)
        print(f"{sc['name']:<12} " + "  ".join(
            f"{label} {figures[m]['real']:.3f}/{figures[m]['sim']:.3f} ms ({100 * figures[m]['error']:+.1f}%)"
            for label, m in (("mean", "latency_mean_ms"), ("p50", "latency_p50_ms"), ("p99", "latency_p99_ms")))
              + f"  {verdict(sc)}")
    print(f"wrote {report_path}, {plan.out_dir}/results.json, {figure}")
    return json.loads(json.dumps(results))


def relocated(results: dict, staging: Path, out_dir: Path) -> dict:
    """`results` written in `staging` with the paths they record (the profiles, the scenarios' traces) in `out_dir`,
    where `simulator.io.staged_dir` moves them."""
    def moved(path: str) -> str:
        return str(out_dir / Path(path).relative_to(staging))

    scenarios = [{**sc, "arrivals": "trace:" + moved(sc["arrivals"][len("trace:"):])}
                 if sc["arrivals"].startswith(f"trace:{staging}") else sc for sc in results["scenarios"]]
    return {**results, "profiles": [moved(p) for p in results["profiles"]], "scenarios": scenarios}


def report_text(results: dict, found_in: Path, out_dir: Path, report_path: Path, note: list[str] = ()) -> str:
    """The report of `results`, whose profiles are in folder `found_in` and whose figure will be in `out_dir`, for
    `report_path`; `note`: blockquote lines to put under its title."""
    from simulator.profiles import load_profile
    from simulator.runner.report import markdown

    profiles = [load_profile(found_in / Path(path).name) for path in results["profiles"]]
    figure = os.path.relpath(Path(os.path.realpath(out_dir)) / "latency-cdf.png",
                             Path(os.path.realpath(report_path)).parent)           # from where the report lands
    title, rest = markdown(results, profiles, figure).split("\n", 1)
    return "\n".join([title, "", *note, "", rest.lstrip("\n")] if note else [title, rest])


#: The first line of a report's text after its title: its command, date and duration.
GENERATED = re.compile(r"^Generated by `(?P<command>[^`]+)` on (?P<date>\d{4}-\d{2}-\d{2}) in "
                       r"(?P<minutes>[0-9.]+) min\.", re.MULTILINE)


def render_report(out_dir: Path, report_path: Path) -> None:
    """Re-write `report_path` from `out_dir`'s results.json and profiles, running nothing."""
    from simulator.errors import FlexsimError, require
    from simulator.io import read_json, read_text, write_text_atomic

    path = out_dir / "results.json"
    require(path.is_file(), f"--render: no results.json in {out_dir}")
    results = read_json(path, "--render")
    require(isinstance(results, dict) and {"plan", "profiles", "scenarios"} <= set(results),
            f"--render: {path} is not a validation's results (needs plan, profiles and scenarios)")
    existing = read_text(report_path, "--render's existing report") if report_path.is_file() else None
    if "generated" not in results:
        found = GENERATED.search(existing) if existing is not None else None
        require(found is not None, f"--render: {path} predates its 'generated' record (2026-12-06) and "
                                   f"{report_path} has no 'Generated by' line to take the command and date from")
        results["generated"] = {"command": found["command"], "date": found["date"],
                                "elapsed_s": float(found["minutes"]) * 60.0}
    try:
        missing = [p for p in results["profiles"] if not (out_dir / Path(p).name).is_file()]
        require(not missing, f"--render: profiles missing from {out_dir}: {', '.join(Path(p).name for p in missing)}")
        _check_latencies(results, path)
        text = report_text(results, out_dir, out_dir, report_path, kept_note(existing))
        report_path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(report_path, text)
    except FlexsimError:
        raise                                   # already one line naming what is wrong (FlexsimError is a ValueError)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError, ArithmeticError) as exc:
        what = f"lacks the field {exc}" if isinstance(exc, KeyError) else f"has a field of the wrong form ({exc})"
        raise FlexsimError(f"--render: {path} {what}") from None
    print(f"wrote {report_path} from {path}")


LATENCY_FIELDS = ("latency_mean_ms", "latency_p50_ms", "latency_p99_ms")


#: The simulations a scenario of results.json may hold beside its profile's (``sim``).
SIMULATIONS = ("bare", "steady", "session", "fresh")


def _check_latencies(results: dict, path: Path) -> None:
    """FlexsimError naming the first latency of a real run or of a simulation in `results` that is not a finite
    number >= 0 (a hand-edited or corrupt results.json would otherwise render as a report)."""
    from simulator.errors import require
    from simulator.policies import is_finite_number

    for s in results["scenarios"]:
        for where, x in _latency_figures(s):
            require(is_finite_number(x) and x >= 0,
                    f"--render: {path}: scenario {s['name']}'s {where} = {x!r} is not a finite latency >= 0")


def _latency_figures(scenario: dict):
    """``(where, value)`` of every latency figure of a scenario of results.json: each real run's, each simulation's
    (``sim`` and those of `SIMULATIONS` it holds) and the real and simulated figures its verdicts compare."""
    models = [("", scenario), *((f"{k}.", scenario[k]) for k in SIMULATIONS if k in scenario)]
    for i, run in enumerate(scenario["runs"]):
        yield from ((f"runs[{i}].{f}", run[f]) for f in LATENCY_FIELDS)
    for prefix, model in models:
        sim = model.get("sim", {})
        yield from ((f"{prefix}sim.{f}", sim[f]) for f in LATENCY_FIELDS if f in sim)
        for f in (f for f in LATENCY_FIELDS if isinstance(model.get(f), dict)):
            yield from ((f"{prefix}{f}.{side}", model[f][side]) for side in ("real", "sim"))


def kept_note(existing: str | None) -> list[str]:
    """The blockquote a person added under an existing report's title (its text `existing`, None for none: a summary
    of its run), to keep when the report is rendered again; the report's own banner (``> **Preliminary.**``) is not
    kept: it is recomputed."""
    if existing is None:
        return []
    head = existing.split("\nGenerated by ", 1)[0].splitlines()[1:]
    return [line for line in head if line.startswith(">") and not line.startswith("> **Preliminary.**")]
