"""Kernel times inside real forward passes (`simulator.costmodel.kerneltimes`, PyTorch on the CPU) and their
comparison with the cost model (`simulator.costmodel.kernelcheck`, NumPy only). Timing figures are not asserted:
only that the measurement is well formed and that the comparison prices each kernel as the cost model does."""

import json

import numpy as np
import pytest

from simulator.cli import main
from simulator.costmodel.derive import reference_spec
from simulator.costmodel.kernelcheck import (SCHEMA, by_operator, joined, kernel_comparison, markdown,
                                             read_kernel_times)
from simulator.costmodel.latency import LatencyParams, predict_latency_ms
from simulator.costmodel.layers import KINDS, load_table
from simulator.errors import FlexsimError
from simulator.profiles import load_profile
from tests.helpers import cli_error

CPU_PROFILE = "cpu-amd-epyc-2c"
MODEL = "fmnist-cnn-w8"


def synthetic_times(model=MODEL, batches=(1, 2), device=None, scale=1.0) -> dict:
    """A kernel-times file's content for `model` as if measured on the shipped CPU profile's device: each kernel
    0.01 ms times `scale`, each call their sum plus 0.05 ms."""
    device = device or load_profile(CPU_PROFILE).device["name"]
    entries = []
    for b in batches:
        table = load_table(model).at(b)
        kernel_ms = [0.01 * scale] * table.n_kernels
        entries.append({"model": model, "dtype": "fp32", "batch": b, "passes": 1, "ops": list(table.op),
                        "kernel_ms": kernel_ms, "call_ms": sum(kernel_ms) + 0.05})
    return {"schema": SCHEMA, "device": {"name": device}, "provenance": {}, "entries": entries}


def write(tmp_path, obj, name="kt.json"):
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return path


# ------------------------------------------------------------------------------------------ measuring (PyTorch)

@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """fmnist-cnn-w8 at batch 1 and 2 on this CPU, timed by the command (one round of two passes)."""
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("kt") / "kt.json"
    assert main(["costmodel", "kernel-times", "--models", MODEL, "--batch-sizes", "1,2", "--threads", "1",
                 "--rounds", "1", "--passes", "2", "--out", str(out)]) == 0
    return out


def test_kernel_times_time_every_kernel_of_the_layer_table(measured):
    obj = json.loads(measured.read_text())
    assert obj["schema"] == SCHEMA and obj["device"]["threads"] == 1
    assert obj["provenance"]["rounds"] == 1 and obj["provenance"]["passes_per_round"] == 2
    assert [(e["model"], e["batch"], e["passes"]) for e in obj["entries"]] == [(MODEL, 1, 2), (MODEL, 2, 2)]
    for e in obj["entries"]:
        table = load_table(MODEL).at(e["batch"])
        assert e["ops"] == list(table.op)           # on the CPU the names are the trace's too
        assert len(e["kernel_ms"]) == len(e["kernel_ms_p50"]) == table.n_kernels
        assert all(0 <= q <= m for q, m in zip(e["kernel_ms"], e["kernel_ms_p50"]))
        assert 0 < e["call_ms"] <= e["call_ms_p50"]
    assert read_kernel_times(measured)["entries"][0]["kernel_ms"].shape == (load_table(MODEL).n_kernels,)


def test_kernel_check_prints_every_operator_and_call(measured, capsys):
    assert main(["costmodel", "kernel-check", "--kernel-times", str(measured), "--profile", CPU_PROFILE]) == 0
    out = capsys.readouterr().out
    for op in set(load_table(MODEL).op):
        assert f"| {op} (" in out
    assert f"| {MODEL} | fp32 | 1 |" in out and f"| {MODEL} | fp32 | 2 |" in out


def test_kernels_that_differ_from_the_table_are_refused():
    pytest.importorskip("torch")
    from simulator.costmodel.kerneltimes import _check_kernels

    table = load_table(MODEL)
    names, kinds = list(table.op), list(table.kind)
    _check_kernels(MODEL, 1, names, kinds, table)
    with pytest.raises(FlexsimError, match="ran 18 kernels, its layer table has 19"):
        _check_kernels(MODEL, 1, names[:-1], kinds[:-1], table)
    kinds[0] = KINDS.index("matmul")
    with pytest.raises(FlexsimError, match=r"kernel 0 \(convolution\) is a matmul kernel, the layer table's "
                                           r"\(convolution\) a conv one"):
        _check_kernels(MODEL, 1, names, kinds, table)


@pytest.mark.parametrize("argv, message", [
    (["--models", "nope"], "nope is not a built-in model"),
    (["--models", MODEL, "--batch-sizes", "0"], "invalid batch size 0"),
    (["--models", MODEL, "--dtypes", "fp8"], "invalid --dtypes = 'fp8'"),
    (["--models", MODEL, "--rounds", "0"], "invalid --rounds = 0"),
    (["--models", MODEL, "--passes", "0"], "invalid --passes = 0"),
    (["--models", MODEL, "--allocator", "x"], "invalid allocator = 'x'"),
])
def test_kernel_times_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    pytest.importorskip("torch")
    out = tmp_path / "kt.json"
    assert message in cli_error(capsys, ["costmodel", "kernel-times", *argv, "--out", str(out)])
    assert not out.exists()


def test_kernel_times_needs_an_output_and_one_device(tmp_path, capsys):
    assert "needs --out" in cli_error(capsys, ["costmodel", "kernel-times", "--models", MODEL])
    assert "one --device" in cli_error(capsys, ["costmodel", "kernel-times", "--device", "cpu", "--device", "cpu",
                                                "--out", str(tmp_path / "kt.json")])
    assert "does not take --rounds" in cli_error(capsys, ["costmodel", "accuracy", "--rounds", "2"])


# ------------------------------------------------------------------------------------------ comparing (NumPy)

def test_each_kernel_is_priced_as_the_cost_model_prices_its_call(tmp_path):
    """The comparison's predicted call is the cost model's prediction with the parameters it fitted; on a CPU the
    call is its kernels (roofline, fixed and host costs) plus the per-call cost."""
    profile = load_profile(CPU_PROFILE)
    comparison = kernel_comparison(read_kernel_times(write(tmp_path, synthetic_times())), profile)
    params = LatencyParams(**comparison["params"])
    spec = reference_spec(profile)
    for call in comparison["calls"]:
        expected = predict_latency_ms(load_table(MODEL).at(call["batch"]), call["batch"], "fp32", "eager", spec,
                                      params)
        assert call["predicted_ms"] == pytest.approx(expected, rel=1e-4)   # params are rounded to 6 digits
        assert call["predicted_ms"] - call["predicted_kernels_ms"] == pytest.approx(params.call_eager_ms, rel=1e-4)
        assert call["measured_kernels_ms"] == pytest.approx(0.01 * load_table(MODEL).n_kernels)
    kernels = comparison["kernels"]
    assert len(kernels) == 2 * load_table(MODEL).n_kernels
    assert sum(k["predicted_ms"] for k in kernels) == pytest.approx(
        sum(c["predicted_kernels_ms"] for c in comparison["calls"]))


def test_operators_are_summarised_by_kind_with_their_ratios():
    kernels = [{"op": "convolution", "kind": "conv", "measured_ms": m, "predicted_ms": p}
               for m, p in ((1.0, 1.1), (2.0, 1.0), (1.0, 1.0))]
    kernels.append({"op": "convolution", "kind": "dwconv", "measured_ms": 1.0, "predicted_ms": 3.0})
    summary = by_operator(kernels)
    assert list(summary) == ["convolution (conv)", "convolution (dwconv)"]       # the largest measured total first
    conv = summary["convolution (conv)"]
    assert (conv["n"], conv["measured_ms"], conv["predicted_ms"]) == (3, 4.0, pytest.approx(3.1))
    assert conv["median_ratio"] == pytest.approx(1.0) and conv["close"] == pytest.approx(2 / 3)
    assert summary["convolution (dwconv)"]["close"] == 0.0


def test_markdown_names_the_files_and_the_profile(tmp_path):
    comparison = kernel_comparison(read_kernel_times(write(tmp_path, synthetic_times())), load_profile(CPU_PROFILE))
    text = markdown(comparison, "a.json, b.json")
    assert text.startswith("Kernel times (a.json, b.json) against the cost model fitted on every point of profile "
                           f"`{CPU_PROFILE}`")
    assert text.count(f"| {MODEL} | fp32 |") == 2


def test_files_of_one_device_join_and_of_two_are_refused(tmp_path):
    one = read_kernel_times(write(tmp_path, synthetic_times(batches=(1,)), "a.json"))
    two = read_kernel_times(write(tmp_path, synthetic_times(batches=(2,)), "b.json"))
    assert [e["batch"] for e in joined([one, two])["entries"]] == [1, 2]
    other = read_kernel_times(write(tmp_path, synthetic_times(device="Another CPU"), "c.json"))
    with pytest.raises(FlexsimError, match="kernel times of different devices"):
        joined([one, other])
    with pytest.raises(FlexsimError, match="measured on 'Another CPU', but profile cpu-amd-epyc-2c is of"):
        kernel_comparison(other, load_profile(CPU_PROFILE))


def _broken(change):
    obj = synthetic_times()
    change(obj)
    return obj


@pytest.mark.parametrize("change, message", [
    (lambda o: o.update(schema="flexsim-kernel-times/0"), "not a kernel-times file"),
    (lambda o: o.pop("entries"), "lacks the field 'entries'"),
    (lambda o: o.update(entries=[]), "entries must be a non-empty list"),
    (lambda o: o["device"].pop("name"), "lacks the field 'name'"),
    (lambda o: o["entries"][0].update(model="nope"), "entry 0: no layer table for model 'nope'"),
    (lambda o: o["entries"][0].update(dtype="fp8"), "entry 0: dtype 'fp8' must be one of"),
    (lambda o: o["entries"][1].update(batch=0), r"entry 1: batch must be an integer in \[1, 2\^20\]"),
    (lambda o: o["entries"][1].update(batch=True), r"entry 1: batch must be an integer"),
    (lambda o: o["entries"][0]["kernel_ms"].__setitem__(3, float("nan")), "kernel_ms must hold finite times"),
    (lambda o: o["entries"][0]["kernel_ms"].__setitem__(3, -1.0), "kernel_ms must hold finite times >= 0"),
    (lambda o: o["entries"][0].update(call_ms="fast"), "call_ms must hold finite times"),
    (lambda o: o["entries"][0]["kernel_ms"].pop(), "18 kernel times for fmnist-cnn-w8, whose layer table has 19"),
    (lambda o: o["entries"].__setitem__(0, [1, 2]), "entry 0: an object expected"),
])
def test_malformed_kernel_times_are_named_in_one_line(tmp_path, capsys, change, message):
    path = write(tmp_path, _broken(change))
    with pytest.raises(FlexsimError, match=message):
        read_kernel_times(path)
    err = cli_error(capsys, ["costmodel", "kernel-check", "--kernel-times", str(path), "--profile", CPU_PROFILE])
    assert str(path) in err


def test_kernel_check_needs_its_inputs(tmp_path, capsys):
    path = write(tmp_path, synthetic_times())
    assert "needs --kernel-times" in cli_error(capsys, ["costmodel", "kernel-check", "--profile", CPU_PROFILE])
    assert "needs one --profile" in cli_error(capsys, ["costmodel", "kernel-check", "--kernel-times", str(path)])
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert f"kernel times: {bad} is not valid JSON" in cli_error(
        capsys, ["costmodel", "kernel-check", "--kernel-times", str(bad), "--profile", CPU_PROFILE])
