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


def test_profiles_lists_the_shipped_profiles(capsys):
    assert main(["profiles"]) == 0
    assert "h100" in capsys.readouterr().out
