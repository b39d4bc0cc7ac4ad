"""Bad input found by an audit of every command (2026-12-07): each is one line, exit 2, and nothing is written or
replaced."""

import json
import os
import shutil

import numpy as np
import pytest

from simulator.errors import FlexsimError
from tests.helpers import ROOT, cli_error


def _profile_with(tmp_path, shipped: str, change) -> str:
    """A copy of shipped profile `shipped` changed in place by `change(obj)`."""
    obj = json.loads((ROOT / "profiles" / f"{shipped}.json").read_text())
    change(obj)
    path = tmp_path / f"changed-{shipped}.json"
    path.write_text(json.dumps(obj))
    return str(path)


def _first_model(obj) -> dict:
    return next(iter(obj["models"].values()))


@pytest.mark.parametrize("shipped, change, argv, message", [
    ("orin-nano", lambda o: o["provenance"].__setitem__("derived_from", "x"), ["profiles", "{p}"],
     "provenance.derived_from must be an object"),
    ("cpu-amd-epyc-2c", lambda o: o["device"].__setitem__("threads", "abc"), ["profiles", "{p}"],
     "device.threads = 'abc' must be an integer"),
    ("cpu-amd-epyc-2c", lambda o: o["device"].__setitem__("threads", 0), ["profiles", "{p}"],
     "device.threads = 0 must be an integer"),
    ("cpu-amd-epyc-2c", lambda o: o["device"]["measured_peaks"].__setitem__("mem_bw_gbs", 0),
     ["costmodel", "derive", "--device", "rpi5", "--profile", "{p}", "--out-dir", "{out}"],
     "measured_peaks.mem_bw_gbs = 0 must be a number > 0"),
    ("cpu-amd-epyc-2c", lambda o: o["device"]["measured_peaks"].__setitem__("peak_gflops", "x"),
     ["costmodel", "accuracy", "--profile", "{p}"], "measured_peaks.peak_gflops = 'x' must map dtypes"),
    ("h100", lambda o: _first_model(o).__setitem__("dtype", {"a": 1}),
     ["costmodel", "derive", "--device", "orin-nano-8gb", "--profile", "{p}", "--out-dir", "{out}"],
     "dtype = {'a': 1} must be one of"),
])
def test_malformed_profile_fields_the_cost_model_reads(tmp_path, capsys, shipped, change, argv, message):
    path = _profile_with(tmp_path, shipped, change)
    out = tmp_path / "out"
    out.mkdir()
    assert message in cli_error(capsys, [a.format(p=path, out=out) for a in argv])
    assert not list(out.iterdir())


@pytest.mark.parametrize("argv, message", [
    (["run", "--out", ""], "invalid out = '': an empty path"),
    (["run", ""], "config: an empty path"),
    (["sweep", "", "--vary", "deadline-ms=1|2"], "config: an empty path"),
    (["profiles", ""], "profile: an empty name"),
    (["run", "--policy", "threshold,threshold"], "distinct policy names"),
    (["optimize", "--msdnet-budget", "0"], "invalid --msdnet-budget = 0.0"),
    (["optimize", "--budget", "-1"], "invalid --budget = -1.0"),
    (["costmodel", "derive", "--device", "orin-nano-8gb", "--out-dir", ""], "invalid --out-dir = ''"),
    (["costmodel", "accuracy", "--profile", "h100", "--table", "simulator/costmodel/tables/fmnist-cnn-w8.json"],
     "no profile checked measured fmnist-cnn-w8"),
    (["validate", "--render", "--out", "", "--report", "r.md"], "invalid --out = ''"),
    (["bench", "--json", ""], "invalid --json = ''"),
    (["run", "--policy", "load-adaptive", "--load-levels", "0.5:6"], "QLEN and MAX_STAGES must be integers"),
])
def test_empty_paths_and_meaningless_options(capsys, argv, message):
    assert message in cli_error(capsys, argv)


def test_a_fifo_given_as_an_input_is_refused_not_waited_on(tmp_path, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for argv in (["run", str(fifo)], ["run", "--arrivals", f"trace:{fifo}"], ["profiles", str(fifo)]):
        assert "is not a regular file" in cli_error(capsys, argv)
    policy = f"{fifo}:rule"
    assert "is not a regular file" in cli_error(capsys, ["run", "--policy", "threshold,custom", "--custom-policy",
                                                         policy])


def test_run_and_sweep_refuse_an_out_that_would_replace_their_inputs(tmp_path, capsys):
    from simulator.cli import main

    out = tmp_path / "runs"
    assert main(["run", "--requests", "50", "--out", str(out)]) == 0
    capsys.readouterr()
    trace = (out / "requests.csv").read_bytes()
    err = cli_error(capsys, ["run", "--requests", "20", "--arrivals", f"trace:{out}/requests.csv", "--out", str(out)])
    assert "its requests.csv is an input of this command" in err
    assert (out / "requests.csv").read_bytes() == trace
    shutil.copy(ROOT / "profiles" / "h100.json", out / "summary.json")
    err = cli_error(capsys, ["run", "--requests", "20", "--profile", str(out / "summary.json"), "--out", str(out)])
    assert "its summary.json is an input" in err
    (out / "sweep.csv").write_bytes(trace)
    err = cli_error(capsys, ["sweep", "--requests", "20", "--vary", f"arrivals=poisson:load=0.5|trace:{out}/sweep.csv",
                             "--out", str(out)])
    assert "its sweep.csv is an input" in err and (out / "sweep.csv").read_bytes() == trace


def test_accuracy_refuses_one_file_for_the_document_and_the_json(tmp_path, capsys):
    doc = tmp_path / "doc.md"
    text = "# doc\n<!-- accuracy-report:begin -->\nold\n<!-- accuracy-report:end -->\n"
    doc.write_text(text)
    err = cli_error(capsys, ["costmodel", "accuracy", "--profile", "h100", "--update-doc", str(doc), "--json",
                             str(doc)])
    assert "name the same file" in err and doc.read_text() == text


def test_render_of_results_with_an_empty_list_is_one_line(tmp_path, capsys):
    folder = tmp_path / "validation"
    folder.mkdir()
    results = json.loads((ROOT / "docs/validation/results.json").read_text())
    results["scenarios"][0]["diagnostics"][0]["stage_factors"] = []
    (folder / "results.json").write_text(json.dumps(results))
    for profile in (ROOT / "docs/validation").glob("profile-*.json"):
        shutil.copy(profile, folder)
    report = tmp_path / "r.md"
    err = cli_error(capsys, ["validate", "--render", "--out", str(folder), "--report", str(report)])
    assert "has a field of the wrong form" in err and not report.exists()


def test_an_error_of_a_writer_names_the_file_not_its_temporary(tmp_path):
    from simulator.io import atomic_paths

    target = tmp_path / "summary.json"
    with pytest.raises(FlexsimError) as caught:
        with atomic_paths([target]) as (tmp,):
            raise FlexsimError(f"profile {tmp}: quantiles must increase")
    assert str(caught.value) == f"profile {target}: quantiles must increase"
    assert not list(tmp_path.iterdir())


def test_render_refuses_the_flags_of_runs_it_does_not_make(tmp_path, capsys):
    report = tmp_path / "r.md"
    err = cli_error(capsys, ["validate", "--render", "--requests", "-5", "--threads", "0", "--out",
                             str(ROOT / "docs/validation"), "--report", str(report)])
    assert "--render runs nothing: --requests, --threads would change nothing" in err and not report.exists()


# ------------------------------------------------------------------------------------------ the Python API

def test_more_stages_than_the_records_hold_are_refused():
    from simulator.config import MAX_STAGES, RunConfig

    with pytest.raises(FlexsimError, match=f"a list of 1 to {MAX_STAGES} distinct member indices"):
        RunConfig(members=tuple(range(MAX_STAGES + 1)))


@pytest.mark.parametrize("fields, message", [
    (dict(thresholds=(10 ** 30,) * 5), "invalid thresholds"),
    (dict(speed_noise=(0.1, 10 ** 400)), "invalid speed_noise"),
])
def test_ints_beyond_the_float_range_are_refused_by_name(fields, message):
    from simulator.config import RunConfig

    with pytest.raises(FlexsimError, match=message):
        RunConfig(**fields)


def test_long_double_values_are_held_and_written_as_floats(tmp_path):
    import numpy as np

    from simulator import simulate

    result = simulate(requests=200, thresholds=tuple(np.full(5, 0.5, np.longdouble)), out=str(tmp_path / "r"))
    config = json.loads((tmp_path / "r" / "summary.json").read_text())["config"]
    assert config["thresholds"] == [0.5] * 5 and result.summary.n_requests == 200


def test_simulate_refuses_an_out_that_would_replace_its_trace(tmp_path):
    from simulator import simulate

    simulate(requests=50, out=str(tmp_path))
    trace = (tmp_path / "requests.csv").read_bytes()
    with pytest.raises(FlexsimError, match="its requests.csv is an input"):
        simulate(requests=20, arrivals=f"trace:{tmp_path}/requests.csv", out=str(tmp_path))
    assert (tmp_path / "requests.csv").read_bytes() == trace


def test_speed_traces_that_would_not_fit_in_memory_are_refused(monkeypatch):
    import simulator.run
    from simulator import simulate

    monkeypatch.setattr(simulator.run.os, "sysconf", lambda name: 4096 if name == "SC_PAGE_SIZE" else 1_000)
    with pytest.raises(FlexsimError, match="speed_noise on 8 devices: traces of .* slots each: about"):
        simulate(requests=200, devices=8, speed_noise=(0.1, 0.01))


def test_a_masked_logit_array_is_refused():
    import numpy as np

    from simulator.logits import LogitCache

    with pytest.raises(FlexsimError, match="logits is a masked array"):
        LogitCache(logits=np.ma.masked_invalid(np.full((2, 3, 4), np.nan)), labels=np.zeros(3, dtype=int))


def test_a_profile_with_a_nan_is_not_saved_as_unmeasured(tmp_path):
    import dataclasses

    from simulator.profiles import load_profile, save_profile

    nan_idle = dataclasses.replace(load_profile("h100"), idle_power_w=float("nan"))
    with pytest.raises(FlexsimError, match="idle_power_w is not a finite number"):
        save_profile(tmp_path / "p.json", nan_idle)
    assert not (tmp_path / "p.json").exists()


@pytest.mark.parametrize("path, message", [(None, "not a path"), ("{tmp}/missing/x.csv", "(?i)does not exist|no such"),
                                           ("{tmp}", "(?i)is a directory"), ("a\0b", "cannot hold a NUL")])
def test_writing_records_to_a_bad_path_is_named(tmp_path, path, message):
    from simulator import simulate

    requests = simulate(requests=20).requests
    target = None if path is None else path.format(tmp=tmp_path)
    for write in (requests.write_csv, requests.to_csv):
        with pytest.raises(FlexsimError, match=message):
            write(target)


def test_a_threshold_problem_checks_its_correctness_and_cumulative_costs():
    import numpy as np

    from simulator.optimize.problem import ThresholdProblem

    signal, latency = np.full((2, 3), 0.5), np.ones((2, 3)).cumsum(axis=0)
    with pytest.raises(FlexsimError, match="correct must be a boolean array"):
        ThresholdProblem(signal=signal, correct=np.full((2, 3), 5.0), latency_ms=latency)
    with pytest.raises(FlexsimError, match="latency_ms must be cumulative"):
        ThresholdProblem(signal=signal, correct=np.ones((2, 3), bool), latency_ms=latency[::-1].copy())


def test_prepare_checks_the_signals_it_is_given():
    import numpy as np

    from simulator import RunConfig, prepare
    from simulator.signals import StageSignals

    with pytest.raises(FlexsimError, match="signals must be the StageSignals of 6 stages"):
        prepare(RunConfig(requests=10), signals=np.zeros((6, 10_000)))
    nan = StageSignals(signal=np.full((6, 10_000), np.nan), prediction=np.zeros((6, 10_000), np.int32),
                       correct=np.zeros((6, 10_000), bool))
    with pytest.raises(FlexsimError, match="signals.signal must be finite"):
        prepare(RunConfig(requests=10), signals=nan)


def test_optimizer_helpers_name_a_missing_problem():
    from simulator.optimize import train_and_test
    from simulator.optimize.budget import budgeted_exits, fraction_thresholds
    from simulator.optimize.evaluate import exit_fractions, relative_error_increase

    for call in (lambda: exit_fractions(None, (0.5,)), lambda: relative_error_increase(0.5, None),
                 lambda: fraction_thresholds(None, (1.0,)), lambda: budgeted_exits(None, 1.0)):
        with pytest.raises(FlexsimError, match="invalid problem: a ThresholdProblem"):
            call()
    with pytest.raises(FlexsimError, match="config must be a RunConfig"):
        train_and_test(None)


def test_numbers_beyond_the_float_range_and_strings_as_parameters():
    from numba import njit

    from simulator import policies as pol
    from simulator.optimize import MaxAccuracy

    @njit
    def stop(state, params):
        return state.signal >= params[0]

    with pytest.raises(FlexsimError, match="invalid budget"):
        MaxAccuracy(10 ** 400)
    with pytest.raises(FlexsimError, match="invalid power_cap_w = 1000"):
        pol.compose([pol.PowerCap(10 ** 400)], 3)
    for params in (("0.5",), (True,), (10 ** 400,)):
        with pytest.raises(FlexsimError, match="params must be a flat sequence of finite numbers"):
            pol.compose([pol.CustomPolicy(stop, params)], 3)


def test_two_load_adaptive_policies_and_untyped_specs_are_refused():
    from simulator import policies as pol
    from simulator.workload import read_trace

    one_level = pol.LoadAdaptive(((0, 2, None),))
    with pytest.raises(FlexsimError, match="only one load-adaptive policy"):
        pol.compose([one_level, pol.LoadAdaptive(((0, 1, None),))], 3)
    with pytest.raises(FlexsimError, match="trace: None is not a path"):
        read_trace(None)
    with pytest.raises(FlexsimError, match="invalid load_levels = None"):
        pol.parse_load_levels(None)


def test_small_api_edges_are_named(tmp_path):
    import numpy as np

    from simulator import simulate, sweep
    from simulator.optimize import build_problem, evaluate_grid, make_grid
    from simulator.config import RunConfig
    from simulator.workload import parse_arrivals

    with pytest.raises(FlexsimError, match="nothing after the colon"):
        parse_arrivals("closed:")
    problem = build_problem(RunConfig(members=(0, 1)))
    result = evaluate_grid(problem, make_grid(problem, 3))
    for index in (-1, 3, "a", True):
        with pytest.raises(FlexsimError, match="invalid combination index"):
            result.point(index)
    study = sweep(vary={"deadline_ms": (5.0,)}, requests=50)
    with pytest.raises(FlexsimError, match="rows must be a non-empty list"):
        study.csv_text([])
    trace = tmp_path / "t.csv"
    trace.write_text("arrival_s,deadline_ms\n0,1\n0.1,-2\n")
    with pytest.raises(FlexsimError, match=f"trace {trace}: deadline_ms row 2 = -2.0 must be > 0"):
        simulate(arrivals=f"trace:{trace}")
    assert np.isfinite(result.point(0).latency_ms)


def test_a_state_beyond_its_stages_and_no_arrivals_are_refused():
    import numpy as np

    from simulator.policies import make_state
    from simulator.workload import generate_arrivals, parse_arrivals

    for fields in (dict(stage=9, n_stages=6), dict(stage=-1)):
        with pytest.raises(FlexsimError, match="must lie in \\[0, n_stages"):
            make_state(**fields)
    with pytest.raises(FlexsimError, match="n_requests = 0 must be an integer >= 1"):
        generate_arrivals(parse_arrivals("mmpp:10:20:0.1"), 0, np.random.default_rng(0))


# ------------------------------------------------------------------------- the second audit (2026-12-07, evening)

def test_no_command_replaces_a_measured_profile_or_its_own_inputs(tmp_path, capsys):
    """derive over a measured profile (its own reference by default), accuracy --json over a profile it reads,
    optimize --out over its profile or logits: refused, the file unchanged."""
    shipped = (ROOT / "profiles" / "h100.json").read_bytes()
    (tmp_path / "mine.json").write_bytes(shipped)
    err = cli_error(capsys, ["costmodel", "derive", "--device", "orin-nano-8gb", "--name", "mine", "--out-dir",
                             str(tmp_path)])
    assert "mine.json holds a measured profile" in err
    err = cli_error(capsys, ["costmodel", "accuracy", "--profile", str(tmp_path / "mine.json"), "--json",
                             str(tmp_path / "mine.json")])
    assert "it is an input of this command" in err
    assert "it is an input" in cli_error(capsys, ["costmodel", "accuracy", "--json", str(ROOT / "profiles/h100.json")])
    out = tmp_path / "opt"
    out.mkdir()
    (out / "summary.json").write_bytes(shipped)
    err = cli_error(capsys, ["optimize", "--grid-points", "3", "--profile", str(out / "summary.json"), "--out",
                             str(out)])
    assert "its summary.json is an input of this command" in err
    assert (out / "summary.json").read_bytes() == (tmp_path / "mine.json").read_bytes() == shipped
    assert (ROOT / "profiles" / "h100.json").read_bytes() == shipped


@pytest.mark.parametrize("where, value", [("runs[2].latency_mean_ms", float("nan")),
                                          ("runs[2].latency_p99_ms", -5.0),
                                          ("session.sim.latency_mean_ms", float("nan")),
                                          ("session.latency_p50_ms.sim", float("inf")),
                                          ("runs[0].latency_p50_ms", 10 ** 400)])   # no float holds it
def test_render_refuses_latencies_that_are_not_finite_and_non_negative(tmp_path, capsys, where, value):
    import re

    folder = tmp_path / "validation"
    folder.mkdir()
    results = json.loads((ROOT / "docs/validation/results.json").read_text())
    *path, last = [int(k) if k.isdigit() else k for k in re.split(r"[.\[\]]+", where) if k]
    target = results["scenarios"][1]
    for key in path:
        target = target[key]
    target[last] = value
    (folder / "results.json").write_text(json.dumps(results))
    for profile in (ROOT / "docs/validation").glob("profile-*.json"):
        shutil.copy(profile, folder)
    report = tmp_path / "r.md"
    err = cli_error(capsys, ["validate", "--render", "--out", str(folder), "--report", str(report)])
    assert f"open-80's {where} = {value!r} is not a finite latency >= 0" in err and not report.exists()


def test_a_line_break_in_a_value_stays_on_the_error_line(capsys):
    assert "file no\\nsuch.npz does not exist" in cli_error(capsys, ["run", "--logits", "no\nsuch.npz"])


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_standard_output_that_cannot_be_written_is_one_line(tmp_path):
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "simulator.cli", "costmodel", "devices"], stdout=full,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr == "flexsim costmodel: error: cannot write to standard output: No space left on device\n"


def test_the_energy_error_names_the_models_without_energy(tmp_path, capsys):
    def drop(obj):
        del obj["models"]["resnet50-fp16-graph-m0"]["batches"]["1"]["energy_j"]
    path = _profile_with(tmp_path, "h100", drop)
    err = cli_error(capsys, ["run", "--requests", "20", "--policy", "threshold,energy", "--energy-budget-j", "0.3",
                             "--profile", path])
    assert err.endswith("has none for model resnet50-fp16-graph-m0 (needed at batch size 1)")


@pytest.mark.parametrize("flag", ["--models", "--speed-noise", "--custom-policy", "--static-k"])
def test_an_empty_flag_value_is_refused_not_taken_as_unset(capsys, flag):
    assert "an empty value (write none to leave the field unset)" in cli_error(capsys, ["run", flag, ""])


def test_an_empty_flexsim_profiles_is_unset(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "simulator.cli", "profiles"], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "FLEXSIM_PROFILES": "", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and done.stdout.startswith("a100 ")


@pytest.mark.parametrize("column, value, message", [
    ("stride", 0, "is a convolution with stride = 0 (must be >= 1)"),
    ("groups", 0, "is a convolution with groups = 0 (must be >= 1)"),
    ("in_shape", [0, 28, 28], "its in_shape [0, 28, 28] has a dimension of 0"),
    ("out_shape", [], "lacks channels and a spatial size"),
])
def test_a_layer_table_with_impossible_shapes_is_refused(tmp_path, capsys, column, value, message):
    obj = json.loads((ROOT / "simulator/costmodel/tables/fmnist-cnn-w8.json").read_text())
    obj["model"] = "mynet"
    obj["columns"][column][0] = value
    (tmp_path / "mynet.json").write_text(json.dumps(obj))
    out = tmp_path / "out"
    out.mkdir()
    err = cli_error(capsys, ["costmodel", "derive", "--device", "rpi5", "--table", str(tmp_path / "mynet.json"),
                             "--name", "r", "--out-dir", str(out)])
    assert f"kernel 0 ({obj['columns']['op'][0]})" in err and message in err and not list(out.iterdir())


def test_an_empty_tensor_outside_a_convolution_is_a_table_as_traced(tmp_path, capsys):
    """A concatenation with an empty branch runs, and its trace is read back (only convolutions are checked)."""
    from simulator.costmodel.layers import read_table

    obj = json.loads((ROOT / "simulator/costmodel/tables/fmnist-cnn-w8.json").read_text())
    i = obj["columns"]["kind"].index("other")
    obj["columns"]["in2_shape"][i] = [0, 14, 14]
    (tmp_path / "mynet.json").write_text(json.dumps({**obj, "model": "mynet"}))
    assert read_table(tmp_path / "mynet.json").shapes["in2_shape"][i] == [0, 14, 14]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_derive_names_a_fifo_in_its_way_without_reading_it(tmp_path, capsys):
    os.mkfifo(tmp_path / "x.json")
    err = cli_error(capsys, ["costmodel", "derive", "--device", "rpi5", "--name", "x", "--out-dir", str(tmp_path)])
    assert "not a regular file" in err


def test_outputs_never_replace_the_committed_layer_tables(capsys):
    tables = ROOT / "simulator" / "costmodel" / "tables"
    before = (tables / "alexnet.json").read_bytes()
    assert "it is an input" in cli_error(capsys, ["costmodel", "accuracy", "--json", str(tables / "alexnet.json")])
    err = cli_error(capsys, ["costmodel", "derive", "--device", "rpi5", "--name", "alexnet", "--out-dir", str(tables)])
    assert "alexnet.json is an input of this command" in err and (tables / "alexnet.json").read_bytes() == before


# ------------------------------------------------------- the measuring commands' bad input (2026-12-07, evening)

KERNEL_TIMES = ["costmodel", "kernel-times", "--models", "fmnist-cnn-w8", "--out", "{tmp}/k.json"]


@pytest.mark.parametrize("argv, message", [
    (["costmodel", "microbench", "--out", ""], "invalid --out = '': an empty path"),
    (["costmodel", "microbench", "--profile", "h100"], "is not a measured CPU profile"),
    (["costmodel", "microbench", "--profile", "rpi5"], "is not a measured CPU profile"),
    (["costmodel", "microbench", "--profile", "cpu-amd-epyc-2c", "--profile", "h100"], "give one --profile"),
    ([*KERNEL_TIMES, "--threads", "99999999999"], "invalid --threads = 99999999999: must be an integer from 1 to 4096"),
    ([*KERNEL_TIMES, "--rounds", "1000000000"], "invalid --rounds = 1000000000"),
    ([*KERNEL_TIMES, "--passes", "1000000000"], "invalid --passes = 1000000000"),
    ([*KERNEL_TIMES, "--dtypes", ""], "invalid --dtypes = ''"),
    ([*KERNEL_TIMES, "--allocator", ""], "invalid allocator = ''"),
    ([*KERNEL_TIMES, "--batch-sizes", "1,1"], "batch size 1 given twice"),
    (["profile", "fmnist-cnn-w8", "--batch-sizes", "2-", "--out", "{tmp}/p.json"], "invalid --batch-sizes part '2-'"),
    (["profile", "fmnist-cnn-w8", "--dtypes", "fp32,fp32", "--out", "{tmp}/p.json"], "fp32 given twice"),
    (["profile", "fmnist-cnn-w8", "--modes", "eager,eager", "--out", "{tmp}/p.json"], "eager given twice"),
    (["profile", "fmnist-cnn-w8", "--name", "x\ny", "--out", "{tmp}/p.json"], "invalid --name 'x\\ny'"),
    (["profile", "fmnist-cnn-w8", "--out", "{tmp}/.json"], "invalid --out's file name (or give --name) '.json'"),
    (["validate", "--scenarios", "open-50", "--repeats", "2000", "--out", "{tmp}/v", "--report", "{tmp}/v.md"],
     "invalid repeats = 2000: must be from 1 to 1000"),
    (["validate", "--scenarios", "open-50", "--profiling-requests", "1000000000000", "--out", "{tmp}/v", "--report",
      "{tmp}/v.md"], "invalid profiling requests = 1000000000000"),
    (["validate", "--scenarios", "open-50", "--threads", "99999999999", "--out", "{tmp}/v", "--report", "{tmp}/v.md"],
     "invalid threads = 99999999999: must be an integer from 1 to 4096"),
])
def test_the_measuring_commands_refuse_impossible_requests_before_measuring(tmp_path, capsys, argv, message):
    pytest.importorskip("torch")
    assert message in cli_error(capsys, [a.format(tmp=tmp_path) for a in argv])
    assert not list(tmp_path.iterdir())


def test_the_measuring_commands_never_replace_their_inputs(tmp_path, capsys):
    pytest.importorskip("torch")
    source = tmp_path / "net.py"
    source.write_text("import torch\n\ndef build():\n    return torch.nn.Linear(64, 10)\n")
    err = cli_error(capsys, ["profile", "mine=" + str(source) + ":build", "--input-shape", "1,8,8", "--out",
                             str(source)])
    assert "it is an input of this command" in err and source.read_text().startswith("import torch")
    cache = tmp_path / "c.npz"
    shutil.copy(ROOT / "simulator/data/fmnist_cpu_logits_test.npz", cache)
    before = cache.read_bytes()
    err = cli_error(capsys, ["validate", "--scenarios", "open-50", "--logits", str(cache), "--out",
                             str(tmp_path / "v"), "--report", str(cache)])
    assert "invalid --report" in err and "it is an input" in err
    (tmp_path / "v").mkdir()
    shutil.copy(cache, tmp_path / "v" / "results.json")
    err = cli_error(capsys, ["validate", "--scenarios", "open-50", "--logits", str(tmp_path / "v" / "results.json"),
                             "--out", str(tmp_path / "v"), "--report", str(tmp_path / "r.md")])
    assert "its results.json is an input" in err and cache.read_bytes() == before


def test_a_failed_validation_leaves_no_folder_behind(tmp_path, capsys):
    pytest.importorskip("torch")
    from simulator.runner.bundle import load_members

    weights = tmp_path / "in" / "w.npz"
    weights.parent.mkdir()
    members = dict(np.load(ROOT / "simulator/data/fmnist_cpu_members.npz"))
    members["widths"] = np.array([8, 8, 8, 8, 16, 0])
    np.savez(weights, **members)
    with pytest.raises(FlexsimError, match="widths must be integers >= 1"):
        load_members(weights)
    err = cli_error(capsys, ["validate", "--scenarios", "open-50", "--requests", "30", "--repeats", "2", "--seeds", "3",
                             "--profiling-requests", "20", "--weights", str(weights), "--out",
                             str(tmp_path / "n1" / "val"), "--report", str(tmp_path / "n2" / "r.md")])
    assert "widths must be integers >= 1" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_a_source_that_is_not_python_is_named(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("not python\n")
    err = cli_error(capsys, ["run", "--policy", "threshold,custom", "--custom-policy", f"{notes}:f", "--requests", "10"])
    assert f"{notes} is not a Python source file (a .py file)" in err
