"""The kernel model of the cost model: mapping traced kernels to microbenchmark families, the predictor, the call
parameters, the committed microbenchmark table and leave-one-architecture-out with it. No timing is measured here."""

import json

import numpy as np
import pytest

from simulator.costmodel.accuracy import leave_one_architecture_out_kernels
from simulator.costmodel.kernels import (FAMILIES, CallParams, KernelPredictor, KernelTable, call_ms, cross_validate,
                                         features, fit_call, kernel_config, kernel_table_from_json, kernel_table_text,
                                         load_kernel_table, table_kernels)
from simulator.costmodel.layers import committed_tables, load_table, table_from_json
from simulator.costmodel.points import Point
from simulator.errors import FlexsimError

CPU_PROFILE = "cpu-amd-epyc-2c"


def power_law_table(family="linear", grid=(8, 32, 128, 512, 2048), batches=(1, 2, 4, 8)) -> KernelTable:
    """Latency 1e-6 * b^0.9 * in * out^0.5 ms: a power law of the linear family's features."""
    rows = [(i, o, b) for i in grid for o in grid for b in batches]
    configs = np.array([r[:2] for r in rows], dtype=float)
    batch = np.array([r[2] for r in rows], dtype=float)
    latency = 1e-6 * batch ** 0.9 * configs[:, 0] * configs[:, 1] ** 0.5
    return KernelTable("test", {family: configs}, {family: batch}, {family: latency}, {"method": "synthetic"})


# ------------------------------------------------------------------------------------------ predictor

def test_predictor_is_exact_on_a_power_law_inside_and_outside_the_grid():
    predictor = KernelPredictor(power_law_table(), ridge=1e-12)
    queries = np.array([[100, 700], [8, 8], [3000, 20], [9216, 4096]], dtype=float)
    batch = np.array([3, 1, 6, 2], dtype=float)
    expected = 1e-6 * batch ** 0.9 * queries[:, 0] * queries[:, 1] ** 0.5
    assert np.allclose(predictor.predict_ms("linear", queries, batch), expected, rtol=1e-6)


def test_predictor_follows_the_nearest_measurements_of_a_bent_curve():
    """Elementwise kernels: a fixed cost then a per-element cost; the local plane follows the bend."""
    elems = np.unique(np.round(np.geomspace(1, 4e6, 60)))
    latency = 0.002 + 1e-6 * elems
    table = KernelTable("test", {"relu_": np.column_stack([elems, np.ones_like(elems)])},
                        {"relu_": np.ones_like(elems)}, {"relu_": latency}, {})
    predictor = KernelPredictor(table, neighbours=6)
    for n in (10.0, 3e3, 5e5):
        assert predictor.predict_ms("relu_", [[n, 1]], 1)[0] == pytest.approx(0.002 + 1e-6 * n, rel=0.02)
    # the same elements spread over batch, channels and spatial size cost the same
    assert predictor.predict_ms("relu_", [[1000, 10]], 4)[0] == pytest.approx(0.002 + 0.4, rel=0.02)


def test_cross_validation_of_a_power_law_is_exact():
    errors = cross_validate(power_law_table(), ridge=1e-12)
    assert np.nanmax(np.abs(errors["linear"])) < 1e-6


def test_features_follow_the_family_fields():
    conv = features("conv", [[3, 64, 224, 11, 4, 2]], [2])[0]
    assert np.allclose(np.exp(conv), [2, 3, 64, 55, 11, 4])  # AlexNet's first layer: 55x55 output
    assert np.allclose(np.exp(features("mul", [[72, 28]], [3])[0]), [3 * 72 * 28 * 28])
    with pytest.raises(FlexsimError, match="unknown kernel family 'fft'"):
        features("fft", [[1]], [1])


def test_call_parameters_are_recovered_and_non_negative():
    truth = CallParams(per_kernel_ms=0.004, call_ms=0.05)
    sums, n_kernels = {}, {"a": 20, "b": 180, "c": 60}
    points = []
    for arch, n in n_kernels.items():
        for b in (1, 2, 4):
            sums[arch, b] = 0.3 * b * n / 20
            points.append(Point(arch, "fp32", "eager", b, call_ms(sums[arch, b], n, truth), None))
    fitted = fit_call(points, sums, n_kernels)
    assert fitted.per_kernel_ms == pytest.approx(0.004)
    assert fitted.call_ms == pytest.approx(0.05)
    # a negative per-call cost would fit better, but is not allowed
    slower = [Point(p.arch, p.dtype, p.mode, p.batch, p.latency_ms - 0.2 / p.batch, None) for p in points]
    assert all(v >= 0 for v in vars(fit_call(slower, sums, n_kernels)).values())


def test_leave_one_architecture_out_with_the_kernel_model_on_its_own_predictions():
    """Points made by the kernel model (synthetic table, fixed call parameters) are predicted back exactly."""
    rng = np.random.default_rng(0)
    fixed = {"kernel": 3, "stride": 1, "padding": 1, "out": 2}
    configs = {f: np.array([[fixed.get(k, rng.integers(4, 256)) for k in fields] for _ in range(30)], dtype=float)
               for f, fields in FAMILIES.items()}
    batch = {f: rng.integers(1, 5, 30).astype(float) for f in FAMILIES}
    table = KernelTable("test", configs, batch, {f: rng.uniform(0.01, 1.0, 30) for f in FAMILIES}, {})
    predictor, truth = KernelPredictor(table), CallParams(per_kernel_ms=0.003, call_ms=0.1)
    archs = ("alexnet", "resnet18", "mobilenet-v3-large")
    points = [Point(a, "fp32", "eager", b, call_ms(predictor.kernels_ms(load_table(a), b), load_table(a).n_kernels,
                                                   truth), None) for a in archs for b in (1, 2, 3)]
    predictions = leave_one_architecture_out_kernels(points, predictor)
    assert len(predictions) == 9 and max(abs(p.latency_error) for p in predictions) < 1e-6
    with pytest.raises(FlexsimError, match="fp32 only"):
        leave_one_architecture_out_kernels([Point("alexnet", "fp16", "eager", 1, 1.0, None)], predictor)


# ------------------------------------------------------------------------------------------ traced kernels

def test_every_traced_kernel_has_a_family():
    for model in committed_tables():
        groups = table_kernels(load_table(model))
        assert sum(len(c) for c in groups.values()) == load_table(model).n_kernels
    mobilenet = load_table("mobilenet-v3-large")
    groups = table_kernels(mobilenet)
    assert tuple(groups["conv"][0]) == (3, 16, 224, 3, 2, 1)  # first layer: 3 -> 16 channels, 3x3, stride 2
    assert tuple(groups["dwconv"][0]) == (16, 112, 3, 1, 1)
    assert tuple(groups["mul"][0]) == (72, 28)  # squeeze-and-excitation: the full-size operand
    assert tuple(table_kernels(load_table("alexnet"))["linear"][0]) == (9216, 4096)


def test_kernels_without_a_family_are_bad_input():
    shapes = {"in_shape": [64, 8, 8], "in2_shape": [], "out_shape": [64, 8, 8], "kernel": 3, "stride": 1,
              "padding": 1, "groups": 4}
    with pytest.raises(FlexsimError, match="grouped convolution with 4 groups"):
        kernel_config("convolution", shapes)
    with pytest.raises(FlexsimError, match="no kernel family for operator 'gelu'"):
        kernel_config("gelu", shapes)
    old = load_table("resnet18").to_json()
    for column in ("in_shape", "in2_shape", "out_shape", "kernel", "stride", "padding", "groups"):
        del old["columns"][column]
    with pytest.raises(FlexsimError, match="has no shape columns"):
        table_kernels(table_from_json(old))
    partial = load_table("resnet18").to_json()
    del partial["columns"]["groups"]
    with pytest.raises(FlexsimError, match="shape columns missing: groups"):
        table_from_json(partial)


# ------------------------------------------------------------------------------------------ microbenchmark table

def test_committed_microbenchmark_table_is_valid_and_synthetic():
    table = load_kernel_table(CPU_PROFILE)
    assert table.provenance["threads"] == 1 and table.provenance["torch"].startswith("2.")
    assert {"date", "method", "seed", "measure_s", "configurations"} <= set(table.provenance)
    assert set(table.configs) == set(FAMILIES) and table.n_measurements > 1000
    for family in FAMILIES:
        assert np.all(table.latency_ms[family] > 0) and set(table.batch[family]) <= {1, 2, 3, 4, 8, 16}
    # no kernel of an architecture was measured: leave-one-architecture-out stays honest
    measured = {(f, tuple(c)) for f, configs in table.configs.items() for c in configs}
    for model in committed_tables():
        traced = {(f, tuple(c)) for f, configs in table_kernels(load_table(model)).items() for c in configs}
        assert not measured & traced, f"{model}: kernels measured in the microbenchmarks"
    # the text form round-trips
    again = kernel_table_from_json(json.loads(kernel_table_text(table)))
    assert again.n_measurements == table.n_measurements
    assert all(np.allclose(again.latency_ms[f], table.latency_ms[f], rtol=1e-5) for f in FAMILIES)


def test_malformed_microbenchmark_tables_are_bad_input(tmp_path):
    good = power_law_table().to_json()
    kernel_table_from_json(good)
    bad = json.loads(json.dumps(good))
    bad["families"]["fft"] = bad["families"].pop("linear")
    with pytest.raises(FlexsimError, match="unknown kernel family 'fft'"):
        kernel_table_from_json(bad, "t")
    bad = json.loads(json.dumps(good))
    bad["families"]["linear"]["fields"] = ["in_features"]
    with pytest.raises(FlexsimError, match="expected"):
        kernel_table_from_json(bad, "t")
    bad = json.loads(json.dumps(good))
    bad["families"]["linear"]["rows"][0][-1] = -1.0
    with pytest.raises(FlexsimError, match="positive latency"):
        kernel_table_from_json(bad, "t")
    bad = json.loads(json.dumps(good))
    bad["families"]["linear"]["rows"][0] = [1, 2]
    with pytest.raises(FlexsimError, match="family linear: row 0 must be a list of 4 numbers"):
        kernel_table_from_json(bad, "t")
    with pytest.raises(FlexsimError, match="no microbenchmark table for profile 'nope'"):
        load_kernel_table("nope")
    with pytest.raises(FlexsimError, match="has no 'conv' kernels"):
        KernelPredictor(power_law_table()).predict_ms("conv", [[3, 8, 8, 3, 1, 1]], 1)


# ------------------------------------------------------------------------------------------ microbenchmarks (torch)

def test_sampled_configurations_are_deterministic_valid_and_runnable():
    torch = pytest.importorskip("torch")
    from simulator.costmodel.kernelbench import COUNTS, MAX_ELEMS, MAX_FLOPS, _kernel, sample_configs, work

    configs = sample_configs(seed=3)
    assert configs == sample_configs(seed=3) and len(configs) == sum(COUNTS.values())
    assert all(work(f, c)[0] <= MAX_FLOPS and work(f, c)[1] <= MAX_ELEMS for f, c in configs)
    small = {"conv": (3, 4, 9, 3, 2, 1), "dwconv": (8, 9, 5, 2, 2), "linear": (16, 8), "max_pool2d": (8, 9, 3, 2, 1),
             "adaptive_avg_pool2d": (8, 6, 3)}
    with torch.inference_mode():
        for family, fields in FAMILIES.items():
            setup, run = _kernel(torch, family, small.get(family, (8, 5)[:len(fields)]), 2)
            if setup:
                setup()
            out = run()
            assert out.shape[0] == 2


# ------------------------------------------------------------------------------------------ command line

def test_cli_reports_the_kernel_model_beside_the_roofline_model(tmp_path, capsys):
    from simulator.cli import main

    assert main(["costmodel", "accuracy", "--profile", CPU_PROFILE, "--json", str(tmp_path / "a.json")]) == 0
    out = capsys.readouterr().out
    assert "kernel model (microbenchmarks) beside the roofline model" in out and "roofline ±10%" in out
    summary = json.loads((tmp_path / "a.json").read_text())[0]
    kernel = summary["kernel_model"]
    assert kernel["latency"]["n"] == summary["latency"]["n"] == 72
    assert set(kernel["latency_by_arch"]) == set(summary["latency_by_arch"])
    assert kernel["n_measurements"] == load_kernel_table(CPU_PROFILE).n_measurements
