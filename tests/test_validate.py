"""``flexsim validate`` end to end on a few dozen requests (figures are not asserted, only their form and the
decisions), and its bad input (one line, exit 2, nothing written)."""

import json

import numpy as np
import pytest

from simulator.cli import main
from simulator.profiles import load_profile
from simulator.workload import read_trace
from tests.helpers import cli_error

torch = pytest.importorskip("torch")

SMALL = ["--requests", "30", "--repeats", "2", "--seeds", "3", "--profiling-requests", "20"]


def test_validate_writes_the_report_traces_and_figure(tmp_path, capsys):
    out, report = tmp_path / "val", tmp_path / "validation.md"
    args = ["validate", "--scenarios", "open-50,closed-4,cascade-80", "--out", str(out), "--report", str(report)]
    assert main([*args, *SMALL]) == 0
    printed = capsys.readouterr().out
    assert "decisions identical" in printed and "DECISIONS DIFFER" not in printed
    assert printed.count(" p50 ") == 3      # mean, p50 and p99 real against simulated, per scenario
    results = json.loads((out / "results.json").read_text())
    assert [sc["name"] for sc in results["scenarios"]] == ["open-50", "closed-4", "cascade-80"]
    for sc in results["scenarios"]:
        assert len(sc["runs"]) == 2
        assert all(r["stages_equal"] == 1.0 and r["predictions_equal"] == 1.0 for r in sc["runs"])
        band = sc["sim"]["band"]["latency_p99_ms"]
        assert band[0] <= sc["latency_p99_ms"]["sim"] <= band[1]
        assert np.isfinite(sc["latency_mean_ms"]["error"]) and sc["latency_mean_ms"]["spread"] >= 0
    # written beside --out and moved in at the end: the paths recorded are --out's, nothing staged is left
    assert results["profiles"][0] == str(out / "profile-open-50.json")
    assert results["scenarios"][0]["arrivals"] == f"trace:{out / 'open-50' / 'trace.csv'}"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    # the scenario's own profiling run is kept, and its member-idle table is the profile's
    from simulator.runner.idle import member_idle_table
    from simulator.runner.validation import load_raw

    own_run = load_raw(out / "cascade-80" / "own-run.npz")
    assert own_run.requests.arrival_s.size == 30                        # as long as a real run
    measured = load_profile(out / "profile-cascade-80.json").provenance["member_idle_measured"]
    own = member_idle_table([own_run])
    if own:
        assert [p["factor"] for p in own] == pytest.approx([p["factor"] for p in measured["points"]], rel=1e-9)
    else:                                                               # too short here: the every-stage table
        assert measured["serving_pattern"].startswith("no point in the scenario's own run")
    trace = read_trace(out / "open-50" / "trace.csv")
    assert len(trace.arrival_s) == 30 and trace.sample is not None
    with np.load(out / "open-50" / "real-1.npz") as raw:
        assert raw["finish_s"].shape == (30,) and raw["stage"].shape == raw["stage_compute_ms"].shape
    text = report.read_text()
    assert "| open-50 |" in text and "| cascade-80 |" in text and "latency-cdf.png" in text
    from simulator.profiler.environment import cpuinfo_field            # the host's CPU, as far as Linux says

    family, host = cpuinfo_field("cpu family"), next(ln for ln in text.splitlines() if ln.startswith("- Host: "))
    assert (f"family {family} model {cpuinfo_field('model')}" in host) if family else "family" not in host
    assert "| p50 ms real / sim (error) |" in text and "| run | mean ms | p50 ms | p99 ms |" in text
    assert "flexsim validate --out" in text
    assert (out / "latency-cdf.png").stat().st_size > 10_000
    assert sorted(p.name for p in out.glob("profile-*.json")) == ["profile-cascade-80.json", "profile-closed-4.json",
                                                                  "profile-open-50.json"]
    profile = load_profile(out / "profile-cascade-80.json")
    assert set(profile.models) == {"fmnist-cnn-w8", "fmnist-cnn-w16", "fmnist-cnn-w32"}
    assert all(m.decision_overhead_ms > 0 for m in profile.models.values())
    assert profile.dispatch_overhead_ms >= 0 and profile.provenance["dispatch_overhead_measured"]["n"] > 0
    points = profile.provenance["wakeup_measured"]["points"]
    assert (profile.wakeup is None) == (points == [])          # too few woken requests in so short a run is fine
    member = profile.provenance["member_idle_measured"]
    assert (profile.member_idle is None) == (member["points"] == []) and "method" in member
    assert all(len(sc["member_idle"]["buckets"]) == 4 for sc in results["scenarios"])
    assert "## Members that idled" in text and "member idle: ms since the member last ran" in text
    assert "load_speed" not in profile.provenance
    # every profiling run screened for interference, and the report says how
    screened = profile.provenance["profiling_interference"]
    assert {a["run"] for a in screened} == {"closed loop", "open loop at load 0.5", "open loop at load 0.8",
                                            "the scenario's own run"}
    # the member idle from the scenario's own run where it gives points, else the every-stage runs'
    for name in ("open-50", "closed-4", "cascade-80"):
        member = load_profile(out / f"profile-{name}.json").provenance["member_idle_measured"]
        assert ("every_stage_points" in member) != ("serving_pattern" in member)
    assert all(isinstance(sc["profile_disturbed"], list) for sc in results["scenarios"])
    assert "The profiling runs are screened for interference as the real runs are" in text
    # the slower phases of the seconds scale: recorded for the profiling and the real runs, set side by side
    windows = profile.provenance["window_levels_measured"]
    assert set(windows["levels"]) == {a["run"] for a in screened} and windows["window_ms"] == 250.0
    assert all(isinstance(r["window_levels"], list) for sc in results["scenarios"] for r in sc["runs"])
    assert all("long_phases" in sc["session"] for sc in results["scenarios"])     # too few in so short a run
    assert "### Slower phases of the seconds scale" in text and "| open-50 | " in text.split("seconds scale")[-1]
    # each real run's own speed process and slow phases, in results.json and the per-run table
    speeds = [r["speed_process"] for sc in results["scenarios"] for r in sc["runs"]]
    assert all(s["phases"] >= 0 and 0.0 <= s["slow_share"] <= 1.0 and s["window_ms"] >= 20.0 for s in speeds)
    assert "speed process: sigma, correlation; slow windows (phases) | flagged |" in text
    from simulator.runner.report import _speed_cell

    first = results["scenarios"][0]["runs"][0]
    row = next(line for line in text.splitlines() if line.startswith(f"| open-50 | 0 | {first['latency_mean_ms']:.3f} |"))
    assert row.endswith(f"| {_speed_cell(first['speed_process'])} | {first['flag'] or 'no'} |")
    noise = next(line for line in text.splitlines() if line.startswith("- **Host noise during the runs**"))
    sigmas = sorted((r["speed_process"]["sigma"] or 0.0) for r in results["scenarios"][0]["runs"])
    assert f"open-50 {(sigmas[0] + sigmas[1]) / 2:.3f} (" in noise         # the median of the two runs' sigmas
    # a closed loop of 20 requests is too short to fit its speed process: said so, samples left as measured
    assert "reason" in profile.provenance["samples_demodulated_by"]
    assert (profile.speed_noise is None) == ("reason" in profile.provenance["speed_noise_measured"])
    bare, fresh = results["scenarios"][0]["bare"], results["scenarios"][0]["fresh"]
    assert set(bare["sim"]["band"]) >= {"latency_mean_ms", "latency_p99_ms"}
    assert np.isfinite(results["scenarios"][0]["steady"]["latency_mean_ms"]["error"])
    assert "load_aware" not in results["scenarios"][0]
    assert len(fresh["burst_stage_factors"]) == 2 and np.isfinite(fresh["latency_p99_ms"]["error"])
    assert "the one **the verdict uses**" in text and "dispatch ms / request" in text and "serving factor" in text
    assert "sim: bare / steady / profile / session / fresh" in text
    serving = profile.provenance["serving_factor_measured"]
    assert serving["factor"] > 0 and len(serving["real_ms"]) == 2
    assert len(serving["burst_levels"]) == 3 and len(serving["levels"]) == 2 and min(serving["levels"]) > 0
    assert serving["factor_at_levels"] > 0 and "at the bursts' levels" in text
    open50, closed4 = results["scenarios"][0], results["scenarios"][1]
    serving_open50 = load_profile(out / "profile-open-50.json").provenance["serving_factor_measured"]
    assert open50["serving_factor"] == serving_open50["factor"]
    assert closed4["serving_factor"] == 1.0
    assert all(sc["level_sigma"] >= 0 for sc in results["scenarios"])
    assert len({sc["level_sigma"] for sc in results["scenarios"]}) == 1   # pooled over the session's bursts
    assert len({sc["level_sigma_profiling"] for sc in results["scenarios"]}) == 1   # ... and profiles
    assert "level uncertainty: profiling runs / session / around the session level (the band's)" in text
    # the verdict's prediction: the profile at the session's speed level (the bursts before the runs), times what
    # open-loop serving costs beyond the drift (closed loops: 1)
    sessions = [sc["session"] for sc in results["scenarios"]]
    assert all(s["speed"] > 0 and s["latency_mean_ms"]["sim"] > 0 for s in sessions)
    assert all(s["speed"] == pytest.approx(np.exp(np.mean(np.log(s["burst_levels"])))) for s in sessions)
    assert all(s["sim"]["band"]["latency_mean_ms"][0] <= s["latency_mean_ms"]["sim"] <= s["sim"]["band"][
        "latency_mean_ms"][1] for s in sessions)
    # ... the scenario's own profiling run's, fitted at the level of the burst right before it
    own_run = serving_open50["own_run"]
    assert own_run["level"] == serving_open50["burst_levels"][-1] and own_run["queued_requests"] >= 0
    assert open50["session"]["serving_factor"] == own_run["factor_at_level"] > 0
    assert open50["session"]["serving_factor_source"] == "own run"
    assert open50["session"]["serving_factor_own"] == serving_open50["factor_at_levels"]   # the every-stage runs'
    assert closed4["session"]["serving_factor"] == 1.0
    assert "that serving factor is the scenario's own profiling run's" in text and "(own run; every-stage runs" in text
    assert len({s["level_sigma"] for s in sessions}) == 1
    # each run's host drift is taken against the verdict's simulation, and its errors are given over every run too
    assert all(sc["drift_reference"] == "session" and "all_runs" in sc["session"] for sc in results["scenarios"])
    assert "10% off the verdict's simulation (at the host's speed level over the session" in text
    # interleaved rounds: every scenario's first run comes before any scenario's second
    starts = [[r["session_s"] for r in sc["runs"]] for sc in results["scenarios"]]
    assert max(s[0] for s in starts) < min(s[1] for s in starts)
    assert results["plan"]["setup"]["allocator"] == "steady"
    assert profile.provenance["allocator"]["allocator"] == "steady"
    # --render re-writes the report from the folder, running nothing: the same text
    assert set(results["generated"]) == {"command", "date", "elapsed_s"}
    render = ["validate", "--render", "--out", str(out), "--report", str(report)]
    report.write_text("stale")
    assert main(render) == 0 and report.read_text() == text
    # from a folder written before the 'generated' record: the report's first line says the command and date, and
    # a note a person put under the title is kept
    del results["generated"]
    (out / "results.json").write_text(json.dumps(results))
    noted = text.replace("\n\n", "\n\n> Run on a test host.\n\n", 1)           # under the title
    report.write_text(noted)
    assert main(render) == 0 and report.read_text() == noted
    # from a folder written before the runs' speed processes (run AY): the per-run table without that column
    for sc in results["scenarios"]:
        for r in sc["runs"]:
            del r["speed_process"]
    (out / "results.json").write_text(json.dumps(results))
    assert main(render) == 0
    older = report.read_text()
    assert "| preemptions/s | flagged |" in older and "slow windows (phases)" not in older
    assert "The speed process of each run" not in older and "The speed process of each run" in text
    assert "Host noise during the runs" not in older


def _run(flag: str) -> dict:
    return {"flag": flag, "interfered": bool(flag)}


@pytest.mark.parametrize("flags, used, note", [
    (["", "", "host drift", "interference", ""], [0, 1, 4], "3 of 5"),
    (["interference", "host drift", "", "", "interference"], [2, 3], "2 of 5"),
    (["host drift", "host drift", "", "interference", "interference"], [0, 1, 2],
     "3 of 5 (too few without host drift: drifted ones kept)"),
    (["interference"] * 3, [0, 1, 2], "3 of 3 (every run interfered with: kept)"),
])
def test_runs_flagged_for_interference_are_never_used(flags, used, note):
    from simulator.runner.validation import runs_used_note, used_index

    runs = [_run(f) for f in flags]
    assert used_index(runs) == used and runs_used_note(runs) == note


def test_timing_verdict_is_undecided_with_fewer_than_two_quiet_runs():
    from simulator.runner.report import verdict

    figure = {"error": 0.0, "spread": 0.0, "inside_band": True}
    sc = {"threshold_only": False, "load": 0.5, "runs": [_run("interference")] * 4 + [_run("")], "quiet_runs": 1,
          "latency_mean_ms": figure, "latency_p99_ms": figure}
    assert verdict(sc) == "timing undecided: host interference in 4 of 5 runs"
    assert verdict({**sc, "quiet_runs": 2}) == "timing target met"
    alone = {**sc, "runs": [_run("")], "quiet_runs": 1}              # --repeats 1: no spread to compare with
    assert verdict(alone) == "timing undecided: 1 run, a real-vs-real spread needs 2"
    wide = {"error": 0.3, "spread": 0.4, "inside_band": True}       # off by 30%, but the real runs spread by 40%
    spread = verdict({**sc, "quiet_runs": 2, "latency_mean_ms": wide})
    assert spread == "timing target met within the real-vs-real spread"
    assert verdict({**sc, "quiet_runs": 2, "latency_p99_ms": {**wide, "spread": 0.2}}) == "timing target missed"
    disturbed = verdict({**sc, "quiet_runs": 2, "profile_disturbed": ["closed loop"]})
    assert disturbed == "timing target met; profile measured under interference (closed loop)"


def test_the_verdicts_band_is_stretched_to_its_own_median_only_where_it_misses_it():
    from simulator.runner.validation import spanning

    median = {"latency_mean_ms": 2.0, "latency_p99_ms": 7.356}
    band = {"latency_mean_ms": [1.5, 2.5], "latency_p99_ms": [7.1, 7.348]}    # CI's miss: 7.348 < 7.356
    assert spanning(band, median) == {"latency_mean_ms": [1.5, 2.5], "latency_p99_ms": [7.1, 7.356]}
    assert spanning({"latency_mean_ms": [2.1, 3.0]}, median) == {"latency_mean_ms": [2.0, 3.0]}


def test_the_medians_monte_carlo_error_shrinks_with_the_seeds_and_is_zero_without_spread():
    from simulator.runner.validation import median_mc_error

    rng = np.random.default_rng(3)
    few, many = (np.exp(rng.normal(0.0, 0.1, n)) for n in (200, 2000))
    # the median of n lognormal draws of sd 0.1 has a standard error of about 1.25 * 0.1 / sqrt(n) in its log (the
    # bootstrap's estimate from one sample of 200 lies within 30% of it in 9 of 10 samples)
    assert median_mc_error(few) == pytest.approx(1.25 * 0.1 / np.sqrt(200), rel=0.4)
    assert median_mc_error(many) == pytest.approx(1.25 * 0.1 / np.sqrt(2000), rel=0.4)
    assert median_mc_error(np.full(50, 2.5)) == pytest.approx(0.0, abs=1e-12)
    assert median_mc_error(np.array([2.5])) is None
    assert median_mc_error(np.array([2.5, 0.0, 1.0])) is None     # a log needs positive figures


def test_rounds_rotate_the_scenarios():
    from simulator.runner.validation import rotated

    assert [rotated([1, 2, 3], r) for r in range(4)] == [[1, 2, 3], [2, 3, 1], [3, 1, 2], [1, 2, 3]]
    assert rotated([], 2) == []


@pytest.mark.parametrize("args, message", [
    (["--scenarios", "open-50,nope"], "invalid --scenarios"),
    (["--weights", "missing.npz"], "weights file missing.npz does not exist"),
    (["--samples", "missing.npz"], "samples file missing.npz does not exist"),
    (["--logits", "missing.npz"], "file missing.npz does not exist"),
    (["--requests", "3"], "invalid requests = 3"),
    (["--device", "tpu"], "invalid device"),
    (["--allocator", "jemalloc"], "invalid allocator = 'jemalloc'"),
    (["--threads", "0"], "invalid threads = 0"),
    (["--seed", "-1"], "invalid seed = -1"),
    (["--execution", "graph"], "execution = graph needs a CUDA device"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "val"
    assert message in cli_error(capsys, ["validate", "--out", str(out), "--report", str(tmp_path / "r.md"), *args])
    assert not out.exists() and not (tmp_path / "r.md").exists()


def test_a_validation_that_fails_leaves_its_out_folder_as_it_was(tmp_path, capsys):
    """A cache of three members for a scenario of six: refused once the cache is read, the earlier output intact
    and nothing staged left; and scenarios named twice would overwrite each other's outputs."""
    from simulator.runner.bundle import CACHE_PATH

    with np.load(CACHE_PATH) as full:
        np.savez(tmp_path / "three.npz", logits=full["logits"][:3], labels=full["labels"],
                 model_names=full["model_names"][:3])
    out = tmp_path / "val"
    out.mkdir()
    (out / "results.json").write_text("earlier")
    args = ["validate", "--out", str(out), "--report", str(tmp_path / "r.md"), *SMALL]
    err = cli_error(capsys, [*args, "--scenarios", "closed-4", "--logits", str(tmp_path / "three.npz")])
    assert "scenario closed-4: invalid members[3] = 3" in err and "has members 0..2" in err
    assert cli_error(capsys, [*args, "--scenarios", "closed-4,open-50,closed-4"]).endswith(
        "invalid scenarios: closed-4 given more than once")
    assert [p.name for p in out.iterdir()] == ["results.json"] and (out / "results.json").read_text() == "earlier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["three.npz", "val"]


@pytest.mark.parametrize("report, message", [
    ("val/results.json", "it is {out}/results.json, which the run writes in --out"),
    ("val/open-50", "it is {out}/open-50, which the run writes in --out"),
    ("val/closed-4/r.md", "it is in {out}/closed-4, which the run writes in --out"),
    ("val/profile-open-50.json", "it is {out}/profile-open-50.json, which the run writes in --out"),
])
@pytest.mark.parametrize("render", [False, True])
def test_a_report_that_would_replace_what_the_run_writes_is_refused(tmp_path, capsys, report, message, render):
    out = tmp_path / "val"
    out.mkdir()
    (out / "results.json").write_text("earlier")
    args = ["validate", "--scenarios", "open-50", "--out", str(out), "--report", str(tmp_path / report)]
    assert message.format(out=out) in cli_error(capsys, args + (["--render"] if render else []))
    assert [p.name for p in out.iterdir()] == ["results.json"] and (out / "results.json").read_text() == "earlier"


def test_an_entry_of_out_that_is_a_link_is_refused_before_any_real_run(tmp_path, capsys):
    out = tmp_path / "val"
    out.mkdir()
    (tmp_path / "kept.json").write_text("theirs")
    (out / "results.json").symlink_to(tmp_path / "kept.json")
    err = cli_error(capsys, ["validate", "--scenarios", "open-50", "--out", str(out), "--report", str(tmp_path / "r.md")])
    assert "its results.json is a symbolic link, a device, a FIFO or a socket" in err
    assert "profile" not in capsys.readouterr().out and (out / "results.json").is_symlink()


def _cache_variant(tmp_path, name, **arrays):
    """The shipped CPU cache with some arrays replaced (None: left out)."""
    from simulator.runner.bundle import CACHE_PATH

    with np.load(CACHE_PATH) as full:
        merged = {**dict(full), **arrays}
    np.savez(tmp_path / name, **{k: v for k, v in merged.items() if v is not None})
    return tmp_path / name


def test_the_cache_must_be_the_trained_members_and_their_samples(tmp_path, capsys):
    from simulator.runner.bundle import SAMPLES_PATH

    renamed = _cache_variant(tmp_path, "renamed.npz", model_names=np.array(["fmnist-cnn-w8"] * 6))
    args = ["validate", "--out", str(tmp_path / "val"), "--report", str(tmp_path / "r.md"), *SMALL]
    err = cli_error(capsys, [*args, "--scenarios", "cascade-80", "--logits", str(renamed)])
    assert f"member 4 is 'fmnist-cnn-w8' in the logit cache {renamed} but 'fmnist-cnn-w16' in" in err
    with np.load(SAMPLES_PATH) as full:
        np.savez(tmp_path / "few.npz", **{k: full[k][:50] for k in full.files})
    err = cli_error(capsys, [*args, "--scenarios", "open-50", "--samples", str(tmp_path / "few.npz")])
    assert "has 1000 samples, but the samples file" in err and "holds 50 images" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["few.npz", "renamed.npz"]


def test_a_cache_naming_no_models_takes_the_weights_names(tmp_path):
    from simulator.logits import load_cache
    from simulator.runner.bundle import load_members, load_samples
    from simulator.runner.validation import SCENARIOS, ValidationPlan, live_ensemble

    cache = load_cache(_cache_variant(tmp_path, "nameless.npz", model_names=None))
    members = load_members()
    plan = ValidationPlan(out_dir=tmp_path, scenarios=SCENARIOS[:1])
    assert cache.model_names is None
    assert live_ensemble(plan, cache, members, load_samples()).model_names == members.model_names


@pytest.mark.parametrize("where, message", [
    ("out", "invalid --out = '{file}': exists and is not a directory"),
    ("report-in-file", "invalid --report's folder = '{file}': exists and is not a directory"),
    ("report-dir", "invalid --report = '{dir}': is a directory, not a file"),
])
def test_unwritable_outputs_are_refused_before_any_real_run(tmp_path, capsys, where, message):
    file = tmp_path / "afile"
    file.write_text("")
    out, report = {"out": (file, tmp_path / "r.md"), "report-in-file": (tmp_path / "val", file / "r.md"),
                   "report-dir": (tmp_path / "val", tmp_path)}[where]
    err = cli_error(capsys, ["validate", "--scenarios", "open-50", "--out", str(out), "--report", str(report)])
    assert message.format(file=file, dir=tmp_path) in err
    assert "profile" not in capsys.readouterr().out and not (tmp_path / "val").exists()


@pytest.mark.parametrize("content, message", [
    (None, "--render: no results.json in"),
    ("{not json", "is not valid JSON"),
    ('{"plan": {}}', "is not a validation's results (needs plan, profiles and scenarios)"),
    ('{"plan": {}, "profiles": [], "scenarios": []}', "predates its 'generated' record"),
    ('{"plan": {}, "profiles": ["x/profile-a.json"], "scenarios": [], "generated": {}}',
     "profiles missing from"),
    ('{"plan": 1, "profiles": 5, "scenarios": "x", "generated": {}}', "has a field of the wrong form"),
    ('{"plan": {}, "profiles": [], "scenarios": [{}], "generated": {}}', "lacks the field"),
    ('{"plan": {}, "profiles": [], "scenarios": [], "generated": "x"}', "lacks the field 'setup'"),
])
def test_render_refuses_a_folder_it_cannot_render_and_writes_nothing(tmp_path, capsys, content, message):
    out = tmp_path / "val"
    out.mkdir()
    if content is not None:
        (out / "results.json").write_text(content)
    assert message in cli_error(capsys, ["validate", "--render", "--out", str(out), "--report", str(tmp_path / "r.md")])
    assert not (tmp_path / "r.md").exists()


def test_render_refuses_an_existing_report_it_cannot_read(tmp_path, capsys):
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "results.json").write_text('{"plan": {}, "profiles": [], "scenarios": []}')
    (tmp_path / "r.md").write_bytes(b"\xff\xfe")
    err = cli_error(capsys, ["validate", "--render", "--out", str(tmp_path / "val"),
                             "--report", str(tmp_path / "r.md")])
    assert "--render's existing report" in err and "r.md" in err
    assert (tmp_path / "r.md").read_bytes() == b"\xff\xfe"


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a CUDA device is present")
def test_cuda_asked_for_but_absent(tmp_path, capsys):
    out = tmp_path / "val"
    err = cli_error(capsys, ["validate", "--scenarios", "open-50", "--device", "cuda", "--out", str(out),
                             "--report", str(tmp_path / "r.md")])
    assert "no CUDA device is available here" in err
    assert not out.exists()
