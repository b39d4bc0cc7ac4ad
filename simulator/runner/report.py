"""The validation report (Markdown) from the results of `simulator.runner.validation.run_validation`."""

from __future__ import annotations

import os
from pathlib import Path
from statistics import median

from simulator.logits import DATA_DIR
from simulator.runner.bundle import CACHE_PATH, MEMBERS_PATH, SAMPLES_PATH
from simulator.runner.validation import MIN_QUIET_RUNS

#: The project's folder: files inside it are named from there in a report.
PROJECT = DATA_DIR.parent.parent.resolve()

#: Targets on a CPU at loads <= 80% (issue 5): relative error of the mean and of the p99 latency.
TARGET_MEAN = 0.05
TARGET_P99 = 0.10
TARGET_LOAD = 0.8
#: Above this fraction of flagged runs the report is marked preliminary.
PRELIMINARY_FLAGGED = 0.25


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:+.1f}%"


def _ms(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def meets_target(figures: dict, metric: str, target: float, spread: bool = True) -> bool:
    """Within `target`, or (with `spread`) within the real-vs-real spread where that is larger (the issue's target
    at loads up to 80%; the simulated band, which carries the host's speed-level uncertainty, is the check near
    saturation only)."""
    m = figures[metric]
    return abs(m["error"]) <= max(target, m["spread"] if spread else 0.0)


#: The predictions of a scenario, in the order they are shown, with their labels: the closed-loop profile without
#: the host's other costs, the profile without its speed process, the profile (the scenario's top-level figures),
#: the profile at the session's speed level (the verdict's since 2026-12-06; absent from older results), fresh.
PREDICTIONS = ("bare", "steady", None, "session", "fresh")
LABELS = ("bare", "steady", "profile", "session", "fresh")


def best_model(sc: dict) -> dict:
    """The prediction the verdict uses: the profile at the host's speed level over the session (``session``,
    `simulator.runner.validation.session_simulations`), with the host's costs besides the stages (wake-up after
    idle, dispatch, each model's decision overhead, the speed process) that the engines model; in results written
    before it existed, the profile as measured before the runs (the scenario's top-level figures).

    Not the fresh one: the one burst before a run, a fraction of a second, predicts the host's speed over a run of
    seconds poorly (see the report); not the bare one, which leaves out costs the real run is measured to pay."""
    return sc.get("session", sc)


def verdict_label(scenarios) -> str:
    """The label of the prediction the verdict uses (see `best_model`)."""
    return "session" if scenarios and all("session" in sc for sc in scenarios) else "profile"


def _labels(scenarios) -> list[str]:
    """The labels of the predictions every scenario has, in `PREDICTIONS` order."""
    return [label for name, label in zip(PREDICTIONS, LABELS)
            if name is None or all(name in sc for sc in scenarios)]


def verdict(sc: dict) -> str:
    """Target check of a scenario (timing at loads <= 80%, else the band; decisions for timing-free policies)."""
    notes = []
    if sc["threshold_only"]:
        same = all(r["stages_equal"] == 1.0 and r["predictions_equal"] == 1.0 for r in sc["runs"])
        notes.append("decisions identical" if same else "DECISIONS DIFFER")
    fig = best_model(sc)
    if sc["load"] is None or sc["load"] <= TARGET_LOAD:
        if sc["quiet_runs"] < MIN_QUIET_RUNS:
            busy = len(sc["runs"]) - sc["quiet_runs"]
            notes.append(f"timing undecided: host interference in {busy} of {len(sc['runs'])} runs" if busy else
                         f"timing undecided: {len(sc['runs'])} run, a real-vs-real spread needs {MIN_QUIET_RUNS}")
            return "; ".join(notes)
        ok, outright = (meets_target(fig, "latency_mean_ms", TARGET_MEAN, spread)
                        and meets_target(fig, "latency_p99_ms", TARGET_P99, spread) for spread in (True, False))
        notes.append("timing target missed" if not ok else
                     "timing target met" if outright else "timing target met within the real-vs-real spread")
    else:
        notes.append("inside band" if fig["latency_mean_ms"]["inside_band"] and fig["latency_p99_ms"]["inside_band"]
                     else "outside band")
    if sc.get("profile_disturbed"):
        notes.append(f"profile measured under interference ({', '.join(sc['profile_disturbed'])})")
    return "; ".join(notes)


def _allocator(setup: dict) -> str:
    """What the allocator setting did (`simulator.profiler.allocator`)."""
    facts = setup.get("allocator_facts") or {}
    if facts.get("applied"):
        return f"{facts['library']} malloc thresholds fixed at {facts['mmap_threshold_bytes'] / 2 ** 30:g} GiB"
    return facts.get("note", "the C library's malloc as it is")


def _pair(sc: dict, metric: str, key: str, show) -> str:
    """`key` of `metric` for each prediction the scenario has, separated by slashes (see `PREDICTIONS`)."""
    parts = [sc if name is None else sc.get(name) for name in PREDICTIONS]
    return " / ".join(show(part[metric][key]) for part in parts if part)


def _yes(x: bool) -> str:
    return "yes" if x else "no"


def _summary_table(scenarios) -> list[str]:
    names = " / ".join(_labels(scenarios))
    lines = [f"| scenario | utilisation real / sim | mean ms real | sim: {names} | error | "
             f"spread | p50 ms real / sim (error) | p99 ms real | sim: {names} | error | "
             "spread | p99 in band | stages = | predictions = | runs used | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for sc in scenarios:
        stages = min(r["stages_equal"] for r in sc["runs"])
        preds = min(r["predictions_equal"] for r in sc["runs"])
        cells = [sc["name"], f"{sc['utilisation']['real']:.2f} / {best_model(sc)['sim']['utilisation']:.2f}"]
        for metric in ("latency_mean_ms", "latency_p99_ms"):
            cells += [_ms(sc[metric]["real"]), _pair(sc, metric, "sim", _ms), _pair(sc, metric, "error", _pct),
                      f"{100 * sc[metric]['spread']:.1f}%"]
            if metric == "latency_mean_ms":
                p50 = best_model(sc)["latency_p50_ms"]
                cells.append(f"{_ms(p50['real'])} / {_ms(p50['sim'])} ({_pct(p50['error'])})")
        cells += [_pair(sc, "latency_p99_ms", "inside_band", _yes), f"{100 * stages:.1f}%", f"{100 * preds:.1f}%",
                  sc["runs_used"], verdict(sc)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _runs_table(scenarios) -> list[str]:
    speed = _has_speed_process(scenarios)
    lines = ["| scenario | run | mean ms | p50 ms | p99 ms | utilisation | service / request vs sim | "
             "compute ms / stage | decision ms / stage | other CPU (cores) | steal | stalls | preemptions/s | "
             + ("speed process: sigma, correlation; slow windows (phases) | " if speed else "") + "flagged |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if speed else "") + "---|"]
    for sc in scenarios:
        for i, r in enumerate(sc["runs"]):
            host = r["host"]
            lines.append(
                f"| {sc['name']} | {i} | {_ms(r['latency_mean_ms'])} | {_ms(r['latency_p50_ms'])} | "
                f"{_ms(r['latency_p99_ms'])} | "
                f"{r['utilisation']:.2f} | {_pct(r['service_drift'])} | {_ms(r['mean_compute_ms'])} | "
                f"{_ms(r['mean_decision_ms'])} | "
                f"{_num(host['other_cpu_cores'], 2)} | {_num(host['steal_fraction'], 3)} | "
                f"{100 * r['stall_fraction']:.2f}% | {_num(host['preemptions_per_s'], 0)} | "
                + (f"{_speed_cell(r.get('speed_process'))} | " if speed else "") + f"{r['flag'] or 'no'} |")
    return lines


def _has_speed_process(scenarios) -> bool:
    """Whether the runs record their own speed process (`simulator.runner.speed_fit.run_speed_facts`, since run AY)."""
    return any("speed_process" in r for sc in scenarios for r in sc["runs"])


def _speed_cell(facts: dict | None) -> str:
    """A run's `simulator.runner.speed_fit.run_speed_facts` as a table cell; the slow windows "–" where the run has
    no window that counts."""
    if facts is None:
        return "–"
    process = "none" if facts["sigma"] is None else f"{facts['sigma']:.3f}, {facts['correlation_ms']:.0f} ms"
    slow = f"{100 * facts['slow_share']:.1f}% ({facts['phases']})" if facts.get("windows", 1) else "–"
    return f"{process}; {slow}"


def _runs_prose(scenarios) -> list[str]:
    """What the per-run table's speed-process column means, where the runs have one."""
    from simulator.runner.speed_fit import (MIN_PHASE_WINDOWS, MIN_SLOW_PHASES, SLOW_THRESHOLD, SLOW_WINDOW_MS,
                                            WINDOW_STAGES)

    if not _has_speed_process(scenarios):
        return []
    return [f"The speed process of each run is fitted on that run alone as the profile's is on its open-loop "
            f"profiling runs (`simulator/runner/speed_fit.py`, `run_speed_facts`): sigma and correlation time of the "
            f"log stage time's slow part, and the share of its {SLOW_WINDOW_MS:.0f} ms windows ({WINDOW_STAGES} stage "
            f"runs where those take longer) more than {SLOW_THRESHOLD}x slower than its median window, with the "
            f"number of such phases. As in a profile, sigma leaves the slow phases out only where there are "
            f"{MIN_SLOW_PHASES} or more lasting {MIN_PHASE_WINDOWS:g} windows on average (else it includes them), and "
            "the profile keeps slow phases only then. Beside the profile's (above), it shows how far the host's noise "
            "during a run differs from the profiling runs' and from run to run.", ""]


def _num(x, digits: int) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _band_table(scenarios) -> list[str]:
    session_band, calibrated = session_banded(scenarios), verdict_label(scenarios) == "session"
    head = (": profiling runs / session / around the session level (the band's)" if calibrated else
            ": profiling runs / session (the band's)" if session_band else " (level_sigma)")
    factor_head = ("serving factor (profile); session level × serving beyond the drift (the verdict's)" if calibrated
                   else "serving factor")
    lines = [f"| scenario | level uncertainty{head} | {factor_head} | "
             "mean ms: sim 5-95% | real runs | p99 ms: sim 5-95% | real runs |", "|---|---|---|---|---|---|---|"]
    for sc in scenarios:
        band = best_model(sc)["sim"]["band"]
        means = ", ".join(_ms(r["latency_mean_ms"]) for r in sc["runs"])
        p99s = ", ".join(_ms(r["latency_p99_ms"]) for r in sc["runs"])
        level = sc.get("level_sigma", 0.0)
        levels = f"{sc['level_sigma_profiling']:.3f} / {level:.3f}" if session_band else f"{level:.3f}"
        factor = f"{sc.get('serving_factor', 1.0):.3f}"
        if calibrated:
            session = sc["session"]
            levels += f" / {session['level_sigma']:.3f}"
            factor += f"; {session['speed']:.3f} × {session['serving_factor']:.3f}"
            own = session.get("serving_factor_own", session["serving_factor"])
            if _own_run_factor(scenarios):
                factor += f" (own run; every-stage runs {own:.3f})" if sc["load"] is not None else ""
            else:
                factor += f" (its own {own:.3f})" if own != session["serving_factor"] else ""
        lines.append(f"| {sc['name']} | {levels} | {factor} | "
                     f"{_ms(band['latency_mean_ms'][0])}–{_ms(band['latency_mean_ms'][1])} | "
                     f"{means} | {_ms(band['latency_p99_ms'][0])}–{_ms(band['latency_p99_ms'][1])} | {p99s} |")
    return lines


def _pooled(scenarios) -> bool:
    """Whether the verdict's serving factor was pooled over the session (`pooled_serving_factor`, runs AH-AW)."""
    return not _own_run_factor(scenarios) and any("serving_factor_own" in sc.get("session", {}) for sc in scenarios)


def _own_run_factor(scenarios) -> bool:
    """Whether the verdict's serving factor is the scenario's own profiling run's (`own_run_factor`, since run
    AX)."""
    return any(sc.get("session", {}).get("serving_factor_source") == "own run" for sc in scenarios)


def session_banded(scenarios) -> bool:
    """Whether the band was simulated with the level uncertainty over the session (reports since 2026-12-04,
    whose scenarios record ``level_sigma_profiling`` beside it) rather than the profiling runs'."""
    return bool(scenarios) and "level_sigma_profiling" in scenarios[0]


def _band_prose(session_band: bool, calibrated: bool = False, pooled: bool = False,
                own_run: bool = False) -> list[str]:
    """What the band is simulated with: the session's level uncertainty, or (older reports) the profiling runs';
    with `calibrated` (the verdict's prediction at the session's speed level) also what that one's band is, with
    `pooled` how its serving factor is pooled over the session, with `own_run` that it is the own run's."""
    common = ("Each seed draws the service times, the host's speed process and, with the level uncertainty, one "
              "constant speed level for the whole run (`speed_noise.level_sigma`, the root mean square of the log of "
              "a speed level against the profile's). ")
    profiling = ("the drift between the closed-loop and the open-loop profiling runs, seconds apart, pooled over "
                 "the session's poll-release profiles (`simulator/runner/serving.py`). ")
    tail = ("Near saturation a few percent of speed move the mean by multiples, so the band is wide there: its "
            "width is the host's uncertainty, not the simulator's precision.")
    if not session_band:
        return [common + "Median and band are simulated with the level uncertainty of the profiling runs: "
                + profiling + "(This report predates the band's level uncertainty over the session.) " + tail]
    pooling = _POOLED_FACTOR if pooled else _OWN_RUN_FACTOR if own_run else ""
    return [common + ("The profile's median" if calibrated else "The median")
            + " is simulated with the level uncertainty of the profiling runs: " + profiling
            + ("Its band" if calibrated else "The band")
            + " is simulated with the level uncertainty over the session: the levels measured by the "
            "closed-loop bursts right before every real run, against each scenario's own profile, pooled over the "
            "scenarios (`session_level_sigma` in `simulator/runner/validation.py`); those come minutes after the "
            "profiles, as the runs do, so they measure the drift that moves the runs, which the profiling runs, "
            "seconds apart, under-state. Where the two sets of seeds disagree so that the band misses the median "
            "(few seeds, or a session uncertainty below the profiling runs'), the band is stretched to the median "
            "(`spanning`). " + (_CALIBRATED_BAND.format(factor=_OWN_RUN_FITTED if own_run else _LEVELS_FITTED)
                                + pooling if calibrated else "") + tail]


_CALIBRATED_BAND = (
    "The verdict's prediction (**session**) is that profile at the host's speed level over the session, the "
    "geometric mean of the same bursts' levels (`session_speed`), times what open-loop serving costs beyond the "
    "drift ({factor}; closed loops: 1): its median comes from the same seeds as the profile's, its band from seeds "
    "drawn with the level uncertainty around each scenario's session level (each burst's level over its scenario's "
    "session level, pooled: `session_spread_sigma`); the table shows both factors and the three uncertainties. ")
_LEVELS_FITTED = "the serving factor fitted at the levels of the bursts around the open-loop profiling runs"
_OWN_RUN_FITTED = "the serving factor of the scenario's own profiling run, fitted at the level of the burst before it"
_OWN_RUN_FACTOR = (
    "Since run AX that serving factor is the scenario's own profiling run's (`own_run_factor`): the run of the "
    "scenario itself (its policy and arrivals, another seed) fitted as the every-stage runs are, at the level of the "
    "burst right before it. The every-stage runs serve every stage of every request and so release requests several "
    "times more rarely than the scenario does; their factor is shown beside it. ")
_POOLED_FACTOR = (
    "For a poll-release open loop that serving factor is pooled over the session: the median of the poll-release "
    "open-loop profiles' factors beyond the drift (`pooled_serving_factor`; each scenario's own in brackets). "
    "Those profiles describe one worker serving one way minutes apart, and their own factors spread by several "
    "percent, mostly the noise of the few seconds each is measured over; a dispatcher thread's scenario keeps its "
    "own. ")


def _idle_table(scenarios) -> list[str]:
    edges = [b["idle_ms"] for b in scenarios[0]["idle"]["buckets"]]
    head = " | ".join("waited in queue" if i == 0 else f"idle {_range_text(lo, hi)}"
                      for i, (lo, hi) in enumerate(edges))
    lines = [f"| scenario | {head} |", "|---" * (len(edges) + 1) + "|"]
    for sc in scenarios:
        cells = []
        for b in sc["idle"]["buckets"]:
            cells.append("–" if b["compute_ms"] is None else
                         f"{b['compute_ms']:.3f} + {b['decision_ms']:.3f} (n={b['requests']})")
        lines.append(f"| {sc['name']} | " + " | ".join(cells) + " |")
    return lines


def _range_text(lo: float, hi: float | None) -> str:
    """A bucket of times in ms; `hi` None (or infinite, in results before 2026-12-07): open-ended."""
    return f"over {lo:g} ms" if hi is None or hi == float("inf") else f"{lo:g}–{hi:g} ms"


def member_idle_section(scenarios, profiles) -> list[str]:
    """The real runs' member-idle slowdown beside the profile's table (`idle.member_idle_effect`), where the results
    have it (since 2026-12-06): a section of the report, or nothing."""
    measured = [sc for sc in scenarios if sc.get("member_idle")]
    if not measured:
        return []
    by_file = {Path(p.origin).name: p for p in profiles}
    edges = [b["idle_ms"] for b in measured[0]["member_idle"]["buckets"]]
    head = " | ".join(_range_text(lo, hi) for lo, hi in edges)
    lines = ["## Members that idled", "",
             "Median compute time of the stage runs that were not the first of their busy period (no wake-up), by the "
             "time since the same member last ran, over the same members' runs within 2 ms of their previous run "
             "(from the real runs; stage runs), against the profile's `member_idle` factor at the bucket's median "
             "time (fitted on the profiling runs, before the real runs; the real figures are medians, the profile's "
             "means):", "", f"| scenario | {head} |", "|---" * (len(edges) + 1) + "|"]
    for sc in measured:
        profile = by_file.get(sc["profile"])
        cells = ["–" if b["compute_vs_warm"] is None else
                 f"{b['compute_vs_warm']:.3f} ({b['runs']}) / {_member_factor_at(profile, b['median_idle_ms'])}"
                 for b in sc["member_idle"]["buckets"]]
        lines.append(f"| {sc['name']} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _noise_line(scenarios, profiles) -> list[str]:
    """A findings bullet: per scenario, the median over its runs of their own speed process's sigma and slow-window
    share (`simulator.runner.speed_fit.run_speed_facts`) beside the profile's; nothing where the runs do not record
    them (before run AY)."""
    if not _has_speed_process(scenarios):
        return []
    by_file = {Path(p.origin).name: p for p in profiles}

    def runs_median(sc, key: str) -> float:
        return float(median((r.get("speed_process") or {}).get(key) or 0.0 for r in sc["runs"]))

    def profiled(sc) -> tuple[float, float]:
        noise = getattr(by_file.get(sc["profile"]), "speed_noise", None)
        return (0.0, 0.0) if noise is None else (noise.sigma, noise.slow_share if noise.has_slow_phases else 0.0)

    cells = [f"{sc['name']} {runs_median(sc, 'sigma'):.3f} ({sigma:.3f}), {runs_median(sc, 'slow_share'):.1%} "
             f"({share:.1%})" for sc, (sigma, share) in ((sc, profiled(sc)) for sc in scenarios)]
    return ["- **Host noise during the runs** (each run's own speed process, median over the scenario's runs, the "
            "profile's in brackets: sigma, then the share of the time in slow phases; per run in the table of every "
            "real run): " + "; ".join(cells) + ". Where the runs are noisier than the profiling runs, queueing grows "
            "beyond what the profile predicts, most in the p99."]


def _member_factor_at(profile, idle_ms: float) -> str:
    """The profile's member-idle factor at `idle_ms` (`idle.member_factor`), or "–" without a table."""
    from simulator.runner.idle import member_factor

    if profile is None or profile.member_idle is None:
        return "–"
    return f"{float(member_factor(idle_ms, profile.member_idle)):.3f}"


def _per_run(values) -> str:
    return ", ".join(values)


def _errors(parts, metric: str) -> str:
    return _per_run(_pct(part[metric]["error"]) for part in parts)


def _diagnostics_table(scenarios) -> list[str]:
    lines = ["| scenario | stage-time factor (runs) | decision factor | calibrated: mean error | p99 error | "
             "runs in p99 band | service replay: mean error | p99 error |", "|---|---|---|---|---|---|---|---|"]
    for sc in scenarios:
        diag = sc["diagnostics"]
        cal = [d["calibrated"] for d in diag]
        rep = [d["replay"] for d in diag]
        speed = _per_run(f"{sum(d['stage_factors']) / len(d['stage_factors']):.2f}" for d in diag)
        decision = _per_run(f"{d['decision_factor']:.2f}" for d in diag)
        inside = sum(c["latency_p99_ms"]["inside_band"] for c in cal)
        lines.append(f"| {sc['name']} | {speed} | {decision} | {_errors(cal, 'latency_mean_ms')} | "
                     f"{_errors(cal, 'latency_p99_ms')} | {inside}/{len(cal)} | {_errors(rep, 'latency_mean_ms')} | "
                     f"{_errors(rep, 'latency_p99_ms')} |")
    return lines


def _energy_lines(scenarios) -> list[str]:
    rows = [f"| {sc['name']} | {sc['energy_j']['real']:.2f} | {sc['energy_j']['sim']:.2f} | "
            f"{_pct(sc['energy_j']['error'])} |" for sc in scenarios if sc.get("energy_j")]
    if not rows:
        return ["Energy: not measured (this host has no NVML or RAPL counter), so not compared.", ""]
    return ["Device energy over each run (J), measured against simulated:", "",
            "| scenario | real | simulated | error |", "|---|---|---|---|", *rows, ""]


def _profile_table(profiles) -> list[str]:
    import numpy as np

    lines = ["| profile | model | samples | p10 ms | p50 ms | mean ms | p99 ms | decision ms after it (mean) |",
             "|---|---|---|---|---|---|---|---|"]
    for profile in profiles:
        for name, model in profile.models.items():
            x = model.batches[1].latency.samples_ms
            p10, p50, p99 = np.percentile(x, [10, 50, 99])
            lines.append(f"| {_short(profile)} | {name} | {x.size} | {p10:.3f} | {p50:.3f} | {x.mean():.3f} | "
                         f"{p99:.3f} | {_ms(profile.decision_overhead_for(name))} |")
    return lines


def _screening_lines(profiles) -> list[str]:
    """How the profiling runs were screened for interference (`simulator.runner.profiling.screened_run`); nothing
    for profiles measured before the screening."""
    from simulator.runner.profiling import PROFILING_RETRIES, disturbed_runs, last_attempts

    last = {_short(p): last_attempts(p) for p in profiles}
    if not any(last.values()):
        return []
    again = [f"{name}: {run} ({a['attempt']}x)" for name, runs in last.items() for run, a in runs.items()
             if a["attempt"] > 0]
    kept = [f"{_short(p)}: {run}" for p in profiles for run in disturbed_runs(p)]
    return [f"The profiling runs are screened for interference as the real runs are (below): one the host disturbed "
            f"is measured again, at most {PROFILING_RETRIES} times. Of the {sum(map(len, last.values()))} profiling "
            "runs, " + (f"{len(again)} were measured again ({', '.join(again)})" if again else "none was disturbed")
            + (f"; kept although disturbed: {', '.join(kept)} (the scenarios' verdicts say so)." if kept else "."),
            ""]


def _long_phases_section(scenarios, profiles) -> list[str]:
    """The slower phases of the seconds scale (`simulator.runner.speed_fit.window_levels`) in the profiling runs and
    in the real runs, per scenario; nothing for a folder written before they were recorded."""
    from simulator.runner.speed_fit import LONG_SLOW_THRESHOLD, LONG_WINDOW_MS

    measured = {f"profile-{sc['name']}": sc for sc in scenarios if all("window_levels" in r for r in sc["runs"])}
    profiling = {_short(p): p.provenance["window_levels_measured"]["levels"] for p in profiles
                 if "window_levels_measured" in p.provenance}
    if not measured or not profiling:
        return []
    lines = ["### Slower phases of the seconds scale", "",
             f"Windows of {LONG_WINDOW_MS:.0f} ms of each run whose stage runs took more than "
             f"{LONG_SLOW_THRESHOLD}x as long as in the run's median window (against their stages' typical times; "
             "`simulator/runner/speed_fit.py`). The profile's slow phases are fitted on 20 ms windows at 1.3x; "
             "phases of a few hundred milliseconds at 1.1-1.3x escape them, and at 80% load one raises the load "
             "past 1 for as long as it lasts. " + _long_phases_use(scenarios)
             + " Mean latency of the real runs with such a window and of those without:", "", *LONG_PHASE_HEADER]
    for name, sc in measured.items():
        lines.append(long_phase_row(sc["name"], list(profiling.get(name, {}).values()),
                                    [r["window_levels"] for r in sc["runs"]],
                                    [r["latency_mean_ms"] for r in sc["runs"]]))
    return [*lines, ""]


#: The head of the slower phases' table (`long_phase_row`).
LONG_PHASE_HEADER = ["| scenario | profiling runs: slow windows (windows) | real runs: slow windows (windows) | "
                     "runs with one | mean ms: runs with one / without |", "|---|---|---|---|---|"]


def long_phase_row(name: str, profiling_levels: list, real_levels: list, mean_ms: list) -> str:
    """One scenario's row of the slower phases' table: the share of slow windows
    (`simulator.runner.speed_fit.long_slow_share`) in its profiling runs' and its real runs' window levels (one
    sequence per run), how many real runs had one, and the mean latency (`mean_ms`, per real run) of those runs and
    of the others."""
    import numpy as np

    from simulator.runner.speed_fit import LONG_SLOW_THRESHOLD, long_slow_share

    own, n_own = long_slow_share(profiling_levels)
    real, n_real = long_slow_share(real_levels)
    slow = [bool(np.any(np.asarray(x) > LONG_SLOW_THRESHOLD)) for x in real_levels]
    means = [[m for m, s in zip(mean_ms, slow) if s == want] for want in (True, False)]
    cells = " / ".join(f"{np.mean(m):.3f}" if m else "–" for m in means)
    return f"| {name} | {_share(own)} ({n_own}) | {_share(real)} ({n_real}) | {sum(slow)} of {len(slow)} | {cells} |"


def _long_phases_note(scenarios) -> str:
    """A sentence for the predictions' paragraph where the verdict's prediction has the session's long phases."""
    if not any((sc.get("session") or {}).get("long_phases") for sc in scenarios):
        return ""
    return ("Since run AK the verdict's prediction also has the long phases of the session's profiling runs, "
            "phases of a few hundred milliseconds at 1.1-1.3x (\"Slower phases of the seconds scale\", below). ")


def _long_phases_use(scenarios) -> str:
    """What the verdict's prediction made of the long phases pooled over the session's profiling runs."""
    from simulator.runner.speed_fit import MIN_SLOW_PHASES

    sessions = [sc.get("session", {}) for sc in scenarios]
    if not all("long_phases" in s for s in sessions):
        return "A diagnostic: the simulations do not model them (reports before run AK)."
    long = sessions[0]["long_phases"]
    if long is None:
        return (f"Pooled over the session's profiling runs they came in fewer than {MIN_SLOW_PHASES} phases, too few "
                "to fit: the verdict's prediction has none.")
    return (f"Pooled over the session's profiling runs, all measured before the real runs: {long['phases']} phases, "
            f"{long['slow_factor']:.2f}x for {long['slow_share']:.1%} of the time, {long['slow_ms']:.0f} ms on "
            "average; the verdict's prediction (**session**, its median and its band) has them as its speed "
            "process's long phases (`session_long_phases` in `simulator/runner/validation.py`), the other "
            "predictions do not.")


def _share(x) -> str:
    return "–" if x is None else f"{x:.1%}"


def _short(profile) -> str:
    return profile.name.split("(")[-1].rstrip(")")


def _dispatch(profile) -> str:
    """The profile's dispatch overheads (a request taken off the queue; one that arrived at an idle worker) and its
    release cost."""
    idle = profile.idle_dispatch_ms
    return (f"{profile.dispatch_overhead_ms:.4f}; " + ("as queued" if idle is None else f"{idle:.4f}")
            + f"; {profile.release_cost_ms:.4f}")


def _host_costs_table(profiles) -> list[str]:
    member = _has_member(profiles)
    lines = ["| profile | speed process: sigma, correlation ms (stage sd); slow phases: factor, share, mean ms "
             "(phases) | dispatch ms / request: queued; idle; per release | "
             + ("member idle: ms since the member last ran → factor (stage runs) | " if member else "")
             + "wake-up: idle ms → factor (woken busy periods) | wake-up decay per stage | serving factor (busy ms "
             "per queued request: real / simulated)"
             + ("; at the host's speed levels during the runs (not used)" if _has_levels(profiles) else "") + " |",
             "|---|---|---|---|---|---|" + ("---|" if member else "")]
    for profile in profiles:
        member_cell = f"{_points(profile, 'member_idle_measured', 'runs')} | " if member else ""
        lines.append(f"| {_short(profile)} | {_speed_noise(profile)} | {_dispatch(profile)} | "
                     f"{member_cell}{_points(profile, 'wakeup_measured', 'requests')} | {profile.wakeup_decay:.2f} | "
                     f"{_serving(profile)} |")
    return lines


def _points(profile, measured: str, count: str) -> str:
    """A fitted idle table of `profile`'s provenance (``wakeup_measured``, ``member_idle_measured``) in one cell."""
    points = profile.provenance.get(measured, {}).get("points", [])
    return ", ".join(f"{p['idle_ms']:.2g} → {p['factor']:.2f} ({p[count]})" for p in points) or "–"


def _has_member(profiles) -> bool:
    """Whether the profiles carry a fitted member-idle table (since 2026-12-06, third session)."""
    return any("member_idle_measured" in p.provenance for p in profiles)


def _has_levels(profiles) -> bool:
    """Whether the profiles' serving factors were measured with the host's speed levels (since 2026-12-06)."""
    return any("levels" in p.provenance.get("serving_factor_measured", {}) for p in profiles)


def _serving(profile) -> str:
    facts = profile.provenance.get("serving_factor_measured")
    if not facts:
        return "–"
    pairs = ", ".join(f"{_num(r, 3)} / {_num(m, 3)}" for r, m in zip(facts["real_ms"], facts["simulated_ms"]))
    if "levels" not in facts:                                   # reports before 2026-12-06 did not measure them
        return f"{facts['factor']:.3f} ({pairs})"
    levels = ", ".join(f"{lv:.2f}" for lv in facts["levels"])
    return f"{facts['factor']:.3f} ({pairs}); at the bursts' levels ({levels}): {facts['factor_at_levels']:.3f}"


def _speed_noise(profile) -> str:
    facts = profile.provenance.get("speed_noise_measured", {})
    if profile.speed_noise is None:
        return f"none ({facts.get('reason', 'not fitted')})"
    noise = profile.speed_noise
    phases = (f"; {noise.slow_factor:.2f}x, {noise.slow_share:.0%}, {noise.slow_ms:.0f} ({facts.get('phases', '?')})"
              if noise.has_slow_phases else "; none")
    return f"{noise.sigma:.3f}, {noise.correlation_ms:.0f} ({facts.get('total_sd', float('nan')):.3f}){phases}"


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def _speed(sc: dict) -> float:
    """Mean stage-time factor of a scenario's runs (run time over profiled time)."""
    return _mean(_mean(d["stage_factors"]) for d in sc["diagnostics"])


def _within(parts, metric: str, target: float) -> str:
    return f"{sum(abs(p[metric]['error']) <= target for p in parts)} of {len(parts)}"


def _idle_ratio(scenarios, bucket: int):
    """Pooled ratio of the first stage's compute time in idle bucket `bucket` to the waited-in-queue bucket."""
    pairs = [(b[bucket], b[0]) for b in (sc["idle"]["buckets"] for sc in scenarios)
             if b[bucket]["compute_ms"] is not None and b[0]["compute_ms"] is not None and b[bucket]["requests"] >= 5]
    if not pairs:
        return None
    n = sum(hi["requests"] for hi, _ in pairs)
    return sum(hi["compute_vs_waited"] * hi["requests"] for hi, _ in pairs) / n, n


def _mc_line(scenarios) -> list[str]:
    """The findings' line on the Monte Carlo error of the verdict's simulated medians (none for results written
    before it was computed)."""
    if not all("mc_error" in best_model(sc)["sim"] for sc in scenarios):
        return []
    cells = ", ".join(f"{sc['name']} ±{_mc(sc, 'latency_mean_ms')} / ±{_mc(sc, 'latency_p99_ms')}"
                      for sc in scenarios)
    return ["- **Monte Carlo error of the simulated medians** (the verdict's prediction, mean / p99: the standard "
            "deviation of the log of the median over bootstrap resamples of its seeds, i.e. about how far another "
            f"set of as many seeds would move it): {cells}."]


def _mc(sc: dict, metric: str) -> str:
    value = best_model(sc)["sim"]["mc_error"][metric]
    return "–" if value is None else f"{100 * value:.1f}%"


def _all_runs(sc: dict) -> dict:
    """The verdict's prediction's errors over every run (the profile's where that prediction has none)."""
    return best_model(sc).get("all_runs", sc["all_runs"])


def findings(scenarios, profiles=()) -> list[str]:
    """Sentences computed from the figures: decisions, host speed (and noise, against the `profiles`), the
    diagnostics, first calls after idle."""
    threshold = [sc for sc in scenarios if sc["threshold_only"]]
    same = [sc for sc in threshold if all(r["stages_equal"] == 1.0 and r["predictions_equal"] == 1.0
                                          for r in sc["runs"])]
    low = [sc for sc in scenarios if sc["load"] is None or sc["load"] <= TARGET_LOAD]
    cal = [d["calibrated"] for sc in low for d in sc["diagnostics"]]
    rep = [d["replay"] for sc in low for d in sc["diagnostics"]]
    runs = [r for sc in scenarios for r in sc["runs"]]
    lines = ["## Findings (computed from the figures above)", "",
             f"- **Decisions**: stages run and predictions equal the simulator's, request by request, in {len(same)} "
             f"of {len(threshold)} threshold-policy scenarios (every real run).",
             "- **Mean latency error, " + " → ".join(
                 f"{label} (the verdict's)" if label == verdict_label(scenarios) else label
                 for label in _labels(scenarios)) + "**: " +
             ", ".join(f"{sc['name']} {_pair(sc, 'latency_mean_ms', 'error', _pct).replace(' / ', ' → ')}"
                       for sc in scenarios) + ".",
             *_mc_line(scenarios),
             "- **Host speed during the runs** (mean stage time of the requests that waited in the queue over the "
             "profiled one): " +
             ", ".join(f"{sc['name']} {_speed(sc):.2f}" for sc in scenarios) + ". A factor f above 1 raises the "
             "real load from ρ to about f·ρ; near saturation that alone multiplies queueing delays.",
             *_noise_line(scenarios, profiles),
             f"- **Given the run's own speed** (speed-calibrated simulation), at loads ≤ {TARGET_LOAD:.0%}: mean "
             f"latency within ±{TARGET_MEAN:.0%} in {_within(cal, 'latency_mean_ms', TARGET_MEAN)} runs, p99 within "
             f"±{TARGET_P99:.0%} in {_within(cal, 'latency_p99_ms', TARGET_P99)}.",
             f"- **Replaying each run's own service times** through a FIFO server, at loads ≤ {TARGET_LOAD:.0%}: mean "
             f"within ±{TARGET_MEAN:.0%} in {_within(rep, 'latency_mean_ms', TARGET_MEAN)} runs "
             "(what remains is the worker's time between requests beyond the profile's dispatch overhead, and its "
             "reaction to an arrival)."]
    for bucket, label in ((3, "1–5 ms"), (4, "more than 5 ms")):
        ratio = _idle_ratio(scenarios, bucket)
        if ratio:
            lines.append(f"- **First call after {label} idle**: the first stage took {ratio[0]:.2f}x as long as a "
                         f"first stage that had waited in the queue ({ratio[1]} requests, pooled).")
    banded = [sc for sc in low if best_model(sc)["latency_mean_ms"]["inside_band"]
              and best_model(sc)["latency_p99_ms"]["inside_band"]]
    lines.append(f"- **Inside the simulated band** (every used run's mean and p99; not a target at these loads), at "
                 f"loads ≤ {TARGET_LOAD:.0%}: {len(banded)} of {len(low)} scenarios"
                 + (f" ({', '.join(sc['name'] for sc in banded)})." if banded else "."))
    busy = sum(r["flag"] == "interference" for r in runs)
    drift = [r for r in runs if r["flag"] == "host drift"]
    lines += [f"- **Interference**: {busy} of {len(runs)} real runs flagged (other processes on the host, steal "
              f"time, or stalls); **host drift**: {len(drift)} more, whose service time per request was "
              + (", ".join(_pct(r["service_drift"]) for r in drift) or "–") + " off the simulated one.",
              "- **Mean latency error over every run** (the verdict's prediction; flagged runs included; the "
              "summary's excludes them where enough clean runs remain): "
              + ", ".join(f"{sc['name']} {_pct(_all_runs(sc)['latency_mean_ms']['error'])}"
                          f" (p99 {_pct(_all_runs(sc)['latency_p99_ms']['error'])})" for sc in scenarios) + ".", ""]
    return lines


def markdown(results: dict, profiles, figure: str) -> str:
    """The whole report, from `results` (with its ``generated`` record: command, date, minutes), the scenarios'
    `profiles` and the path of the latency-CDF figure relative to the report."""
    scenarios, plan, generated = results["scenarios"], results["plan"], results["generated"]
    setup = plan["setup"]
    session_band, calibrated = session_banded(scenarios), verdict_label(scenarios) == "session"
    runs = [r for sc in scenarios for r in sc["runs"]]
    flagged = sum(r["flag"] == "interference" for r in runs)
    folder = os.path.dirname(figure) or "."
    banner = []
    if flagged > PRELIMINARY_FLAGGED * len(runs):
        banner = [f"> **Preliminary.** The host was busy during {flagged} of {len(runs)} real runs (flagged below): "
                  "the timing figures measure interference as much as the model. Re-run the command on a quiet "
                  "machine.", ""]
    return "\n".join([
        "# Validation: real runs against the simulator", "", *banner,
        f"Generated by `{generated['command']}` on {generated['date']} in {generated['elapsed_s'] / 60:.1f} min. "
        "Raw traces, the measured "
        f"profile and `results.json` are in `{folder}/` beside this report.", "",
        *_setup_section(scenarios, plan, setup, runs),
        *_profiles_section(scenarios, profiles, plan, folder, calibrated),
        *_real_vs_simulated_section(scenarios, profiles, figure, session_band, calibrated),
        *_idle_and_method_sections(scenarios, profiles, session_band, calibrated),
    ]) + "\n"


def _cpu_facts(setup: dict) -> str:
    """The CPU's family, model and PyTorch capability as the runner recorded them (``family 25 model 1, AVX2; ``),
    or nothing for a run that did not (before 2026-12-08) or where /proc/cpuinfo does not say."""
    facts = [f"family {setup['cpu_family']} model {setup['cpu_model']}" if setup.get("cpu_family") else "",
             setup.get("cpu_capability") or ""]
    facts = [f for f in facts if f]
    return f"{', '.join(facts)}; " if facts else ""


def _setup_section(scenarios: list, plan: dict, setup: dict, runs: list) -> list[str]:
    """The report's "Setup": the host, the plan of runs, the ensemble and how errors are counted."""
    return [
        "## Setup", "",
        f"- Host: {setup['processor']} ({_cpu_facts(setup)}{setup['machine']}, "
        f"{runs[0]['host']['cpus'] if runs else '?'} CPUs), "
        f"Python {setup['python']}, torch {setup['torch']}; device `{setup['device']}`, {setup['execution']} "
        f"execution, {setup['threads']} intra-op thread(s), allocator `{setup.get('allocator', 'default')}` "
        f"({_allocator(setup)}). Energy: "
        f"{'measured' if any(r['measured_energy_j'] is not None for r in runs) else 'not measured (no counter on this host)'}.",
        f"- Each scenario: one arrival trace and sample mapping (seed {plan['seed']}), served {plan['repeats']} times "
        f"by the real runner ({plan['requests']} requests per run{_capped(scenarios, plan)}) and simulated by the "
        "Numba engine with "
        f"{plan['seeds']} seeds of the service-time draws (median and 5–95% band"
        + ("; the findings give the medians' Monte Carlo error)." if _mc_line(scenarios) else ")."),
        f"- Ensemble: the logit cache `{_shown(plan['logits'])}`, the trained members "
        f"`{_shown(setup.get('members_path', MEMBERS_PATH))}` and the images they serve "
        f"`{_shown(setup.get('samples_path', SAMPLES_PATH))}`"
        + (" (`simulator/data/fmnist_cpu.md`)." if _shipped_ensemble(plan, setup) else "."),
        "- Error = real (mean over the runs used) / simulated (median over seeds) − 1; spread = (max − min) / mean "
        "over the real runs used. Runs flagged for interference (other processes' CPU time, the hypervisor's steal "
        "time or stalls above the thresholds) are always left out (the timing verdict is undecided where fewer than "
        "two remain); of the others, runs flagged for host drift (their service time per request more than 10% off "
        f"{_drift_reference(scenarios)}) are left out when at least half "
        "remain; the findings give the errors over every run too.",
        "",
    ]


def _profiles_section(scenarios: list, profiles, plan: dict, folder: str, calibrated: bool) -> list[str]:
    """The report's "Profiles measured by the runner": the profiles and what the host pays besides them
    (`calibrated`: the verdict is the session's prediction)."""
    return [
        "## Profiles measured by the runner", "",
        f"One profile per scenario (`{folder}/profile-<scenario>.json`), all measured before the real runs, "
        "which then come in rounds interleaved over the scenarios (each round serves every scenario once), so that "
        "each scenario's repeats spread over the whole session: the shared host's speed drifts over minutes. "
        "Latency = forward pass + copy to the host, and each model's "
        "decision overhead (the host's decision after its stages), from a closed-loop run through the worker "
        f"({plan['profiling_requests']} requests, every stage), de-modulated by the host's speed process fitted on "
        "the same run (below):", "",
        *_profile_table(profiles), "",
        *_screening_lines(profiles),
        "What the host pays besides: the speed process (`speed_noise`: the host's speed drifts in phases of tens "
        "of milliseconds; sigma is the standard deviation of its log, fitted on the open-loop profiling runs' "
        "autocovariance of stage times, beside the stage times' whole log standard deviation; and its slow phases, "
        "20 ms windows of those runs more than 1.3x slower than their median window: how much slower, the share of "
        "the time, their mean length; `simulator/runner/speed_fit.py`); "
        "and, from open-loop runs at 50% and 80% offered load (every stage, with bursts of "
        "simultaneous requests spread over them) and the closed loop, the dispatch overhead (the worker's time per "
        "request besides its stages, over the requests that waited in the queue; and, from the open-loop runs, over "
        "those that arrived at an idle worker, from their arrival: what waking the worker costs) and the wake-up "
        "(the first "
        "stage after that much idle time takes factor times as long, stage j of the busy period "
        "1 + (factor − 1)·decay^j; fitted on the early stages of busy periods against warm stages nearby; "
        "`simulator/runner/idle.py`); and the serving factor, how much slower the worker serves open-loop "
        "arrivals than all that predicts: the open-loop runs' busy time per request that waited in the queue over "
        "the same runs simulated on the profile (median of 5 seeds; the simulation makes the same selection of "
        "slow phases as the real run, so the ratio is free of it; `simulator/runner/serving.py`). It scales the "
        "stage latencies and decision overheads of the open-loop simulations (closed loops: 1). With a "
        "dispatcher thread (`thread-50`) it is mostly what the thread costs; with poll release a queued request is "
        "served as in the closed loop, so there it is mostly the host's drift between the closed-loop profiling "
        "run and the open-loop ones, which come later, closer to the real runs."
        + (" Closed-loop bursts right before, between and after the open-loop runs measure the host's speed level "
           "during each, and the factor fitted at those levels (what serving costs beyond the drift) is shown "
           "beside it" + (_LEVELS_USED if calibrated else _LEVELS_UNUSED)
           if _has_levels(profiles) else "")
        + (" The member idle (a stage whose member last ran that long ago takes factor times its profiled "
           "latency, whatever the worker did meanwhile) is fitted on the same open-loop runs, from the third stage "
           "of a busy period on, before the wake-up, which is fitted with it taken out." if _has_member(profiles)
           else "")
        + (_SERVING_PATTERN if _has_pattern(profiles) else ""), "",
        *_host_costs_table(profiles), "",
    ]


def _real_vs_simulated_section(scenarios: list, profiles, figure: str, session_band: bool,
                               calibrated: bool) -> list[str]:
    """The report's "Real against simulated": the verdicts, the band near saturation, where the error comes from and
    every real run (`session_band`, `calibrated`: as `markdown` finds them)."""
    return [
        "## Real against simulated", "",
        _predictions_prose(session_band, calibrated) + _long_phases_note(scenarios) +
        f"Targets at loads ≤ {TARGET_LOAD:.0%}: mean within {TARGET_MEAN:.0%} and p99 within {TARGET_P99:.0%}, or "
        "within the real-vs-real spread (the band is the check above 80% only: it carries the host's speed-level "
        "uncertainty, wide on this host; a verdict met only thanks to the spread says so); stages run and "
        "predictions identical for timing-free (threshold) policies.", "",
        *_summary_table(scenarios), "",
        *_energy_lines(scenarios),
        "### Near saturation: the simulated band over seeds", "",
        *_band_prose(session_band, calibrated, _pooled(scenarios), _own_run_factor(scenarios)), "",
        *_band_table(scenarios), "",
        f"![latency CDFs]({figure})", "",
        "### Where the error comes from", "",
        "Per real run: its mean stage time over the profile's (stage-time factor, averaged over the stages; 1.00 = "
        "as profiled) and its mean decision time over the profile's, both over the requests that waited in the "
        "queue (the wake-up table accounts for the others; at low load these still carry part of the warm-up it "
        "charges, so the calibration over-corrects a little); the error left when the simulation uses the "
        "run's own speed (speed-calibrated, median of the seeds), and when a FIFO server replays the run's own "
        "service times (`simulator/runner/calibrate.py`).", "",
        *_diagnostics_table(scenarios), "",
        *_long_phases_section(scenarios, profiles),
        "### Every real run, and what the host did meanwhile", "",
        *_runs_prose(scenarios), *_runs_table(scenarios), "",
    ]


def _idle_and_method_sections(scenarios: list, profiles, session_band: bool, calibrated: bool) -> list[str]:
    """The report's "First calls after idle", the member idle, the findings and the method (`session_band`,
    `calibrated`: as `markdown` finds them)."""
    return [
        "## First calls after idle", "",
        "Mean compute + decision time (ms) of each request's first stage, by the worker's idle time before the "
        "request (from the real runs):", "",
        *_idle_table(scenarios), "",
        *member_idle_section(scenarios, profiles),
        *findings(scenarios, profiles),
        *METHOD, *([MEMBER_IDLE_BULLET] if _has_member(profiles) else []), *METHOD_MIDDLE,
        _not_modelled(session_band, calibrated), _interference_bullet(scenarios),
    ]


#: What the report says of the serving factor at the bursts' levels, where the verdict's prediction uses it (at the
#: session's speed level) and where it does not (reports before 2026-12-06's run Y).
_LEVELS_USED = ("; the profile's prediction uses the factor with the drift, the verdict's (at the host's speed "
                "level over the session, below) the one at the levels, as the drift is then measured apart.")
_LEVELS_UNUSED = ("; it is not used: in the one run that used it (Q, `validation-history.md`) the factor with the "
                  "drift predicted most scenarios better.")


def _predictions_prose(session_band: bool, calibrated: bool) -> str:
    """The paragraph that names the simulations of each scenario and the one the verdict uses."""
    bare_steady = ("**bare** (the closed-loop latencies and one decision overhead, as the simulator predicted before "
                   "the host's other costs were measured); **steady**, the profile without its speed process and "
                   "level uncertainty (stage times drawn independently); **profile**, the profile as measured, with "
                   "those costs, which the engines model (`semantics.md`)")
    fresh = ("fresh (per real run, the profile scaled by the host's speed measured by a short closed-loop burst "
             "right before that run; errors per run, then averaged). Earlier reports scaled the profile by a "
             "load-speed curve, a stand-in for the wake-up; the wake-up table replaces it. ")
    if calibrated:
        return ("Five simulations of each scenario. Three are predictive (from measurements made before the real "
                f"runs): {bare_steady}. **session**, the one **the verdict uses**, is that profile at the host's "
                "speed level over the session: the geometric mean of the levels measured by the closed-loop bursts "
                "of the same stage set right before each of the scenario's real runs, times what open-loop serving "
                "costs beyond the host's drift (below). It is the simulator given the device's speed while the runs "
                "were served: on this shared host the speed of the same forward pass drifts by tens of percent over "
                "the minutes between the profiling and the runs, which no model of the served system predicts "
                "(`validation-history.md`, runs X and Y). The fifth is " + fresh)
    return ("Four simulations of each scenario, their medians all predictive (from measurements made before the real "
            + ("runs; the verdict's band also uses the bursts spread over the session, below): " if session_band
               else "runs): ") + bare_steady + ": **the verdict uses this one**; and " + fresh)


def _not_modelled(session_band: bool, calibrated: bool = False) -> str:
    """The method's bullet on the host's drift over minutes, with what the band's level uncertainty was measured
    on: the session's bursts (since 2026-12-04) or the profiling runs; `calibrated`: the verdict's prediction is
    at the session's speed level."""
    level = ("a level uncertainty measured over the session by the bursts before the runs" if session_band
             else "a level uncertainty measured between the profiling runs, seconds apart")
    head = ("- **Not modelled by the engines** (see the diagnostics): the host's speed drifting over minutes (between "
            "the profile and the runs; the runs are interleaved over the scenarios, so that the drift moves every "
            "scenario alike and shows in the spread between repeats). ")
    if calibrated:
        return head + ("The verdict's prediction is given it as a measurement, the session's speed level from the "
                       "bursts before the runs; the profile's prediction leaves it out, its band carries it only as "
                       f"its size, {level}.")
    return head + f"The median prediction leaves it out; the band carries it only as its size, {level}."


#: The method section up to the wake-up, in parts around the member-idle bullet and `_not_modelled`.
METHOD = [
    "## How the model of time maps onto the real run", "",
    "- **Stage latency** = host time of the member's forward pass plus the copy of its output to the host, profiled "
    "in closed-loop runs through the same worker code (so stages interleave with other members and decisions as "
    "in service); the engine draws from these samples (empirical distribution), which carries the service-time "
    "variance.",
    "- **Decision overhead** = the measured mean host time from the end of that copy to the end of the decision "
    "(softmax, combine, confidence, the compiled policy, the worker's records), per model "
    "(`models.<name>.decision_overhead_ms`), added to every stage of that model: the host decides more slowly "
    "after a heavy model.",
    "- **Dispatch overhead** = the worker's time per request besides its stages (its loop, the records, taking "
    "the next request), measured over requests that waited in the queue; the profile's `dispatch_overhead_ms`, "
    "added to a request's first stage. A request that arrives at an idle worker pays `idle_dispatch_ms` instead, "
    "measured from its arrival over such requests of the open-loop profiling runs: with a dispatcher thread the "
    "worker, blocked on the queue, is woken by the put, where a polling worker starts within microseconds (the "
    "host-costs table gives both; \"as queued\" in profiles measured before 2026-12-06, which predate it). "
    "With a dispatcher thread every arrival while the worker serves costs it `release_cost_ms` (the thread wakes "
    "in the worker's process to release the request): a stage run takes that much longer per request released "
    "while it runs, measured on the open-loop profiling runs' stage runs with one release against those with none "
    "(0 with poll release, which has no dispatcher; 0 too in profiles measured before it).",
    "- **Wake-up after idle** = the profile's `wakeup` table: the first stage of a request that found the worker "
    "idle for g ms takes factor(g) times as long (piecewise linear in g), and the slowdown fades over the busy "
    "period: its stage j takes 1 + (factor(g) − 1)·decay^j times as long (`wakeup.decay`). Both are fitted on "
    "the early stages of busy periods against warm stages measured nearby in the same run (so the host's drift "
    "cancels).",
]
#: The method's bullet on the member-idle table, in reports whose profiles have one (since 2026-12-06).
#: What the report says of the member idle measured in the scenario's own serving pattern (since run AM).
_SERVING_PATTERN = (" Since run AM the profile's member-idle table comes from a third open-loop run, of the scenario "
                    "itself (its policy, members and arrivals, another seed), where that gives points: a threshold "
                    "cascade runs its later members only for hard inputs, so a member comes back after the worker "
                    "served other requests rather than after an idle gap as in the every-stage runs, and slows "
                    "less; the every-stage runs' table still sets the wake-up and the serving factor, whose runs it "
                    "describes (`simulator/runner/profiling.py`, `with_serving_pattern`). Since run AP that run is "
                    "as long as a real run and, in both tables, each stage run's time is first divided by its 250 ms "
                    "window's level (`simulator/runner/speed_fit.py`, `stage_levels`); since run AR it is kept as "
                    "`<scenario>/own-run.npz`.")


def _has_pattern(profiles) -> bool:
    """Whether a profile's member-idle table comes from the scenario's own run (`with_serving_pattern`)."""
    return any("every_stage_points" in p.provenance.get("member_idle_measured", {}) for p in profiles)


MEMBER_IDLE_BULLET = (
    "- **Member idle** = the profile's `member_idle` table: a stage whose member last ran t ms ago takes factor(t) "
    "times its profiled latency, whatever the worker did meanwhile (the member's weights and objects went cold "
    "while other members ran: in a flexible ensemble the later members run only for hard inputs, so at 50% load "
    "they often come back after 5-20 ms and ran 10-15% slower in the real runs, which the wake-up, counted from "
    "the worker's idle time, misses). Fitted on the same runs from the third stage of a busy period on (the "
    "wake-up faded), before the wake-up, which is then fitted with it taken out.")
#: The method section from the copy to `_not_modelled`.
METHOD_MIDDLE = [
    "- **Device→host copy**: inside the stage latency (a no-op on the CPU; `.cpu()` synchronises on CUDA).",
    "- **Launch cost**: eager PyTorch's per-operator host cost is inside the measured stage latency; CUDA graphs "
    "(`--execution graph`) replace it by one graph launch.",
    "- **Arrivals**: `poll` release puts the arrival process in the worker's thread (no thread wake-up is measured); "
    "an idle worker sleeps until 0.5 ms before the next arrival, then polls the clock (`spin-50`: it polls the whole "
    "idle time). `thread` release (`thread-50`) adds a dispatcher thread: a sleeping worker is woken by it, and "
    "while the worker serves, the dispatcher wakes for every arrival.",
    "- **Serving factor** = how much slower the worker serves open-loop arrivals than the closed-loop profile "
    "and the host costs above predict (with a dispatcher thread, stages deep inside busy periods still run "
    "slower than in the closed loop, where the dispatcher never runs). Measured on the open-loop profiling runs "
    "against their own simulation (`simulator/runner/serving.py`) and applied as a factor on the scenario's "
    "stage latencies and decision overheads in open loops (with poll release it is mostly the host's drift "
    "between the profiling runs: the open-loop runs are the later and longer measurement); closed loops keep the "
    "profile as measured. The engines model it "
    "as that scaling of the profile, not as a mechanism; the dispatcher thread's own mechanisms, the wait of a "
    "request that finds the worker idle and the cost of each release while it serves, are modelled apart "
    "(`idle_dispatch_ms`, `release_cost_ms`, above), and the factor is fitted after them.",
    "- **Fresh**: the shared host's speed drifts by tens of percent over minutes (the profiles themselves differ "
    "from one regeneration to the next), so each real run is preceded by a short closed-loop burst of its stage set "
    "whose speed against the profile scales the simulation of that run. A burst of a "
    "fraction of a second predicts a run of seconds poorly on this host, so the verdict does not use it.",
    "- **Host speed process** = the profile's `speed_noise`: within a run the host is faster or slower in phases "
    "of tens of milliseconds (other tenants of the VM, clocks), which independent draws of the stage times miss "
    "and which near saturation lengthens queues (a slow phase raises the load for a while). The engines multiply "
    "every stage by a factor that follows a seeded Ornstein-Uhlenbeck process on its log (`simulator/speed.py`), "
    "times a two-state chain of slow phases (a share of the time in which every stage is `slow_factor` times "
    "as long, for `slow_ms` on average: hundreds of milliseconds at 1.5-2x on a host whose idle vCPU comes back "
    "to a shared core; normalised, so the mean stage time is the profile's); each seed of the band draws "
    "another trace of both, so the band covers slow and fast phases, and with the level uncertainty "
    "(`level_sigma`) another speed level for the whole run.",
]
def _interference_bullet(scenarios) -> str:
    """The method's last bullet: how runs are flagged for interference and for host drift."""
    return ("- **Interference**: each run records the CPU time other processes used (from `/proc/stat`), the "
            "hypervisor's steal time, preemptions, and stalls (stages over 5x their run's median); a run above the "
            "thresholds is flagged for interference and never used (its spread is the host's, not the served "
            "system's). On this shared VM the neighbours often leave no trace in those counters, but they change "
            "the speed of the same forward pass by up to ~35% from one minute to the next; so a run whose mean "
            f"service time per request differs by more than 10% from {_drift_reference(scenarios)} is flagged as "
            "host drift, and left out of the errors when at least half of the runs without interference have no "
            "drift. The errors over every run are in the findings.")


def _drift_reference(scenarios) -> str:
    """What a run's service time is compared with for the host-drift flag: the verdict's simulation at the
    session's speed level (results since run Z, which record ``drift_reference``), else the profile's."""
    if scenarios and all(sc.get("drift_reference") == "session" for sc in scenarios):
        return ("the verdict's simulation (at the host's speed level over the session: the host ran that run at "
                "another speed than over the rest of the session)")
    return "the profile's simulation (the host ran at another speed than while profiling)"


def _shown(path) -> str:
    """A file's path as the report names it: from the project's folder where it is inside, else as given. A path
    recorded in another checkout of the project (results.json records absolute paths) that ends in a shipped data
    file, ``.../simulator/data/NAME``, is named as that file: the report reads the same wherever it is rendered."""
    resolved = Path(path).resolve()
    if resolved.is_relative_to(PROJECT):
        return resolved.relative_to(PROJECT).as_posix()
    shipped = Path(*resolved.parts[-3:])
    if resolved.parts[-3:-1] == ("simulator", "data") and (PROJECT / shipped).is_file():
        return shipped.as_posix()
    return str(path)


def _shipped_ensemble(plan: dict, setup: dict) -> bool:
    """Whether a run served the shipped trained ensemble (its cache, members and images), which its note describes."""
    shipped = (CACHE_PATH, MEMBERS_PATH, SAMPLES_PATH)
    given = (plan["logits"], setup.get("members_path", MEMBERS_PATH), setup.get("samples_path", SAMPLES_PATH))
    return all(_shown(g) == _shown(s) for g, s in zip(given, shipped))


def _capped(scenarios: list, plan: dict) -> str:
    """The scenarios served fewer requests per run than the plan's (a costly model's cap), as ``; NAME: N``."""
    fewer = [f"{sc['name']}: {sc['requests']}" for sc in scenarios if sc.get("requests", plan["requests"])
             < plan["requests"]]
    return "".join(f"; {text}" for text in fewer)
