"""The optimiser against the simulator (replaying its chosen thresholds), its exports, and ``flexsim optimize``."""

import numpy as np
import pytest

from simulator import simulate
from simulator.cli import main
from simulator.commands.run import config_from_args
from simulator.config import RunConfig, from_mapping, load_toml
from simulator.errors import FlexsimError
from simulator.logits import LogitCache, load_cache, save_cache
from simulator.optimize import (Tann, build_problem, evaluate, run_command, search, toml_snippet,
                                train_and_test, training_split)
from simulator.run import mean_service_s, prepare
from tests.helpers import ROOT, cli_error, python_blocks


@pytest.fixture(scope="module")
def small_cache(tmp_path_factory):
    """2000 training samples of the shipped ensemble, with a per-input cost_scale."""
    full = load_cache("fmnist-train")
    scale = np.random.default_rng(0).uniform(0.5, 1.5, size=(full.n_members, 2000))
    path = tmp_path_factory.mktemp("cache") / "small_train.npz"
    save_cache(path, LogitCache(logits=full.logits[:, :2000], labels=full.labels[:2000], cost_scale=scale,
                                model_names=full.model_names))
    return str(path)


@pytest.mark.parametrize("members, combiner, signal, method", [
    ((0, 1, 2, 3, 4, 5), "mean", "margin", "grid"),
    ((0, 1, 2, 3), "mean", "entropy", "descent"),
    ((6, 0, 7), "last", "maxprob", "grid"),
    ((6, 0, 7), "mean", "margin", "descent"),
])
def test_predictions_equal_the_simulators_replay(small_cache, members, combiner, signal, method):
    config = RunConfig(logits=small_cache, members=members, combiner=combiner, signal=signal)
    problem = build_problem(config)
    point = search(problem, Tann(5.0), method).point
    replay = RunConfig(**{**config.to_dict(), "thresholds": point.thresholds, "sample_order": "cyclic",
                          "requests": problem.n_samples, "arrivals": "closed:1"})
    summary = simulate(replay).summary
    assert summary.accuracy == point.accuracy
    assert summary.mean_stages == point.mean_stages
    inputs = prepare(replay)
    service_ms = 1000 * mean_service_s(inputs.stages, inputs.cost_scale, inputs.devices, inputs.policy)
    assert point.latency_ms == pytest.approx(service_ms, rel=1e-12)


def test_full_training_split_replays_exactly():
    config = RunConfig(logits="fmnist-train")
    problem = build_problem(config)
    point = search(problem, Tann(10.0)).point
    summary = simulate(config, thresholds=point.thresholds, requests=problem.n_samples, arrivals="closed:1",
                       record_batches=False).summary
    assert (summary.accuracy, summary.mean_stages) == (point.accuracy, point.mean_stages)


def test_printed_command_and_toml_give_the_same_thresholds(tmp_path):
    config = RunConfig(members=(0, 1, 2, 3), combiner="last", profile=("h100",))
    thresholds = (-np.inf, 0.125, np.inf)
    words = run_command(config, thresholds).split()
    assert words[:2] == ["flexsim", "run"]
    from simulator.cli import build_parser
    parsed = config_from_args(build_parser().parse_args(words[1:]))
    assert parsed.thresholds == thresholds and parsed.members == config.members and parsed.combiner == "last"
    (tmp_path / "chosen.toml").write_text(toml_snippet(config, thresholds, ["a comment"]))
    from_toml = from_mapping(load_toml(tmp_path / "chosen.toml"))
    assert from_toml.thresholds == thresholds and from_toml.policy == ("threshold",)


def test_training_split_of_caches(tmp_path):
    assert training_split("fmnist") == "fmnist-train"
    (tmp_path / "x_test.npz").write_bytes(b"")
    (tmp_path / "x_train.npz").write_bytes(b"")
    assert training_split(str(tmp_path / "x_test.npz")) == str(tmp_path / "x_train.npz")
    (tmp_path / "y.npz").write_bytes(b"")
    with pytest.raises(FlexsimError, match="has no training split"):
        training_split(str(tmp_path / "y.npz"))
    with pytest.raises(FlexsimError, match="unknown cache name 'nosuch'"):
        training_split("nosuch")
    with pytest.raises(FlexsimError, match="is the training split .* itself"):
        train_and_test(RunConfig(logits="fmnist-train"), "fmnist-train")


def test_optimize_out_is_written_as_one_set(tmp_path, capsys):
    out = tmp_path / "opt"
    out.mkdir()
    (out / "frontier-latency.png").mkdir()                  # the last file cannot be written
    assert "frontier-latency.png" in cli_error(capsys, ["optimize", "--grid-points", "3", "--out", str(out)])
    assert [p.name for p in out.iterdir()] == ["frontier-latency.png"]


def test_a_later_run_without_energy_leaves_no_energy_frontier_behind(tmp_path, capsys):
    out = tmp_path / "opt"
    assert main(["optimize", "--grid-points", "3", "--out", str(out)]) == 0
    assert (out / "frontier-energy.csv").is_file()
    assert main(["optimize", "--grid-points", "3", "--profile", "rpi5", "--out", str(out)]) == 0   # no energy
    assert sorted(p.name for p in out.iterdir()) == ["chosen.toml", "frontier-latency.csv", "frontier-latency.png",
                                                    "summary.json"]


def test_training_and_held_out_caches_of_different_ensembles_are_refused(tmp_path, capsys):
    full = load_cache("fmnist")
    five = LogitCache(logits=full.logits[:, :, :5], labels=np.minimum(full.labels, 4), model_names=full.model_names)
    save_cache(tmp_path / "five.npz", five)
    other = LogitCache(logits=full.logits, labels=full.labels, model_names=("x",) + full.model_names[1:])
    save_cache(tmp_path / "other.npz", other)
    args = ["optimize", "--grid-points", "3", "--train-logits", "fmnist-train", "--out", str(tmp_path / "o")]
    assert cli_error(capsys, [*args, "--logits", str(tmp_path / "five.npz")]).endswith("differ: 10 classes against 5")
    assert "differ: member 0 is fmnist-cnn-w32 against x" in cli_error(capsys, [*args, "--logits",
                                                                                 str(tmp_path / "other.npz")])
    assert not (tmp_path / "o").exists()


def test_optimize_command_writes_its_outputs(tmp_path, capsys):
    out = tmp_path / "opt"
    assert main(["optimize", "--lambda", "10", "--compare", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "held out" in text and "J(descent) - J(grid)" in text
    assert text.strip().splitlines()[-1].startswith("flexsim run --logits fmnist ")
    for name in ("chosen.toml", "summary.json", "frontier-latency.csv", "frontier-latency.png",
                 "frontier-energy.csv", "frontier-energy.png"):
        assert (out / name).stat().st_size > 0
    chosen = from_mapping(load_toml(out / "chosen.toml"))
    train, test = train_and_test(chosen)
    rows = (out / "frontier-latency.csv").read_text().splitlines()
    assert rows[0].startswith("T0,T1,T2,T3,T4,accuracy,latency_ms")
    assert evaluate(test, chosen.thresholds).accuracy == pytest.approx(
        float(text.split("held out")[2].split()[0]), abs=1e-5)


@pytest.mark.parametrize("args, message", [
    (["--lambda", "-1"], "invalid lambda"),
    (["--max-drop", "1.5"], "invalid max_drop"),
    (["--grid-points", "0"], "invalid grid points"),
    (["--grid-points", "1"], "invalid grid points = 1: need an integer from 2"),
    (["--grid-values", "a,b"], "invalid --grid-values"),
    (["--grid-values", "0.5,1.5"], "invalid grid: thresholds lie in [0, 1]"),
    (["--logits", "fmnist-train"], "has no training split"),
    (["--members", "0,1,9"], "invalid members[2] = 9"),
    (["--exit-fractions", "0.5,0.5"], "2 values given for 6 stages"),
    (["--method", "descent", "--budget", "2"], "descent method"),
    (["--cost", "power"], "invalid cost"),
    (["--profile", "h100,h100"], "give one profile"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "opt"
    assert message in cli_error(capsys, ["optimize", *args, "--out", str(out)])
    assert not out.exists()


def test_optimizer_doc_example_runs(capsys):
    namespace = {}
    exec(compile(python_blocks(ROOT / "docs" / "optimizer.md"), "optimizer.md", "exec"), namespace)
    assert namespace["held_out"].accuracy >= namespace["test"].accuracy_full - 0.001
    assert "--thresholds=" in capsys.readouterr().out
