"""The run configuration: declarative validation, TOML files, flags, and preparing inputs from it."""

import math

import numpy as np
import pytest

from simulator.config import RunConfig, from_mapping, load_toml, parse_flag
from simulator.errors import FlexsimError
from simulator.run import prepare


@pytest.mark.parametrize("changes, message", [
    (dict(combiner="median"), "invalid combiner = 'median'"),
    (dict(signal="gini"), "invalid signal"),
    (dict(policy=("threshold", "magic")), "invalid policy = threshold,magic"),
    (dict(deadline_ms=0.0), "invalid deadline_ms = 0.0"),
    (dict(deadline_ms=-5.0), "invalid deadline_ms"),
    (dict(requests=0), "invalid requests = 0"),
    (dict(batch_size=0), "invalid batch_size"),
    (dict(devices=0), "invalid devices"),
    (dict(members=()), "invalid members"),
    (dict(members=(0, -1)), "invalid members"),
    (dict(thresholds=(0.5, "a")), "invalid thresholds"),
    (dict(seed=-1), "invalid seed"),
    (dict(engine="gpu"), "invalid engine"),
    (dict(queue="lifo"), "invalid queue"),
    (dict(profile=("h100", "h100"), devices=3), "2 profiles given for devices = 3"),
])
def test_invalid_fields_are_named(changes, message):
    with pytest.raises(FlexsimError, match=message):
        RunConfig(**changes)


def test_toml_file_and_unknown_keys(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[run]\nmembers = [0, 1, 2]\nthresholds = [0.5, inf]\ndeadline_ms = 4.0\n')
    config = from_mapping(load_toml(path))
    assert config.members == (0, 1, 2) and config.thresholds == (0.5, math.inf) and config.deadline_ms == 4.0
    with pytest.raises(FlexsimError, match="unknown field"):
        from_mapping({"memebers": [0]})
    path.write_text("members = [0,\n")
    with pytest.raises(FlexsimError, match="malformed TOML"):
        load_toml(path)


def test_flags_parse_into_field_types():
    assert parse_flag("thresholds", "0.5,inf,-inf") == (0.5, math.inf, -math.inf)
    assert parse_flag("members", "0,1,7") == (0, 1, 7)
    assert parse_flag("static_k", "none") is None
    with pytest.raises(FlexsimError, match="invalid thresholds = '0.5,x'"):
        parse_flag("thresholds", "0.5,x")
    with pytest.raises(FlexsimError, match="invalid requests"):
        parse_flag("requests", "1.5")


@pytest.mark.parametrize("changes, message", [
    (dict(members=(0, 9)), r"invalid members\[1\] = 9"),
    (dict(thresholds=(0.5,)), "1 values given for 6 stages"),
    (dict(profile=("tpu",)), "unknown profile name 'tpu'"),
    (dict(logits="cifar"), "unknown cache name"),
    (dict(models=("nope",)), "has no model 'nope'"),
    (dict(policy=("static",)), "policy static needs static_k"),
    (dict(policy=("deadline",)), "policy deadline needs a finite deadline_ms"),
    (dict(policy=("energy",)), "policy energy needs a finite energy_budget_j"),
    (dict(batch_size=32), "measured up to batch size 16, but batch_size = 32"),
    (dict(arrivals="trace:/nonexistent.csv"), "does not exist"),
])
def test_prepare_names_what_is_wrong(changes, message):
    with pytest.raises(FlexsimError, match=message):
        prepare(RunConfig(requests=100, **changes))


def test_trace_requests_and_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("arrival_s,deadline_ms,sample\n0.0,5,3\n0.001,7,1\n0.002,9,0\n")
    inputs = prepare(RunConfig(arrivals=f"trace:{path}"))
    assert inputs.n_requests == 3 and list(inputs.sample) == [3, 1, 0]
    assert np.allclose(inputs.deadline_s, [0.005, 0.007, 0.009])
    with pytest.raises(FlexsimError, match="the trace has only 3 arrivals"):
        prepare(RunConfig(arrivals=f"trace:{path}", requests=5))
    path.write_text("arrival_s,sample\n0.0,10000\n")
    with pytest.raises(FlexsimError, match="outside the cache's 10000 samples"):
        prepare(RunConfig(arrivals=f"trace:{path}"))


def test_load_rate_hits_the_utilisation():
    from simulator.run import run_inputs

    result = run_inputs(prepare(RunConfig(requests=40_000, arrivals="poisson:load=0.6", seed=3)))
    assert abs(result.summary.utilisation - 0.6) < 0.03


def test_seeds_separate_streams():
    a = prepare(RunConfig(requests=50, seed=1))
    b = prepare(RunConfig(requests=50, seed=1, thresholds=(0.9, 0.9, 0.9, 0.9, 0.9), arrivals="poisson:300"))
    assert np.array_equal(a.draw, b.draw) and np.array_equal(a.sample, b.sample)
    c = prepare(RunConfig(requests=50, seed=2))
    assert not np.array_equal(a.draw, c.draw)


@pytest.mark.parametrize("content, message", [
    (None, "is a directory, not a file"),
    (b"\xff\xfe\x00 = 1\n", "not a UTF-8 text file"),
    (b"run = 5\n", "run must be a table"),
])
def test_unreadable_toml_files_are_named(tmp_path, content, message):
    path = tmp_path / "c.toml"
    path.mkdir() if content is None else path.write_bytes(content)
    with pytest.raises(FlexsimError, match=message):
        load_toml(path)


def test_trace_columns_satisfy_the_deadline_and_energy_policies(tmp_path):
    from simulator.run import run_inputs

    path = tmp_path / "t.csv"
    rows = [f"{0.01 * i},{0.001 if i % 2 else 1000},{1e-9 if i % 2 else 1e3}" for i in range(200)]
    path.write_text("arrival_s,deadline_ms,energy_budget_j\n" + "\n".join(rows) + "\n")
    never = (math.inf,) * 5
    for policy in ("deadline", "energy"):
        stages = run_inputs(prepare(RunConfig(arrivals=f"trace:{path}", thresholds=never,
                                              policy=("threshold", policy)))).requests.stages_run
        assert list(stages[:2]) == [6, 1], policy     # each request's own deadline / budget
    path.write_text("arrival_s\n0\n")
    with pytest.raises(FlexsimError, match="or a trace column deadline_ms"):
        prepare(RunConfig(arrivals=f"trace:{path}", policy=("deadline",)))


def test_parse_flag_reads_booleans_strictly_and_names_unknown_fields():
    from simulator.config import parse_flag
    from simulator.errors import FlexsimError

    assert parse_flag("use_cost_scale", "false") is False and parse_flag("record_batches", "Yes") is True
    with pytest.raises(FlexsimError, match="invalid use_cost_scale = 'maybe': must be one of"):
        parse_flag("use_cost_scale", "maybe")
    with pytest.raises(FlexsimError, match="parse_flag: unknown field"):
        parse_flag("nosuch", "1")


def test_lists_arrays_paths_and_numpy_numbers_are_taken_as_the_fields_forms(tmp_path):
    """What a user passes from Python: normalised to the field's form, then validated as usual."""
    from pathlib import Path

    config = RunConfig(requests=np.int64(2000), members=[0, 1, 2], thresholds=np.array([0.5, 0.4]),
                       profile=(Path("profiles") / "h100.json",), deadline_ms=np.float32(5.0))
    assert config.requests == 2000 and type(config.requests) is int and config.members == (0, 1, 2)
    assert config.thresholds == (0.5, 0.4) and config.profile == (str(Path("profiles") / "h100.json"),)
    assert RunConfig(**config.to_dict()) == config


def test_an_error_shows_at_most_80_characters_of_the_value():
    from simulator.profiles import load_profile

    with pytest.raises(FlexsimError) as exc:
        RunConfig(profile=load_profile("h100"))
    assert len(str(exc.value)) < 200 and "...: must be" in str(exc.value)
    with pytest.raises(FlexsimError, match="invalid requests = 1000000.*: must be an integer >= 1"):
        RunConfig(requests=10 ** 400)


def test_summary_config_loads_back_with_its_infinite_values(tmp_path, capsys):
    """summary.json writes infinite values of its config as "inf" strings (JSON has no infinity); from_mapping reads
    them back: the mapping gives the run's configuration again."""
    import json

    from simulator.cli import main
    from simulator.config import NUMBER_FIELDS, RunConfig, config_fields, from_mapping

    assert set(NUMBER_FIELDS) <= {f.name for f in config_fields()}
    argv = ["run", "--requests", "50", "--thresholds", "inf,0.5,-inf,0.2,0.2", "--out", str(tmp_path / "r")]
    assert main(argv) == 0
    config = json.loads((tmp_path / "r" / "summary.json").read_text())["config"]
    assert config["deadline_ms"] == "inf" and config["thresholds"][:3] == ["inf", 0.5, "-inf"]
    assert from_mapping(config) == RunConfig(requests=50, thresholds=(float("inf"), 0.5, -float("inf"), 0.2, 0.2),
                                             out=str(tmp_path / "r"))


def test_simulate_records_the_engine_it_ran_on(tmp_path):
    """``simulate(engine="simpy", out=...)``: summary.json's config names the engine that ran, so that reading the
    config back re-makes that run (it said numba, the default, while its summary said simpy)."""
    import json

    from simulator import simulate

    simulate(requests=30, engine="simpy", out=str(tmp_path / "r"))
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["engine"] == "simpy" and summary["config"]["engine"] == "simpy"
    assert from_mapping(summary["config"]).engine == "simpy"
