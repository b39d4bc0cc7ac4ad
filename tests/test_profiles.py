"""Profile files: parsing, validation errors, latency distributions, interpolation, shipped profiles."""

import copy
import dataclasses
import json

import numpy as np
import pytest

from simulator.errors import FlexsimError
from simulator.profiles import (GRID, LatencyDistribution, load_profile, parse_profile, save_profile,
                                shipped_profiles)

VALID = {
    "schema_version": 1, "name": "t", "device": {"name": "dev", "kind": "cpu"}, "idle_power_w": 10.0,
    "decision_overhead_ms": 0.02, "provenance": {"source": "measured", "method": "test"},
    "models": {"m": {"batches": {"1": {"latency_ms": {"samples": [1.0, 2.0, 3.0]}, "energy_j": 0.1},
                                 "4": {"latency_ms": {"quantiles": {"0.1": 2.0, "0.5": 3.0, "0.9": 5.0}},
                                       "energy_j": 0.4}}}},
}


def test_valid_profile_parses_and_round_trips(tmp_path):
    p = parse_profile(copy.deepcopy(VALID))
    assert p.kind == "cpu" and set(p.models["m"].batches) == {1, 4}
    save_profile(tmp_path / "t.json", p)
    q = load_profile(tmp_path / "t.json")
    assert np.array_equal(q.entry("m", 1).latency.icdf_ms(), p.entry("m", 1).latency.icdf_ms())


def _broken(path, value):
    obj = copy.deepcopy(VALID)
    node = obj
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return obj


@pytest.mark.parametrize("path, value, message", [
    (("schema_version",), 2, "schema_version = 2"),
    (("schema_version",), KeyError, "schema_version = None"),
    (("device", "kind"), "phone", "device.kind"),
    (("models",), {}, "models must be a non-empty"),
    (("idle_power_w",), -1.0, "idle_power_w"),
    (("decision_overhead_ms",), "x", "decision_overhead_ms"),
    (("models", "m", "batches", "1", "latency_ms", "samples"), [1.0, float("nan")], r"samples\[1\]"),
    (("models", "m", "batches", "1", "latency_ms", "samples"), [1.0, -2.0], r"samples\[1\]"),
    (("models", "m", "batches", "1", "latency_ms", "samples"), [], "non-empty list"),
    (("models", "m", "batches", "1", "energy_j"), -0.1, "energy_j"),
    (("models", "m", "batches", "4", "latency_ms", "quantiles"), {"0.1": 5.0, "0.5": 3.0}, "must not decrease"),
    (("models", "m", "batches", "4", "latency_ms", "quantiles"), {"1.5": 5.0}, r"lie in \(0, 1\)"),
    (("models", "m", "batches", "0"), {"latency_ms": {"samples": [1.0]}}, "batch size '0'"),
    (("provenance", "source"), "guessed", "provenance.source"),
    (("models", "m", "batches", "²"), {"latency_ms": {"samples": [1.0]}}, "batch size '²'"),
    (("models", "m", "batches", "9" * 400), {"latency_ms": {"samples": [1.0]}}, "must be an integer from 1 to 1048576"),
    (("device", "threads"), "abc", "device.threads = 'abc' must be an integer"),
    (("models", "m", "batches", "1", "latency_ms", "samples"), [1e308], r"samples\[0\] = 1e\+308 must be .* <= 1e\+09"),
    (("models", "m", "batches", "4", "latency_ms", "quantiles"), {"0.5": 1e12}, "<= 1e"),
    (("default_stage_models",), [["m"]], "default_stage_models must list models of this profile"),
    (("schema_version",), 1.0, "schema_version = 1.0 is not supported"),
    (("schema_version",), True, "schema_version = True is not supported"),
    (("models", "m", "batches", "4", "latency_ms", "quantiles"), {"0.5": 1.0, "0.50": 2.0}, "appears twice"),
    (("decision_overhead_ms",), 1e308, "decision_overhead_ms = 1e\\+308 must be a number from 0 to"),
    (("dispatch_overhead_ms",), 1e308, "dispatch_overhead_ms = 1e\\+308 must be a number from 0 to"),
    (("idle_dispatch_ms",), -0.1, "idle_dispatch_ms = -0.1 must be a number from 0 to .* or null"),
    (("release_cost_ms",), None, "release_cost_ms = None must be a number from 0 to"),
    (("idle_power_w",), 10 ** 400, "idle_power_w = .* must be a number from 0 to"),
    (("models", "m", "batches", "1", "energy_j"), 1e308, "energy_j = 1e\\+308 must be a number from 0 to"),
    (("wakeup",), {"idle_ms": [1.0], "factor": [1e300]}, r"wakeup.factor\[0\] = 1e\+300 must be"),
])
def test_invalid_profiles_name_the_field(path, value, message):
    with pytest.raises(FlexsimError, match=message):
        parse_profile(_broken(path, value), origin="x.json")


def test_malformed_and_missing_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(FlexsimError, match="is not valid JSON"):
        load_profile(bad)
    bad.write_text("[" * 100_000)
    with pytest.raises(FlexsimError, match="nested too deeply"):
        load_profile(bad)
    bad.write_bytes(b'{"name": "caf\xe9"}')
    with pytest.raises(FlexsimError, match="not a UTF-8 text file"):
        load_profile(bad)
    with pytest.raises(FlexsimError, match="unknown profile name 'nope'"):
        load_profile("nope")
    with pytest.raises(FlexsimError, match="does not exist"):
        load_profile(tmp_path / "missing.json")


def test_missing_model_and_batch_sizes():
    p = parse_profile(copy.deepcopy(VALID))
    with pytest.raises(FlexsimError, match="has no model 'x'"):
        p.entry("x", 1)
    with pytest.raises(FlexsimError, match="no batch size 8"):
        p.entry("m", 8)


def test_interpolation_between_measured_batch_sizes_is_monotone():
    p = parse_profile(copy.deepcopy(VALID))
    lo, mid, hi = (p.entry("m", b) for b in (1, 2, 4))
    assert mid.extra["interpolated_from"] == [1, 4]
    assert np.all(lo.latency.icdf_ms() <= mid.latency.icdf_ms() + 1e-12)
    assert np.all(mid.latency.icdf_ms() <= hi.latency.icdf_ms() + 1e-12)
    assert mid.energy_j == pytest.approx(0.1 + (0.4 - 0.1) / 3)


def test_empirical_samples_are_resampled_exactly():
    d = LatencyDistribution(samples_ms=np.array([1.0, 2.0, 3.0, 4.0]))
    table = d.icdf_ms()
    assert table.shape == (GRID,)
    assert set(np.unique(table)) == {1.0, 2.0, 3.0, 4.0}
    assert np.mean(table) == pytest.approx(2.5)


def test_quantiles_interpolate_and_extend_without_going_negative():
    d = LatencyDistribution(quantile_probs=np.array([0.1, 0.5, 0.9]), quantile_ms=np.array([1.0, 2.0, 10.0]))
    assert d.icdf_ms(np.array([0.5]))[0] == pytest.approx(2.0)
    assert d.icdf_ms(np.array([0.3]))[0] == pytest.approx(1.5)
    table = d.icdf_ms()
    assert table.min() >= 0 and np.all(np.diff(table) >= 0)
    assert table.max() > 10.0


def test_shipped_h100_profile_has_graph_members_and_eager_table():
    assert "h100" in shipped_profiles()
    p = load_profile("h100")
    assert p.kind == "datacenter" and p.provenance["source"] == "measured"
    assert p.default_stage_models == tuple(f"resnet50-fp16-graph-m{i}" for i in range(6))
    for b in range(1, 17):
        assert p.entry("resnet50-fp16-graph-m3", b).energy_j > 0
    assert set(p.models["resnet50-fp32-eager"].batches) == {1, 2, 4, 8, 16, 32, 64}
    raw = json.loads((shipped_profiles()["h100"].parent / "raw" / "h100-2026-11-24.json").read_text())
    assert p.entry("resnet50-fp16-graph-m0", 1).latency.quantile_ms[1] == raw["resnet50_fp16_cuda_graph"][
        "host_ms"]["0_1"]["p50"]


def test_optional_timing_fields_parse_and_round_trip(tmp_path):
    obj = copy.deepcopy(VALID)
    obj["dispatch_overhead_ms"] = 0.01
    obj["idle_dispatch_ms"] = 0.1
    obj["release_cost_ms"] = 0.07
    obj["wakeup"] = {"idle_ms": [1.0, 5.0], "factor": [1.3, 1.8], "decay": 0.7}
    obj["member_idle"] = {"idle_ms": [2.0, 8.0], "factor": [1.02, 1.15]}
    obj["speed_noise"] = {"sigma": 0.1, "correlation_ms": 40.0}
    obj["models"]["m"]["decision_overhead_ms"] = 0.2
    p = parse_profile(obj)
    assert p.dispatch_overhead_ms == 0.01 and p.idle_dispatch_ms == 0.1 and p.release_cost_ms == 0.07
    assert p.wakeup == ((1.0, 5.0), (1.3, 1.8)) and p.wakeup_decay == 0.7
    assert p.member_idle == ((2.0, 8.0), (1.02, 1.15))
    assert p.speed_noise.sigma == 0.1 and p.speed_noise.correlation_ms == 40.0
    assert p.decision_overhead_for("m") == 0.2 and p.decision_overhead_for("other") == 0.02
    save_profile(tmp_path / "p.json", p)
    assert load_profile(tmp_path / "p.json").to_json() == p.to_json()


@pytest.mark.parametrize("wakeup, message", [
    ({"idle_ms": [1.0], "factor": []}, "same, non-zero length"),
    ({"idle_ms": [0.0], "factor": [1.5]}, r"wakeup.idle_ms\[0\]"),
    ({"idle_ms": [2.0, 1.0], "factor": [1.5, 2.0]}, "must increase"),
    ({"idle_ms": [1.0], "factor": [-1.0]}, r"wakeup.factor\[0\]"),
    ([1, 2], "wakeup must be an object"),
    ({"idle_ms": [1.0], "factor": [1.5], "decay": 1.0}, r"wakeup.decay = 1.0 must be a number in \[0, 1\)"),
    ({"idle_ms": [1.0], "factor": [1.5], "decay": -0.5}, "wakeup.decay"),
])
def test_bad_wakeup_tables_are_named(wakeup, message):
    obj = copy.deepcopy(VALID)
    obj["wakeup"] = wakeup
    with pytest.raises(FlexsimError, match=message):
        parse_profile(obj)


@pytest.mark.parametrize("table, message", [
    ({"idle_ms": [1.0, 2.0], "factor": [1.5]}, "member_idle.idle_ms and member_idle.factor must have the same"),
    ({"idle_ms": [float("nan")], "factor": [1.5]}, r"member_idle.idle_ms\[0\]"),
    ({"idle_ms": [1.0], "factor": [0.0]}, r"member_idle.factor\[0\]"),
    ("cold", "member_idle must be an object"),
])
def test_bad_member_idle_tables_are_named(table, message):
    obj = copy.deepcopy(VALID)
    obj["member_idle"] = table
    with pytest.raises(FlexsimError, match=message):
        parse_profile(obj)


def test_save_profile_takes_numpy_numbers_and_names_what_json_cannot_hold(tmp_path):
    import dataclasses

    import numpy as np

    p = parse_profile(copy.deepcopy(VALID))
    with_numpy = dataclasses.replace(p, idle_power_w=np.float32(5.0), dispatch_overhead_ms=np.float64(0.01),
                                     provenance={**p.provenance, "rounds": np.int64(3), "ms": np.arange(2.0)})
    save_profile(tmp_path / "p.json", with_numpy)
    back = load_profile(tmp_path / "p.json")
    assert back.idle_power_w == 5.0 and back.provenance["rounds"] == 3 and back.provenance["ms"] == [0.0, 1.0]
    odd = dataclasses.replace(p, provenance={**p.provenance, "when": object()})
    with pytest.raises(FlexsimError, match="cannot write a value of type object as JSON"):
        save_profile(tmp_path / "odd.json", odd)
    assert not (tmp_path / "odd.json").exists()


def test_a_profile_is_parsed_once_while_unchanged_and_again_once_rewritten(tmp_path):
    path = tmp_path / "p.json"
    save_profile(path, load_profile("h100"))
    first = load_profile(path)
    assert load_profile(path) is first and load_profile("h100") is load_profile("h100")
    save_profile(path, dataclasses.replace(first, name="renamed"))
    assert load_profile(path).name == "renamed"


def test_profiles_says_which_profiles_have_energy_for_a_simulation(capsys):
    from simulator.cli import main

    assert main(["profiles", "h200", "h100", "cpu-amd-epyc-2c"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "models, " in line]
    assert [line.split("models, ")[1] for line in lines] == ["energy]", "energy for some models]", "no energy]"]


def test_an_interpolated_batch_size_has_every_quantile_interpolated_exactly():
    """The contract interpolates an unmeasured batch size linearly per quantile: at any probability (the deadline
    estimate's), not only on the engines' 1024-point grid (which put the median of the blend of 1-2 ms and 3-6 ms
    at 2.99878 ms instead of 3)."""
    from simulator.inputs import device_tables

    spec = copy.deepcopy(VALID)
    spec["models"]["m"]["batches"] = {"1": {"latency_ms": {"quantiles": {"0.1": 1.0, "0.9": 2.0}}, "energy_j": 0.1},
                                      "3": {"latency_ms": {"quantiles": {"0.1": 3.0, "0.9": 6.0}}, "energy_j": 0.3}}
    p = parse_profile(spec)
    for q in (0.0, 0.3, 0.5, 0.9, 1.0):
        ends = [p.entry("m", b).latency.icdf_ms(np.array([q]))[0] for b in (1, 3)]
        assert p.entry("m", 2).latency.icdf_ms(np.array([q]))[0] == pytest.approx(sum(ends) / 2, abs=1e-12)
        assert device_tables(p, ["m"], 3, q).est_latency_s[0, 1] * 1000 == pytest.approx(sum(ends) / 2, abs=1e-12)
    grid = p.entry("m", 2).latency.icdf_ms()      # what the engines draw from: the blend on the grid
    assert np.allclose(grid, (p.entry("m", 1).latency.icdf_ms() + p.entry("m", 3).latency.icdf_ms()) / 2)
