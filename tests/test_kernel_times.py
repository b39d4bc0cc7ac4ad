"""Kernel times inside real forward passes (`simulator.costmodel.kerneltimes`, PyTorch on the CPU) and their
comparison with the cost model (`simulator.costmodel.kernelcheck`, NumPy only). Timing figures are not asserted:
only that the measurement is well formed and that the comparison prices each kernel as the cost model does."""

import json
from pathlib import Path

import numpy as np
import pytest

from simulator.cli import main
from simulator.costmodel.derive import reference_spec
from simulator.costmodel.kernelcheck import (SCHEMA, by_operator, joined, kernel_comparison, markdown,
                                             read_kernel_times)
from simulator.costmodel.latency import LatencyParams, call_work, launch_ms, predict_latency_ms, work_roofline_ms
from simulator.costmodel.layers import KINDS, load_table
from simulator.errors import FlexsimError
from simulator.profiles import load_profile
from tests.helpers import cli_error

CPU_PROFILE = "cpu-amd-epyc-2c"
MODEL = "fmnist-cnn-w8"


def synthetic_times(model=MODEL, batches=(1, 2), device=None, scale=1.0) -> dict:
    """A kernel-times file's content for `model` as if measured on the shipped CPU profile's device: each kernel
    0.01 ms times `scale`, each call their sum plus 0.05 ms."""
    device = device or load_profile(CPU_PROFILE).device
    entries = []
    for b in batches:
        table = load_table(model).at(b)
        kernel_ms = [0.01 * scale] * table.n_kernels
        entries.append({"model": model, "dtype": "fp32", "batch": b, "passes": 1, "ops": list(table.op),
                        "kernel_ms": kernel_ms, "call_ms": sum(kernel_ms) + 0.05})
    return {"schema": SCHEMA, "device": dict(device), "provenance": {}, "entries": entries}


def this_hosts_profile(kernel_times, folder) -> str:
    """A copy of the shipped CPU profile carrying the device facts of the host that measured `kernel_times` (a
    test measures on whatever host runs it, and kernel-check compares kernel times with a profile of their own
    device only): its path."""
    from simulator.profiler.session import UPDATE_IDENTITY
    from simulator.profiles import profile_file

    obj = json.loads(profile_file(CPU_PROFILE).read_text())
    host = json.loads(Path(kernel_times).read_text())["device"]
    for key in (*UPDATE_IDENTITY, "cpu_capability"):
        obj["device"].pop(key, None)
        if key in host:
            obj["device"][key] = host[key]
    path = Path(folder) / "this-host.json"
    path.write_text(json.dumps(obj))
    return str(path)


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
        assert all(q > 0 for q in e["kernel_ms"]) and e["call_ms"] > 0
        assert e["call_ms"] == pytest.approx(sum(e["kernel_ms"]), rel=0.5)   # the kernels are most of a call
    assert read_kernel_times(measured)["entries"][0]["kernel_ms"].shape == (load_table(MODEL).n_kernels,)


def test_kernel_check_prints_every_operator_and_call(measured, capsys):
    profile = this_hosts_profile(measured, measured.parent)
    assert main(["costmodel", "kernel-check", "--kernel-times", str(measured), "--profile", profile]) == 0
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


def test_a_run_whose_kernels_are_not_the_tables_is_refused_before_timing(monkeypatch):
    pytest.importorskip("torch")
    from simulator.costmodel import kerneltimes

    monkeypatch.setattr(kerneltimes, "load_table", lambda model: load_table("resnet18"))   # the wrong table
    with pytest.raises(FlexsimError, match="fmnist-cnn-w8 at batch 1 ran 19 kernels, its layer table has 68"):
        kerneltimes.measure([MODEL], (1,), ("fp32",), "cpu", 1, 1, threads=1)
    with pytest.raises(FlexsimError, match="warmup = 0: must be an integer >= 1"):
        kerneltimes.measure([MODEL], (1,), ("fp32",), "cpu", 1, 1, threads=1, warmup=0)


def test_on_a_gpu_each_pass_waits_behind_one_fixed_spin_and_events_time_each_kernel(monkeypatch):
    """The CUDA path with PyTorch's CUDA calls replaced by fakes (no GPU here): a spin of the warm-up's issue time
    times the margin, capped, before every hooked pass and never growing; an event pair per kernel."""
    torch = pytest.importorskip("torch")
    from simulator.costmodel import kerneltimes
    from simulator.models.registry import build_model
    from simulator.profiler.targets import prepare

    spins, events = [], []

    class FakeEvent:
        def __init__(self, enable_timing):
            assert enable_timing
            events.append(self)

        def record(self):
            self.at = len(events)

        def elapsed_time(self, end):
            return float(end.at - self.at)

    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "_sleep", lambda cycles: spins.append(cycles))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    call = prepare(torch, build_model(MODEL)[0], (1, 28, 28), 1, "fp32", "cpu", "eager", MODEL)
    with torch.no_grad():
        names, _, ms, _ = kerneltimes._timed_pass(call.forward, cuda=True)
        assert spins == [] and len(events) == 2 * len(names) == 2 * load_table(MODEL).n_kernels
        assert list(ms) == [1.0] * len(names)          # each pair spans its kernel: start, then end
        target = kerneltimes._Target(MODEL, "fp32", 1, call, names, spin_s=0.002)
        target.time_passes(3, cuda=True)
        kerneltimes._timed_pass(call.forward, cuda=True, spin_s=60.0)
    cycles = int(0.002 * kerneltimes.SPIN_CLOCK_HZ)
    assert spins == [cycles] * 3 + [int(kerneltimes.MAX_SPIN_S * kerneltimes.SPIN_CLOCK_HZ)]
    assert len(target.kernel_ms) == len(target.call_ms) == 3


@pytest.mark.parametrize("argv, message", [
    (["--models", "nope"], "unknown model 'nope'"),
    (["--models", "mine=net.py:build"], "model mine: give its per-sample input shape (--input-shape"),
    (["--models", MODEL, "--input-shape", "1,8,8"], "the input shape and tokens are for users' models"),
    (["--models", "fmnist-cnn-w8,fmnist_cnn_w8"], "invalid models: fmnist-cnn-w8 given twice"),
    (["--models", MODEL, "--dtypes", "fp32,fp32"], "invalid --dtypes: fp32 given twice"),
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
    work = call_work(load_table(MODEL), 1, "fp32", "eager", spec)          # batch 1's kernels come first
    host = launch_ms(work.kind, params, work.native)
    expected = work_roofline_ms(work, params) + params.kernel_ms + host     # a CPU runs its kernels itself
    assert [k["predicted_ms"] for k in kernels[:len(expected)]] == pytest.approx(list(expected), rel=1e-4)
    assert host.min() > 0


def test_a_gpu_kernel_is_priced_by_its_device_time_alone(tmp_path):
    """On a GPU the events time the kernel on the device: its roofline and fixed cost, no host launch cost."""
    h200 = load_profile("h200")
    times = synthetic_times(batches=(1, 8), device=h200.device)
    comparison = kernel_comparison(read_kernel_times(write(tmp_path, times)), h200)
    params, spec = LatencyParams(**comparison["params"]), reference_spec(h200)
    work = call_work(load_table(MODEL).at(8), 8, "fp32", "eager", spec)
    expected = work_roofline_ms(work, params) + params.kernel_ms
    n = load_table(MODEL).n_kernels
    assert [k["predicted_ms"] for k in comparison["kernels"][n:]] == pytest.approx(list(expected), rel=1e-4)
    assert params.launch_other_ms > 0.001                              # a host cost it must have left out


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
    with pytest.raises(FlexsimError, match=r"\('fmnist-cnn-w8', 'fp32', 1\) is measured twice"):
        joined([one, one])
    other = read_kernel_times(write(tmp_path, synthetic_times(device={"name": "Another CPU"}), "c.json"))
    with pytest.raises(FlexsimError, match="kernel times of different devices \\(name: 'AMD EPYC' / 'Another CPU'\\)"):
        joined([one, other])
    with pytest.raises(FlexsimError, match="another device than profile cpu-amd-epyc-2c's \\(name: 'Another CPU'.*"
                                           "none is shipped for this device: measure one with flexsim profile"):
        kernel_comparison(other, load_profile(CPU_PROFILE))
    # two CPUs of one name (the Zen 4 and Zen 1 hosts are both "AMD EPYC"), or one run on more threads; the
    # shipped profile of the kernel times' own device is named
    with pytest.raises(FlexsimError, match="cpu_family: '25' / '23'.*shipped for this device: cpu-amd-epyc-2c\\)"):
        kernel_comparison(one, load_profile("cpu-amd-epyc-zen1-2c"))
    threads = read_kernel_times(write(tmp_path, synthetic_times(
        device={**load_profile(CPU_PROFILE).device, "threads": 2}), "d.json"))
    with pytest.raises(FlexsimError, match="threads: 2 / 1"):
        kernel_comparison(threads, load_profile(CPU_PROFILE))


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
    (lambda o: o["entries"][1].update(batch=0), "entry 1: batch must be an integer from 1 to 65536"),
    (lambda o: o["entries"][1].update(batch=True), r"entry 1: batch must be an integer"),
    (lambda o: o["entries"][0]["kernel_ms"].__setitem__(3, float("nan")), "kernel_ms must hold times from 0 to"),
    (lambda o: o["entries"][0]["kernel_ms"].__setitem__(3, -1.0), "kernel_ms must hold times from 0 to 8.64e"),
    (lambda o: o["entries"][0].update(call_ms="fast"), "call_ms must hold times from 0 to"),
    (lambda o: o["entries"][0]["kernel_ms"].pop(), "18 kernel times for fmnist-cnn-w8, whose layer table has 19"),
    (lambda o: o["entries"].__setitem__(0, [1, 2]), "entry 0: an object expected"),
    (lambda o: o["entries"][0].update(dtype=["fp32"]), r"entry 0: dtype \['fp32'\] must be one of"),
    (lambda o: o["entries"][1].update(batch=2 ** 20), "entry 1: batch must be an integer from 1 to 65536"),
    (lambda o: o["entries"][0]["kernel_ms"].__setitem__(0, 1e308), "kernel_ms must hold times from 0 to"),
    (lambda o: o["entries"][0]["ops"].pop(), "entry 0: ops must name each of the 19 kernels timed"),
    (lambda o: o["entries"][0]["ops"].__setitem__(0, 7), "entry 0: ops must name each of the 19 kernels timed"),
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


# ------------------------------------------------------------------------------------- a user's model (PyTorch)

TINY = """import torch
from torch import nn


def build():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A user's model (one convolution, a ReLU, a linear layer on 1x8x8 inputs) timed by the command at batch 1 and
    2, and its tables traced on that input and on another: (kernel-times file, right table, wrong table)."""
    pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "net.py").write_text(TINY)
    spec = f"tiny={folder / 'net.py'}:build"
    out = folder / "kt.json"
    assert main(["costmodel", "kernel-times", "--models", spec, "--input-shape", "1,8,8", "--batch-sizes", "1,2",
                 "--threads", "1", "--rounds", "1", "--passes", "2", "--out", str(out)]) == 0
    assert main(["costmodel", "trace", "--models", spec, "--input-shape", "1,8,8", "--out-dir", str(folder)]) == 0
    wrong = folder / "wrong"
    (folder / "flat.py").write_text(TINY.replace("4 * 8 * 8", "4 * 6 * 6"))
    assert main(["costmodel", "trace", "--models", f"tiny={folder / 'flat.py'}:build", "--input-shape", "1,6,6",
                 "--out-dir", str(wrong)]) == 0
    return out, folder / "tiny.json", wrong / "tiny.json"


def test_a_users_model_is_timed_kernel_by_kernel_against_its_own_trace(tiny):
    from simulator.costmodel.layers import read_table

    kt, table_path, _ = tiny
    obj, table = json.loads(kt.read_text()), read_table(table_path)
    assert [(e["model"], e["batch"], e["input_shape"]) for e in obj["entries"]] == [("tiny", 1, [1, 8, 8]),
                                                                                   ("tiny", 2, [1, 8, 8])]
    for e in obj["entries"]:
        assert e["ops"] == list(table.at(e["batch"]).op) and "input_tokens" not in e
        assert len(e["kernel_ms"]) == table.at(e["batch"]).n_kernels and all(q > 0 for q in e["kernel_ms"])


def test_kernel_check_costs_a_users_kernels_on_its_given_table(tiny, capsys):
    from simulator.costmodel.layers import read_table

    kt, table_path, _ = tiny
    assert main(["costmodel", "kernel-check", "--kernel-times", str(kt), "--table", str(table_path), "--profile",
                 this_hosts_profile(kt, kt.parent)]) == 0
    out = capsys.readouterr().out
    for op in set(read_table(table_path).op):
        assert f"| {op} (" in out
    assert "| tiny | fp32 | 1 |" in out and "| tiny | fp32 | 2 |" in out


def test_a_profile_model_without_a_table_is_named_as_left_out_of_the_fit(tmp_path):
    obj = json.loads(Path(this_hosts_profile(write(tmp_path, synthetic_times()), tmp_path)).read_text())
    obj["models"]["mine"] = {**obj["models"]["fmnist-cnn-w8"], "arch": "mine"}
    obj["models"]["by-hand"] = {k: v for k, v in obj["models"]["fmnist-cnn-w8"].items() if k != "arch"}
    path = write(tmp_path, obj, "with-mine.json")
    text = markdown(kernel_comparison(read_kernel_times(write(tmp_path, synthetic_times())), load_profile(path)), "kt")
    assert "Left out of the fit: by-hand, mine, measured in this profile without a layer table" in text


def test_kernel_check_needs_a_users_table_traced_on_the_input_measured(tiny, capsys):
    kt, _, wrong = tiny
    profile = this_hosts_profile(kt, kt.parent)
    err = cli_error(capsys, ["costmodel", "kernel-check", "--kernel-times", str(kt), "--profile", profile])
    assert "entry 0: no layer table for model 'tiny'" in err and "give its table, --table" in err
    err = cli_error(capsys, ["costmodel", "kernel-check", "--kernel-times", str(kt), "--table", str(wrong),
                             "--profile", profile])
    assert "tiny was measured on shape [1, 8, 8], its layer table traced on shape [1, 6, 6]" in err


def test_a_users_model_whose_kernels_change_with_the_batch_is_refused(tmp_path, capsys):
    pytest.importorskip("torch")
    (tmp_path / "net.py").write_text(TINY + """

class Shaped(nn.Module):
    def forward(self, x):          # from batch 3 on, a kernel more than its trace (batch 1 and 2) ran
        return x.relu() if x.shape[0] < 3 else x.relu().relu()


def shaped():
    return Shaped()
""")
    out = tmp_path / "kt.json"
    err = cli_error(capsys, ["costmodel", "kernel-times", "--models", f"f={tmp_path / 'net.py'}:shaped",
                             "--input-shape", "4", "--batch-sizes", "2,4", "--rounds", "1", "--passes", "1", "--out",
                             str(out)])
    assert "kernel times: f at batch 4 ran 2 kernels, its layer table has 1" in err
    assert "its kernels differ from those its trace ran" in err
    assert not out.exists()
    err = cli_error(capsys, ["costmodel", "kernel-times", "--models", f"t={tmp_path / 'net.py'}:build",
                             "--input-shape", "1,8,8", "--out", str(tmp_path / "net.py")])
    assert "it is an input of this command" in err and (tmp_path / "net.py").read_text().startswith("import torch")


def test_a_users_model_of_token_ids_records_its_vocabulary_and_needs_a_table_of_the_same(tmp_path, capsys):
    pytest.importorskip("torch")
    (tmp_path / "net.py").write_text("from torch import nn\n\ndef build():\n    return nn.Sequential("
                                     "nn.Embedding(50, 8), nn.Flatten(), nn.Linear(6 * 8, 10))\n")
    spec, kt = f"tok={tmp_path / 'net.py'}:build", tmp_path / "kt.json"
    assert main(["costmodel", "kernel-times", "--models", spec, "--input-shape", "6", "--input-tokens", "50",
                 "--threads", "1", "--rounds", "1", "--passes", "1", "--out", str(kt)]) == 0
    assert [(e["input_shape"], e["input_tokens"]) for e in json.loads(kt.read_text())["entries"]] == [([6], 50)]
    assert main(["costmodel", "trace", "--models", spec, "--input-shape", "6", "--input-tokens", "40",
                 "--out-dir", str(tmp_path)]) == 0
    err = cli_error(capsys, ["costmodel", "kernel-check", "--kernel-times", str(kt), "--table",
                             str(tmp_path / "tok.json"), "--profile", this_hosts_profile(kt, tmp_path)])
    assert "tok was measured on shape [6] of token ids below 50, its layer table traced on shape [6] of token " \
           "ids below 40" in err
