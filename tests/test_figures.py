"""The figure scripts of experiments/ run from scratch and write what they plot (on a small synthetic profile)."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def fmnist_profile(tmp_path_factory):
    """A derived profile with constant costs for the three Fashion-MNIST models (small, medium, large)."""
    models = {f"fmnist-cnn-w{w}": {"batches": {"1": {"latency_ms": {"samples": [ms]}, "energy_j": ms / 100}}}
              for w, ms in ((8, 0.25), (32, 1.0), (64, 3.0))}
    profile = {"schema_version": 1, "name": "tiny-cpu", "device": {"name": "test", "kind": "cpu"},
               "idle_power_w": 5.0, "decision_overhead_ms": 0.0,
               "provenance": {"source": "derived", "method": "constant costs for a test"}, "models": models}
    path = tmp_path_factory.mktemp("profiles") / "tiny-cpu.json"
    path.write_text(json.dumps(profile))
    return str(path)


def _run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "experiments" / script), *args], capture_output=True,
                          text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_normal_ensembles_figure(tmp_path, fmnist_profile):
    _run("fig1_normal_ensembles.py", "--profile", fmnist_profile, "--out", str(tmp_path))
    rows = _rows(tmp_path / "fig1-normal-ensembles-tiny-cpu.csv")
    assert (tmp_path / "fig1-normal-ensembles-tiny-cpu.png").stat().st_size > 0
    assert [float(r["latency_ms"]) for r in rows] == pytest.approx([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert float(rows[-1]["accuracy"]) == pytest.approx(0.9251)     # the mean of members 0-5 on the test set


def test_heterogeneous_cascade_figure_skips_profiles_without_the_models(tmp_path, fmnist_profile):
    out = _run("fig4_heterogeneous_cascade.py", "--profile", fmnist_profile, "--profile", "h100",
               "--out", str(tmp_path))
    assert "skipping profile h100" in out
    rows = _rows(tmp_path / "fig4-heterogeneous-cascade-tiny-cpu.csv")
    cascade = [r for r in rows if r["series"] == "cascade 6->0->7, last"]
    assert min(float(r["test_latency_ms"]) for r in cascade) == pytest.approx(0.25)   # member 6 alone
    assert all(float(r["test_latency_ms"]) <= 0.25 + 1.0 + 3.0 for r in cascade)
    assert not list(tmp_path.glob("*h100*"))


def test_deadline_study_figure(tmp_path, fmnist_profile):
    _run("fig5_deadline_study.py", "--profile", fmnist_profile, "--out", str(tmp_path))
    rows = _rows(tmp_path / "fig5-deadline-study.csv")
    assert (tmp_path / "fig5-deadline-study.png").stat().st_size > 0
    assert len(rows) == 11 and {r["profile"] for r in rows} == {"tiny-cpu"}
    misses = [float(r["deadline_miss_rate"]) for r in rows]
    assert misses[0] == 1.0 and misses == sorted(misses, reverse=True)  # 0.5 ms < every stage; longer: fewer misses
    from simulator import simulate
    unbounded = simulate(profile=(fmnist_profile,), requests=20_000).summary.accuracy
    assert float(rows[-1]["accuracy"]) == pytest.approx(unbounded)     # 50 ms: as without a deadline


def _write_run(path: Path, stage_ms: list, queue: list) -> None:
    n = len(stage_ms)
    np.savez_compressed(path, stage_request=np.arange(n, dtype=np.int32), queue_len=np.array(queue, dtype=np.int32),
                        stage_compute_ms=np.array(stage_ms, dtype=np.float32) * 0.7,
                        stage_decision_ms=np.array(stage_ms, dtype=np.float32) * 0.3)


def test_run_speed_levels_tells_a_level_per_run_from_a_cost_of_the_backlog(tmp_path):
    level = tmp_path / "levels"      # each run at its own constant speed, whatever the queue
    level.mkdir()
    for i, ms in enumerate((0.1, 0.15)):
        _write_run(level / f"real-{i}.npz", [ms] * 100, [0] * 50 + [30] * 50)
    backlog = tmp_path / "backlog"   # one speed, but stages of long-queue requests take twice as long
    backlog.mkdir()
    _write_run(backlog / "real-0.npz", [0.1] * 50 + [0.2] * 50, [0] * 50 + [30] * 50)
    out = _run("run_speed_levels.py", str(tmp_path))
    rows = {tuple(c.strip() for c in line.split("|")[1:3]): line for line in out.splitlines() if "| real" not in line}
    assert "| 0% | 0.100 / 0.100 |" in rows["levels", "0"] and "| 0% | 0.150 / 0.150 |" in rows["levels", "1"]
    assert "0.100 / 0.200" in rows["backlog", "0"]
    assert "between the runs of a scenario, median 50%" in out
    done = subprocess.run([sys.executable, str(ROOT / "experiments" / "run_speed_levels.py"), str(tmp_path),
                           "--scenarios", "nope"], capture_output=True, text=True)
    assert done.returncode != 0 and "no raw traces for nope" in done.stderr


def test_session_band_recomputes_the_committed_band_with_both_level_uncertainties():
    out = _run("session_band.py", "docs/validation-cuda", "--scenarios", "closed-4", "--seeds", "3")
    head = out.splitlines()[0]
    assert "between the profiling runs 0.082" in head and "over the session's bursts" in head
    sigma = float(head.split("over the session's bursts ")[1].split(";")[0])
    assert 0 < sigma < 1
    row = next(line for line in out.splitlines() if line.startswith("| closed-4 |"))
    assert row.count(" of 2") == 4                              # both runs used, four bands
    assert "real runs used inside the band" in out
    done = subprocess.run([sys.executable, str(ROOT / "experiments" / "session_band.py"), "docs/validation-cuda",
                           "--scenarios", "nope"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "no scenario nope" in done.stderr


def test_serving_levels_resimulates_with_both_factors_and_refuses_a_report_without_levels():
    out = _run("serving_levels.py", "docs/validation", "--scenarios", "open-50", "--seeds", "3")
    facts = json.loads((ROOT / "docs/validation/profile-open-50.json").read_text())["provenance"][
        "serving_factor_measured"]
    row = next(line for line in out.splitlines() if line.startswith("| open-50 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2].startswith(f"{facts['factor']:.3f}: ") and cells[3].startswith(f"{facts['factor_at_levels']:.3f}: ")
    assert cells[4].startswith("1.000: ") and all(("(met)" in c) != ("(missed)" in c) for c in cells[2:])
    assert "timing targets met at loads <= 80%:" in out
    done = subprocess.run([sys.executable, str(ROOT / "experiments" / "serving_levels.py"), "docs/validation-cuda",
                           "--scenarios", "open-50"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "has no factor at the bursts' levels" in done.stderr
    done = subprocess.run([sys.executable, str(ROOT / "experiments" / "serving_levels.py"), "docs/validation",
                           "--scenarios", "closed-4"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "no open-loop scenario closed-4" in done.stderr


def test_own_run_factor_refits_the_serving_factor_on_the_scenarios_own_run():
    out = _run("own_run_factor.py", "docs/validation", "--scenarios", "thread-50", "--seeds", "3")
    results = json.loads((ROOT / "docs/validation/results.json").read_text())
    session = next(sc for sc in results["scenarios"] if sc["name"] == "thread-50")["session"]
    row = next(line for line in out.splitlines() if line.startswith("| thread-50 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    recorded = json.loads((ROOT / "docs/validation/profile-thread-50.json").read_text())["provenance"][
        "serving_factor_measured"]["own_run"]["factor_at_level"]         # fitted while profiling (since run AX)
    assert cells[2] == f"{session['serving_factor']:.3f}" == f"{recorded:.3f}" == cells[3]
    assert cells[4].startswith(f"{session['speed'] * session['serving_factor']:.3f}: ")
    assert cells[5].startswith(f"{session['speed'] * recorded:.3f}: ")
    assert all(("(met)" in c) != ("(missed)" in c) for c in cells[4:])
    assert "timing targets met" in out.splitlines()[-1]
    done = subprocess.run([sys.executable, str(ROOT / "experiments" / "own_run_factor.py"), "docs/validation-cuda",
                           "--scenarios", "open-50"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "open-50 has no own-run.npz" in done.stderr


def test_run_speed_process_fits_each_committed_run_as_the_report_records_it():
    """Per real run of the committed report: the run's own process as results.json records it (since run AY), the
    real runs' slow phases pooled over the scenario's runs, and three calibrated errors per metric."""
    out = _run("run_speed_process.py", "docs/validation", "--scenarios", "spin-50", "--seeds", "3")
    runs = next(sc for sc in json.loads((ROOT / "docs/validation/results.json").read_text())["scenarios"]
                if sc["name"] == "spin-50")["runs"]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines()
            if line.startswith("| spin-50 |")]
    assert [r[3] for r in rows] == [str(i) for i in range(len(runs))]
    for row, run in zip(rows, runs):
        facts, shown = run["speed_process"], row[4].split(";")[0]
        if facts["sigma"] is None:
            assert shown == "none"
        else:       # the script prints its fit to 3 decimals, results.json holds it to 4: compare the numbers
            sigma, correlation = shown.removesuffix(" ms").split(", ")
            assert abs(float(sigma) - facts["sigma"]) <= 0.00051
            assert abs(float(correlation) - facts["correlation_ms"]) <= 0.51
        # pooled phases = the runs' own, summed: spin-50's runs all have 20 ms windows (a run's window widens
        # where five stage runs take longer, as replay-80's do, and the pool takes one width for all)
        assert row[2].endswith(f"({sum(r['speed_process']['phases'] for r in runs)})")
        assert all(len(cell.split(" / ")) == 3 for cell in row[5:])


def test_verdict_slow_phases_resimulates_the_verdict_and_refuses_bad_phases():
    out = _run("verdict_slow_phases.py", "docs/validation", "--scenarios", "closed-4,spin-50", "--phases",
               "1.4,0.03,50", "--seeds", "3")
    results = {sc["name"]: sc for sc in json.loads((ROOT / "docs/validation/results.json").read_text())["scenarios"]}
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
            for line in out.splitlines() if line.startswith("| closed-4 |") or line.startswith("| spin-50 |")}
    closed = results["closed-4"]["session"]
    assert rows["closed-4"][2].startswith(f"{closed['speed']:.3f}: ") and rows["closed-4"][3].startswith(
        f"{closed['speed']:.3f}: ")                                    # a closed loop: no serving factor to refit
    spin = results["spin-50"]["session"]
    assert rows["spin-50"][2].startswith(f"{spin['speed'] * spin['serving_factor']:.3f}: ")
    assert all(("(met)" in c) != ("(missed)" in c) for r in rows.values() for c in r[2:])
    assert "median absolute p99 error" in out.splitlines()[-1]
    for phases in ("0.9,0.03,50", "1.4,0.03", "1.4,x,50"):
        done = subprocess.run([sys.executable, str(ROOT / "experiments" / "verdict_slow_phases.py"), "docs/validation",
                               "--phases", phases], capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 2 and "give FACTOR,SHARE,MS" in done.stderr and done.stderr.count("\n") == 1


def test_member_idle_compares_the_real_runs_with_the_profiles_table(tmp_path):
    """On the committed report: every bucket's profile factor is the profile's table at that bucket, the real runs'
    ratios come from the raw traces; a folder without them is refused with one line."""
    from simulator.profiles import load_profile
    from simulator.runner.validation import load_raw, save_raw

    out = _run("member_idle.py", "docs/validation", "--scenarios", "open-50,replay-80")
    row = next(line for line in out.splitlines() if line.startswith("| open-50 |"))
    cells = [c.strip() for c in row.strip("|").split("|")][1:]
    table = load_profile(ROOT / "docs/validation/profile-open-50.json").member_idle
    assert len(cells) == 4 and table is not None
    for cell in cells:
        ratio, profile_factor = float(cell.split(" ")[0]), float(cell.split(" / ")[1])
        assert 0.5 < ratio < 2.0 and min(table[1]) - 1e-3 <= profile_factor <= max(table[1]) + 1e-3
    # the kept own run's table, beside the real runs': the profile's own points
    own = {r.split("|")[2].strip(): r.split("|")[3].strip() for r in out.splitlines() if r.startswith("| open-50 | ")
           and r.count("|") == 6}
    points = load_profile(ROOT / "docs/validation/profile-open-50.json").provenance["member_idle_measured"]["points"]
    keys = {f"{p['bucket_ms'][0]:g}-{'inf' if p['bucket_ms'][1] is None else format(p['bucket_ms'][1], 'g')}":
            p["factor"] for p in points if p["bucket_ms"][0] >= 2.0}
    assert keys and set(keys) <= set(own)
    for key, factor in keys.items():
        assert float(own[key]) == pytest.approx(factor, abs=5e-4)
    # the raw traces read back as they were written
    run = load_raw(ROOT / "docs/validation/open-50/real-0.npz")
    save_raw(tmp_path / "again.npz", run)
    again = load_raw(tmp_path / "again.npz")
    np.testing.assert_array_equal(again.stage_times.compute_s, run.stage_times.compute_s)
    np.testing.assert_array_equal(again.requests.finish_s, run.requests.finish_s)
    (tmp_path / "open-50").mkdir()
    for name in ("results.json", "profile-open-50.json"):
        (tmp_path / name).write_bytes((ROOT / "docs/validation" / name).read_bytes())
    done = subprocess.run([sys.executable, str(ROOT / "experiments" / "member_idle.py"), str(tmp_path),
                           "--scenarios", "open-50"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "no raw traces open-50/real-*.npz" in done.stderr


@pytest.mark.parametrize("script, args, message", [
    ("fig1_normal_ensembles.py", ["--profile", "nosuch"], "unknown profile name 'nosuch'"),
    ("fig5_deadline_study.py", ["--profile", "nosuch"], "unknown profile name 'nosuch'"),
    ("fig3_margin_histograms.py", ["--member", "99"], "invalid --member = 99"),
    ("optimizer_tables.py", ["--profile", "nosuch"], "unknown profile name 'nosuch'"),
    ("run_speed_levels.py", ["{out}/missing"], "is not a folder"),
    ("train_fmnist.py", ["--members", "a"], "invalid --members = 'a'"),
    ("train_fmnist.py", ["--samples", "0", "--out", "{out}"], "invalid --samples = 0: must be 1 to 10000"),
    ("train_fmnist.py", ["--samples", "20000", "--out", "{out}"], "invalid --samples = 20000"),
    ("train_fmnist.py", ["--device", "tpu", "--out", "{out}"], "invalid device 'tpu'"),
    ("train_fmnist.py", ["--out", "{afile}/sub"], "invalid --out"),
    ("train_fmnist.py", ["--out", ""], "invalid --out = '': an empty path"),
    ("train_fmnist.py", ["--runner-threads", "0", "--out", "{out}"], "invalid --runner-threads = 0"),
])
def test_experiment_scripts_refuse_bad_input_in_one_line_and_make_nothing(tmp_path, script, args, message):
    out = tmp_path / "out"
    (tmp_path / "afile").write_text("")
    argv = [a.format(out=out, afile=tmp_path / "afile") for a in args] + (["--out", str(out)] if script.startswith(("fig", "opt")) else [])
    done = subprocess.run([sys.executable, str(ROOT / "experiments" / script), *argv], capture_output=True,
                          text=True, cwd=ROOT)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert not out.exists()


def test_session_speed_resimulates_the_four_ways_with_the_bursts_geometric_mean():
    out = _run("session_speed.py", "docs/validation", "--scenarios", "closed-4,open-50", "--seeds", "3")
    results = json.loads((ROOT / "docs/validation/results.json").read_text())
    closed = next(sc for sc in results["scenarios"] if sc["name"] == "closed-4")
    stage_factors = closed["fresh"]["burst_stage_factors"]     # one model: each burst's level, but for decisions
    row = next(line for line in out.splitlines() if line.startswith("| closed-4 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2].startswith("1.000: ")                            # a closed loop has no serving factor
    speed = float(cells[3].split(":")[0])
    assert speed == float(cells[4].split(":")[0]) == float(cells[5].split(":")[0])
    assert min(stage_factors) * 0.9 < speed < max(stage_factors) * 1.1
    assert all(("(met)" in c) != ("(missed)" in c) for c in cells[2:])
    assert "| open-50 |" in out and "timing targets met at loads <= 80%:" in out


def test_dispatcher_cost_counts_releases_during_each_stage_run(monkeypatch):
    """Releases counted at arrival + release lag; the first stage of a request that found the worker idle left out;
    the script's table on the committed report, and a bad scenario refused."""
    import dataclasses
    from types import SimpleNamespace

    from simulator.runner.result import RealRun, StageTimes

    monkeypatch.syspath_prepend(str(ROOT / "experiments"))
    from dispatcher_cost import stage_releases

    ms = 1e-3
    times = StageTimes(request=np.array([0, 0, 1, 1, 2, 2]), stage=np.array([0, 1, 0, 1, 0, 1]),
                       start_s=np.array([0.0, 1.0, 2.0, 3.0, 10.0, 11.0]) * ms, compute_s=np.full(6, 0.9 * ms),
                       decision_s=np.full(6, 0.1 * ms))
    requests = SimpleNamespace(arrival_s=np.array([0.0, 1.95, 10.0]) * ms, finish_s=np.array([2.0, 4.0, 12.0]) * ms)
    real = RealRun(requests=requests, batches=None, summary=None, stage_times=times,
                   release_lag_s=np.array([0.0, 0.1, 0.1]) * ms, host=None, measured_energy_j=None)
    stage, work_ms, during = stage_releases(real)
    np.testing.assert_array_equal(stage, [1, 0, 1, 1])         # requests 0 and 2 found the worker idle
    np.testing.assert_allclose(work_ms, 1.0)
    np.testing.assert_array_equal(during, [0, 1, 0, 0])        # released at 2.05 ms: in request 1's first stage
    poll = dataclasses.replace(real, release_lag_s=None)       # poll release: at the arrival, in request 0's
    np.testing.assert_array_equal(stage_releases(poll)[2], [1, 0, 0, 0])
    out = _run("dispatcher_cost.py", "docs/validation", "--scenarios", "open-50,thread-50")
    assert "| open-50 | poll |" in out and "| thread-50 | thread |" in out
    done = subprocess.run([sys.executable, str(ROOT / "experiments" / "dispatcher_cost.py"), "docs/validation",
                           "--scenarios", "nosuch"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "no scenario nosuch" in done.stderr


def test_slow_windows_sets_the_profiling_runs_beside_the_real_ones():
    """On the committed report (measured since run AJ): both columns filled, the pooled phases, a re-simulation
    (unless the profiling runs had no slow window, which the script says)."""
    out = _run("slow_windows.py", "docs/validation", "--scenarios", "open-50,closed-4", "--simulate", "--seeds", "3")
    rows = [line for line in out.splitlines() if line.startswith("| open-50 |")]
    assert "% (" in rows[0].split("|")[2] and "% (" in rows[0].split("|")[3]
    assert "pooled, profiling runs:" in out and "pooled, real runs:" in out and " phases: factor " in out
    if "nothing to add" not in out:
        assert len(rows) == 2 and rows[1].count("%") == 8   # mean ; p99, median / mean, without and with the phases
        assert rows[1].count("(met)") + rows[1].count("(missed)") == 2 and "timing targets met at loads" in out


def test_figure_scripts_take_their_own_default_profiles_and_all(monkeypatch):
    """Each script's ``--profile`` default is its own (optimizer tables: h100; figure 5: its six devices); 'all' is
    every shipped profile; a figure that no profile changes has no ``--profile``."""
    monkeypatch.syspath_prepend(str(ROOT / "experiments"))
    from figure_common import DEFAULT_PROFILES, parser, profile_names

    from simulator.profiles import shipped_profiles

    assert profile_names(parser("t").parse_args([])) == list(DEFAULT_PROFILES)
    assert profile_names(parser("t", default_profiles=("h100",)).parse_args([])) == ["h100"]
    assert profile_names(parser("t", ("h100",)).parse_args(["--profile", "all"])) == list(shipped_profiles())
    assert profile_names(parser("t", ("h100",)).parse_args(["--profile", "a100"])) == ["a100"]
    with pytest.raises(SystemExit):
        parser("t", default_profiles=None).parse_args(["--profile", "h100"])
