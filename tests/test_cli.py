"""The command line: the default run, outputs, and bad input (one line, exit 2, nothing written)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from simulator.cli import COMMANDS, main
from tests.helpers import cli_error


def test_run_prints_the_summary(capsys):
    assert main(["run", "--requests", "500"]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "latency ms" in out and "energy" in out


def test_run_names_the_model_of_each_stage_and_says_where_the_profile_stands_in(tmp_path, capsys):
    out_dir = tmp_path / "run"
    assert main(["run", "--requests", "100", "--out", str(out_dir)]) == 0      # h100: ResNet-50 members measured
    line = capsys.readouterr().out.splitlines()[1]
    assert line.startswith("stage models: resnet50-fp16-graph-m0,") and "on h100" in line
    assert "stand-ins for the cache's fmnist-cnn-w32" in line
    saved = json.loads((out_dir / "summary.json").read_text())
    assert saved["stage_models"] == {"h100": [f"resnet50-fp16-graph-m{i}" for i in range(6)]}
    assert main(["run", "--requests", "100", "--profile", "h200", "--members", "6,0,7", "--combiner", "last",
                 "--thresholds", "0.8,0.7"]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line == "stage models: fmnist-cnn-w8,fmnist-cnn-w32,fmnist-cnn-w64 on h200"
    assert main(["run", "--requests", "100", "--profile", "a100", "--models", "resnet50-fp16-graph"]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert "(chosen with --models for the cache's fmnist-cnn-w32)" in line and "stand-ins" not in line
    err = cli_error(capsys, ["run", "--logits", "fmnist-cpu", "--profile", "cpu-amd-epyc-2c"])
    assert "profile cpu-amd-epyc-2c has the cache's member model(s) fmnist-cnn-w32, fmnist-cnn-w8 but not " \
        "fmnist-cnn-w16: measure or derive them too" in err
    assert main(["run", "--logits", "fmnist-cpu", "--profile", "h100", "--requests", "100"]) == 0   # none: stand-ins
    assert "(the profile's stand-ins for the cache's fmnist-cnn-w8" in capsys.readouterr().out.splitlines()[1]


def test_run_writes_outputs_and_json(tmp_path, capsys):
    out_dir = tmp_path / "run"
    assert main(["run", "--requests", "300", "--out", str(out_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_requests"] == 300
    assert sorted(p.name for p in out_dir.iterdir()) == ["batches.csv", "requests.csv", "summary.json"]
    rows = np.genfromtxt(out_dir / "requests.csv", delimiter=",", names=True)
    assert len(rows) == 300 and np.all(rows["finish_s"] >= rows["start_s"])
    saved = json.loads((out_dir / "summary.json").read_text())
    assert saved["summary"]["accuracy"] == summary["accuracy"] and saved["config"]["requests"] == 300


def test_toml_config_with_flag_override(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('requests = 200\nmembers = [0, 1, 2]\nthresholds = [0.5, 0.5]\n')
    assert main(["run", str(config), "--json", "--requests", "100"]) == 0
    assert json.loads(capsys.readouterr().out)["n_requests"] == 100


def _nan_cache(tmp_path):
    logits = np.zeros((2, 3, 4), dtype=np.float32)
    logits[1, 2, 0] = np.nan
    path = tmp_path / "nan.npz"
    np.savez(path, logits=logits, labels=np.zeros(3, dtype=np.int64))
    return path


@pytest.mark.parametrize("args, message", [
    (["--deadline-ms", "-1"], "invalid deadline_ms = -1.0"),
    (["--thresholds", "0.5"], "1 values given for 6 stages"),
    (["--thresholds", "0.5,a,0,0,0"], "invalid thresholds"),
    (["--members", "0,9"], r"members\[1\] = 9"),
    (["--profile", "nope"], "unknown profile name 'nope'"),
    (["--arrivals", "trace:/nonexistent.csv"], "does not exist"),
    (["--arrivals", "uniform:3"], "unknown kind 'uniform'"),
    (["--combiner", "max"], "invalid combiner"),
    (["--policy", "magic"], "invalid policy"),
    (["--requests", "0"], "invalid requests = 0"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    out_dir = tmp_path / "out"
    err = cli_error(capsys, ["run", "--requests", "100", *args, "--out", str(out_dir)])
    assert err.startswith("flexsim run: error:")
    assert __import__("re").search(message, err), err
    assert not out_dir.exists()


def test_bad_files_exit_2(tmp_path, capsys):
    assert main(["run", "--logits", str(_nan_cache(tmp_path)), "--members", "0,1", "--thresholds", "0.5"]) == 2
    assert "logits[1, 2, 0] is nan" in capsys.readouterr().err
    toml = tmp_path / "bad.toml"
    toml.write_text("requests = [\n")
    assert main(["run", str(toml)]) == 2
    assert "malformed TOML" in capsys.readouterr().err
    profile = tmp_path / "p.json"
    profile.write_text('{"schema_version": 99}')
    assert main(["run", "--profile", str(profile)]) == 2
    assert "schema_version = 99 is not supported" in capsys.readouterr().err


def test_console_script_exit_code_and_no_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "simulator.cli", "run", "--deadline-ms", "0"],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "invalid deadline_ms" in done.stderr


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_for_every_command(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: flexsim" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["profile", "resnet18", "--repeats", "2.5"], "argument --repeats: invalid int value: '2.5'"),
    (["bench", "--requests", "x"], "argument --requests: invalid int value: 'x'"),
    (["costmodel", "foo"], "argument action: invalid choice: 'foo'"),
    (["run", "--no-such-option"], "unrecognized arguments: --no-such-option"),
    (["nope"], "argument COMMAND: invalid choice: 'nope'"),
])
def test_malformed_options_are_one_line_too(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and message in err and "--help)" in err, err


def test_profiles_lists_the_shipped_profiles(capsys):
    assert main(["profiles"]) == 0
    assert "h100" in capsys.readouterr().out


def test_profiles_gives_each_form_its_own_batch_sizes(capsys):
    """h100 measured ResNet-18's CUDA graph at batch 1 only, its eager calls at batch 1-64: the listing must not merge
    them into one range."""
    assert main(["profiles", "h100"]) == 0
    covers = capsys.readouterr().out.split("covers: ")[1]
    assert "resnet18, vgg16, mobilenet-v3-large (fp16 cuda-graph) at batch 1, (fp16 eager, fp32 eager) at batch 1-64" \
        in covers


# --------------------------------------------------------------------------- unusable paths, checked up front

@pytest.mark.parametrize("argv, message", [
    (["run", "--requests", "300", "--out", "{file}/sub"], "is not a directory"),
    (["run", "--requests", "300", "--out", "{file}"], "exists and is not a directory"),
    (["optimize", "--out", "{file}/sub"], "is not a directory"),
    (["profile", "fmnist-cnn-w8", "--out", "{dir}"], "is a directory, not a file"),
    (["bench", "--json", "{dir}/missing/b.json"], "does not exist"),
    (["bench", "--memory-requests", "-1"], "invalid --memory-requests = -1"),
    (["bench", "--simpy-requests", "0"], "invalid --simpy-requests = 0"),
    (["optimize-bench", "--points", "3", "--json", "{dir}/missing/x.json"], "does not exist"),
    (["optimize-bench", "--points", "1"], "invalid --points = 1"),
])
def test_unusable_outputs_and_options_fail_before_computing(tmp_path, capsys, monkeypatch, argv, message):
    import simulator.commands.bench as bench
    import simulator.commands.optimize_bench as optimize_bench
    import simulator.profiler as profiler
    import simulator.run as run

    def computed(*args, **kwargs):
        raise AssertionError("the computation ran before the bad input was found")

    for module, name in ((run, "run_inputs"), (bench, "measure"), (optimize_bench, "measure"),
                         (profiler, "profile_models")):
        monkeypatch.setattr(module, name, computed)
    (tmp_path / "file").write_text("x")
    argv = [a.format(file=tmp_path / "file", dir=tmp_path) for a in argv]
    assert message in cli_error(capsys, argv)


@pytest.mark.skipif(not __import__("os").path.isdir("/sys/kernel"), reason="no /sys/kernel here")
def test_out_where_nothing_can_be_created(capsys):
    assert "cannot write in /sys/kernel" in cli_error(capsys, ["run", "--requests", "300", "--out", "/sys/kernel/fx"])


def test_a_failed_write_is_one_line_and_leaves_no_file(tmp_path, capsys, monkeypatch):
    from simulator.results import RequestRecords

    def full_disk(self, path):
        raise OSError(28, "No space left on device")

    out_dir = tmp_path / "new" / "run"
    monkeypatch.setattr(RequestRecords, "write_csv", full_disk)
    err = cli_error(capsys, ["run", "--requests", "300", "--out", str(out_dir)])
    assert "cannot write" in err and "requests.csv: No space left on device" in err
    assert list(tmp_path.iterdir()) == []                   # nor the folders it made for --out
    (tmp_path / "kept").mkdir()
    cli_error(capsys, ["run", "--requests", "300", "--out", str(tmp_path / "kept")])
    assert (tmp_path / "kept").is_dir()                     # a folder that was there stays


def test_run_out_is_replaced_as_one_set(tmp_path, capsys, monkeypatch):
    from simulator.results import BatchRecords

    out_dir = tmp_path / "run"
    assert main(["run", "--requests", "300", "--out", str(out_dir)]) == 0
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    monkeypatch.setattr(BatchRecords, "write_csv", lambda self, path: (_ for _ in ()).throw(OSError(5, "I/O error")))
    assert main(["run", "--requests", "200", "--seed", "1", "--out", str(out_dir)]) == 2
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before     # nothing of the failed run
    monkeypatch.undo()
    assert main(["run", "--requests", "200", "--out", str(out_dir), "--no-record-batches"]) == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["requests.csv", "summary.json"]    # no stale batches.csv
    capsys.readouterr()


# --------------------------------------------------------------------------- the command line itself

@pytest.mark.parametrize("argv, changed", [
    (["run", "--thresholds", "-inf,0.5,0.2,0.2,0.2"], "thresholds"),
    (["run", "--thresholds", "-0.5,-inf,0.2,0.2,0.2"], "thresholds"),
    (["optimize", "--exit-fractions", "-0.1,0.2"], "exit_fractions"),
])
def test_negative_values_after_a_space(argv, changed):
    from simulator.cli import _value_options, build_parser, join_negative_values

    parser = build_parser()
    args = parser.parse_args(join_negative_values(argv, _value_options(parser)))
    assert getattr(args, changed) == argv[2]


def test_negative_thresholds_run(capsys):
    assert main(["run", "--requests", "300", "--thresholds", "-inf,0.5,0.2,0.2,0.2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mean_stages"] == 1.0
    assert "invalid speed_noise = -1.0,2.0" in cli_error(capsys, ["run", "--speed-noise", "-1,2"])


def test_closed_stdout_ends_quietly():
    child = subprocess.Popen([sys.executable, "-m", "simulator.cli", "run", "--requests", "300", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child.stdout.close()                      # like `| head` that has exited
    with child.stderr:
        err = child.stderr.read()
    assert child.wait() == 1
    assert "Traceback" not in err and "BrokenPipeError" not in err, err


def test_run_help_shows_each_default_once(capsys):
    from simulator.logits import BUILTIN_CACHES

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in out and "trace's length) (default" not in out
    assert f"built-in name ({', '.join(BUILTIN_CACHES)})" in out


def test_text_file_as_logits(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("not an archive\n")
    assert "is not an .npz file" in cli_error(capsys, ["run", "--logits", str(path)])


def test_a_rename_failing_part_way_puts_the_earlier_run_back(tmp_path, capsys):
    # a directory where one of the outputs goes: the rename of that file fails after the others were replaced
    out_dir = tmp_path / "run"
    assert main(["run", "--requests", "300", "--out", str(out_dir), "--no-record-batches"]) == 0
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    (out_dir / "batches.csv").mkdir()
    err = cli_error(capsys, ["run", "--requests", "200", "--seed", "1", "--out", str(out_dir)])
    assert "batches.csv" in err
    (out_dir / "batches.csv").rmdir()
    assert {p.name: p.read_bytes() for p in out_dir.iterdir()} == before
    assert main(["run", "--requests", "300", "--out", str(tmp_path / "new")]) == 0
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / "summary.json").mkdir()
    cli_error(capsys, ["run", "--requests", "200", "--out", str(tmp_path / "fresh")])
    assert [p.name for p in (tmp_path / "fresh").iterdir()] == ["summary.json"]       # only the directory


def test_more_bad_input_is_named(tmp_path, capsys, monkeypatch):
    config = tmp_path / "c.toml"
    config.write_text("seed = 3\n[run]\nrequests = 50\n")
    assert "seed outside the [run] table" in cli_error(capsys, ["run", str(config)])
    assert "',' has an empty item" in cli_error(capsys, ["run", "--policy", ","])
    assert "'threshold,' has an empty item" in cli_error(capsys, ["run", "--policy", "threshold,"])
    assert "distinct member indices" in cli_error(capsys, ["run", "--members", "0,0,1", "--thresholds", "0.5,0.5"])
    assert "numbers in [0, 1]" in cli_error(capsys, ["run", "--thresholds", "1.5,0.8,0.6,0.4,0.2"])
    assert "thresholds lie in [0, 1]" in cli_error(capsys, ["run", "--policy", "load-adaptive", "--load-levels",
                                                            "0:6:2/1/1/1/1"])
    config.write_text('policy = "threshold,deadline"\n')
    assert cli_error(capsys, ["run", str(config)]).endswith(
        "policy = 'threshold,deadline' is one string; write a TOML array, e.g. policy = [\"threshold\", \"deadline\"]")
    err = cli_error(capsys, ["run", "--policy", "load-adaptive", "--load-levels", "0:6;99999999999999999999:1"])
    assert "QLEN must be from 0 to 2147483647" in err
    import simulator.profiles

    monkeypatch.setenv("FLEXSIM_PROFILES", str(tmp_path / "nowhere"))
    monkeypatch.setattr(simulator.profiles, "PROFILES_DIR", tmp_path / "nowhere")
    assert "FLEXSIM_PROFILES = " in cli_error(capsys, ["profiles"])


def test_paths_no_file_system_takes_are_named(tmp_path):
    from simulator import simulate
    from simulator.config import RunConfig
    from simulator.errors import FlexsimError
    from simulator.run import write_outputs

    config = RunConfig(requests=50)
    result = simulate(config)
    for out, message in ((str(tmp_path / "a\0b"), "a path cannot hold a NUL"),
                         (str(tmp_path / ("x" * 300)), "is longer than 255 bytes"), (5, "not a path")):
        with pytest.raises(FlexsimError, match=message):
            write_outputs(result, out, config)
    assert list(tmp_path.iterdir()) == []


def test_profiles_says_when_its_folder_holds_none(tmp_path, capsys, monkeypatch):
    import simulator.profiles

    monkeypatch.setattr(simulator.profiles, "PROFILES_DIR", tmp_path)
    assert main(["profiles"]) == 0
    assert capsys.readouterr().out.startswith(f"no profiles in {tmp_path}")


def test_a_stale_file_that_cannot_go_leaves_the_earlier_run_in_place(tmp_path, capsys):
    # --no-record-batches removes an earlier batches.csv in the same step as the renames: a directory there makes the
    # step fail, and the files it had replaced get their earlier content back
    out_dir = tmp_path / "run"
    assert main(["run", "--requests", "300", "--out", str(out_dir), "--no-record-batches"]) == 0
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    (out_dir / "batches.csv").mkdir()
    assert "batches.csv" in cli_error(capsys, ["run", "--requests", "200", "--seed", "2", "--out", str(out_dir),
                                               "--no-record-batches"])
    assert {p.name: p.read_bytes() for p in out_dir.iterdir() if p.is_file()} == before
