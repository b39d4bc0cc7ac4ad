"""The profiler: measuring real models, energy windows, settings, and bad input (one line, exit 2, no file)."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.cli import main
from simulator.errors import FlexsimError
from simulator.profiler.energy import energy_per_call_j, find_rapl, idle_power_w
from simulator.profiler.settings import MeasureSettings
from simulator.profiler.timing import summary_ms, wall_samples_ms, warm_up
from simulator.profiles import load_profile
from simulator.speed import SpeedNoise
from tests.helpers import cli_error

torch = pytest.importorskip("torch")

FAST = ["--repeats", "3", "--warmup", "1", "--warmup-s", "0", "--idle-settle-s", "0"]


# ------------------------------------------------------------------------------------------ fake clock and counter

class FakeClock:
    """A clock that advances only when told to (each call of the fake model advances it)."""

    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class SteppingCounter:
    """An energy counter at constant `power_w` that, like NVML's, advances only every `step_s`."""

    def __init__(self, clock, power_w, step_s=0.1):
        self.clock, self.power_w, self.step_s = clock, power_w, step_s

    def read_j(self):
        return np.floor(self.clock() / self.step_s) * self.step_s * self.power_w


@given(power_w=st.floats(1.0, 700.0), call_s=st.floats(1e-4, 0.05), window_s=st.floats(1.0, 2.0))
@settings(deadline=None, max_examples=40)
def test_energy_per_call_is_exact_on_a_stepping_counter(power_w, call_s, window_s):
    clock = FakeClock()

    def call():
        clock.t += call_s

    reading = energy_per_call_j(call, SteppingCounter(clock, power_w), window_s, clock=clock)
    assert reading["window_s"] >= window_s
    # step-aligned windows: the energy between two counter steps over the calls between them
    assert reading["energy_j"] == pytest.approx(power_w * call_s, rel=2.5 * call_s / reading["window_s"] + 1e-9)
    assert reading["avg_power_w"] == pytest.approx(power_w, rel=2.5 * call_s / reading["window_s"] + 1e-9)


def test_idle_power_reads_the_counter_after_settling():
    clock = FakeClock()
    slept = []

    def sleep(s):
        slept.append(s)
        clock.t += max(s, 1e-3)

    idle_w = idle_power_w(SteppingCounter(clock, 77.5), 3.0, 1.0, clock=clock, sleep=sleep)
    assert idle_w == pytest.approx(77.5, rel=2e-3)
    assert slept[0] == 3.0


def test_rapl_absent_unreadable_and_readable(tmp_path):
    counter, reason = find_rapl(tmp_path / "nope")
    assert counter is None and "absent" in reason
    domain = tmp_path / "intel-rapl:0"
    domain.mkdir()
    counter, reason = find_rapl(tmp_path)
    assert counter is None and "no package RAPL domain" in reason
    (domain / "energy_uj").write_text("999000000\n")
    (domain / "max_energy_range_uj").write_text("1000000000\n")
    counter, reason = find_rapl(tmp_path)
    assert reason == "" and counter.read_j() == 0.0
    (domain / "energy_uj").write_text("1000000\n")  # wrapped around: +1 J +1 J
    assert counter.read_j() == pytest.approx(2.0)


def test_the_runners_meter_and_the_profilers_read_the_same_package_domains(tmp_path, monkeypatch):
    from simulator.runner import energy

    for name, uj in (("intel-rapl:0", "5000000"), ("intel-rapl:0:0", "1000000"), ("intel-rapl:1", "oops")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "energy_uj").write_text(uj)
        (tmp_path / name / "max_energy_range_uj").write_text("1000000000")
    assert [d.name for d in energy.rapl_package_domains(tmp_path)] == ["intel-rapl:0", "intel-rapl:1"]
    monkeypatch.setattr(energy.rapl_package_domains, "__defaults__", (tmp_path,))   # the default root
    meter = energy.open_meter("cpu")          # the unreadable package is left out, the sub-zone never counted
    assert [d.name for d in meter.domains] == ["intel-rapl:0"]


def test_timing_helpers_use_the_clock():
    clock = FakeClock()

    def call():
        clock.t += 0.002

    assert warm_up(call, 3, 0.05, clock=clock) == 25
    samples = wall_samples_ms(call, 5, clock=clock)
    assert np.allclose(samples, 2.0)
    s = summary_ms(np.arange(1.0, 101.0))
    assert s["n"] == 100 and s["p50"] == pytest.approx(50.5) and s["p10"] < s["p90"] < s["p99"]


@pytest.mark.parametrize("field, value", [("repeats", 2), ("warmup", -1), ("energy_window_s", 0.5),
                                          ("threads", 0), ("repeats", 3.5), ("idle_window_s", float("nan"))])
def test_settings_name_the_bad_field(field, value):
    with pytest.raises(FlexsimError, match=f"invalid {field} = "):
        MeasureSettings(**{field: value})


# ------------------------------------------------------------------------------------------ measuring

def test_profile_module_of_a_users_module():
    from simulator.profiler import profile_module

    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    entry = profile_module(module, (3, 4), batch_sizes=(2, 1), settings=MeasureSettings(repeats=4, warmup=1,
                                                                                       warmup_s=0.0))
    assert sorted(entry.batches) == [1, 2]
    for b in entry.batches.values():
        assert b.latency.samples_ms.shape == (4,) and np.all(b.latency.samples_ms > 0)
        assert b.energy_j is None and b.extra["latency_summary_ms"]["n"] == 4
    assert entry.info["params"] == 39 and entry.info["dtype"] == "fp32"


def test_rounds_interleave_every_model_and_batch_size():
    """Two models measured by one call: the timed calls alternate between them round by round."""
    from simulator.profiler.session import _Form, _measure_forms

    log = []

    class Logged(torch.nn.Module):
        def __init__(self, name):
            super().__init__()
            self.name, self.linear = name, torch.nn.Linear(4, 2)

        def forward(self, x):
            log.append((self.name, x.shape[0]))
            return self.linear(x)

    forms = [_Form(n, Logged(n), (4,), "fp32", "eager") for n in ("a", "b")]
    settings = MeasureSettings(repeats=6, rounds=3, warmup=1, warmup_s=0.0)
    batches, best = _measure_forms(torch, forms, (1, 2), "cpu", settings, None, None)
    assert best == {}
    assert {n: sorted(b) for n, b in batches.items()} == {"a": [1, 2], "b": [1, 2]}
    assert all(e.latency.samples_ms.shape == (6,) for b in batches.values() for e in b.values())
    timed = log[-3 * 4 * 3:]  # 3 rounds x 4 configurations x (1 unrecorded + 2 timed calls)
    blocks = [timed[i][0] for i in range(0, len(timed), 3)]
    assert blocks == ["a", "a", "b", "b"] * 3


def test_peak_probes_are_timed_in_every_round():
    from simulator.profiler.microbench import COPY_BYTES, LINEAR_ROWS, MATMUL_N, cpu_peaks
    from simulator.profiler.session import _Form, _measure_forms

    calls = []
    forms = [_Form("m", torch.nn.Linear(4, 2), (4,), "fp32", "eager")]
    settings = MeasureSettings(repeats=6, rounds=3, warmup=1, warmup_s=0.0)
    _, best = _measure_forms(torch, forms, (1,), "cpu", settings, None, None,
                             probes=lambda t: {"matmul-fp32": lambda: calls.append(1)})
    assert len(calls) >= 3 and 0 < best["matmul-fp32"] < 0.05
    peaks = cpu_peaks({"matmul-fp32": 2 * MATMUL_N ** 3 / 1e11, "copy": 2 * COPY_BYTES / 2e10}, rounds=3)
    assert peaks["peak_gflops"]["fp32"] == 100.0 and peaks["mem_bw_gbs"] == 20.0 and "3 windows" in peaks["method"]
    assert "linear" not in peaks  # no linear probes timed
    linear = {f"linear-{r}": 1e-3 * r for r in LINEAR_ROWS}
    peaks = cpu_peaks({"matmul-fp32": 1.0, "copy": 1.0, **linear}, rounds=3)
    assert peaks["linear"]["rows"] == list(LINEAR_ROWS) and peaks["linear"]["best_ms"] == [float(r) for r in
                                                                                           LINEAR_ROWS]


def test_a_model_that_fails_to_run_is_bad_input():
    from simulator.profiler import profile_module

    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("shapes do not match\nsecond line")

    with pytest.raises(FlexsimError, match=r"model broken: failed to run at batch 1 .*RuntimeError: shapes do not "
                                           r"match$"):
        profile_module(Broken(), (4,), batch_sizes=(1,), name="broken", settings=MeasureSettings(warmup_s=0.0))


def test_cli_profiles_a_fashion_mnist_member(tmp_path, capsys):
    out = tmp_path / "p.json"
    assert main(["profile", "fmnist-cnn-w8", "--batch-sizes", "1-2", "--name", "t", "--out", str(out), *FAST]) == 0
    p = load_profile(out)
    assert p.name == "t" and p.kind == "cpu" and p.provenance["source"] == "measured"
    assert list(p.models) == ["fmnist-cnn-w8"]  # a member's first form carries its bare name
    assert sorted(p.models["fmnist-cnn-w8"].batches) == [1, 2]
    assert p.decision_overhead_ms > 0 and p.provenance["decision_overhead_measured"]["n"] > 0
    assert p.device["measured_peaks"]["peak_gflops"]["fp32"] > 0 and p.device["measured_peaks"]["mem_bw_gbs"] > 0
    linear = p.device["measured_peaks"]["linear"]
    assert len(linear["best_ms"]) == len(linear["rows"]) and all(t > 0 for t in linear["best_ms"])
    assert "torch" in p.provenance["software"] and p.provenance["settings"]["allocator"] == "steady"
    assert p.device["cpu_capability"] == str(torch.backends.cpu.get_cpu_capability())   # the cost model's block
    assert p.provenance["allocator"]["allocator"] == "steady"
    if p.idle_power_w is None:  # no readable RAPL: energy recorded as not measured, never invented
        assert p.provenance["energy"].startswith("not measured")
        assert all(b.energy_j is None for b in p.models["fmnist-cnn-w8"].batches.values())


def test_update_keeps_other_models_and_names_forms(tmp_path):
    out = tmp_path / "p.json"
    assert main(["profile", "fmnist-cnn-w8", "--batch-sizes", "1", "--out", str(out), *FAST]) == 0
    assert main(["profile", "fmnist-cnn-w32", "--batch-sizes", "1", "--out", str(out), "--update", *FAST]) == 0
    p = load_profile(out)
    assert set(p.models) == {"fmnist-cnn-w8", "fmnist-cnn-w32"}
    assert len(p.provenance["earlier_runs"]) == 1


def test_update_refuses_another_device(tmp_path):
    from simulator.profiler.session import merge_profiles

    out = tmp_path / "p.json"
    assert main(["profile", "fmnist-cnn-w8", "--batch-sizes", "1", "--out", str(out), *FAST]) == 0
    p = load_profile(out)
    other = type(p)(name=p.name, device={**p.device, "name": "Other CPU"}, idle_power_w=None,
                    decision_overhead_ms=0.01, provenance=p.provenance, models=p.models)
    with pytest.raises(FlexsimError, match="cannot update profile"):
        merge_profiles(p, other)


@pytest.mark.parametrize("fact, value", [("cpu_model", "999"), ("threads", 7)])
def test_update_refuses_another_cpu_of_the_same_name_or_other_threads(tmp_path, fact, value):
    from simulator.profiler.session import merge_profiles

    out = tmp_path / "p.json"
    assert main(["profile", "fmnist-cnn-w8", "--batch-sizes", "1", "--out", str(out), *FAST]) == 0
    p = load_profile(out)
    other = dataclasses.replace(p, device={**p.device, fact: value})
    with pytest.raises(FlexsimError, match=f"they differ in {fact} "):
        merge_profiles(p, other)


def test_update_keeps_the_hosts_costs_and_the_idle_power_it_did_not_measure(tmp_path):
    from simulator.profiler.session import HOST_FIELDS, merge_profiles

    out = tmp_path / "p.json"
    assert main(["profile", "fmnist-cnn-w8", "--batch-sizes", "1", "--out", str(out), *FAST]) == 0
    new = load_profile(out)
    old = dataclasses.replace(new, idle_power_w=12.5, dispatch_overhead_ms=0.05, idle_dispatch_ms=0.07,
                              release_cost_ms=0.01, wakeup=((1.0, 4.0), (1.2, 1.5)), wakeup_decay=0.3,
                              member_idle=((2.0,), (1.1,)), speed_noise=SpeedNoise(sigma=0.1, correlation_ms=30.0))
    merged = merge_profiles(old, dataclasses.replace(new, idle_power_w=None))
    assert merged.idle_power_w == 12.5
    assert all(getattr(merged, k) == getattr(old, k) for k in HOST_FIELDS)
    assert merge_profiles(old, dataclasses.replace(new, idle_power_w=30.0)).idle_power_w == 30.0


def test_update_of_another_devices_profile_is_refused_before_measuring(tmp_path, capsys):
    import shutil

    out = tmp_path / "h100.json"
    shutil.copy(Path(__file__).resolve().parents[1] / "profiles" / "h100.json", out)
    before = out.read_bytes()
    err = cli_error(capsys, ["profile", "fmnist-cnn-w8", "--batch-sizes", "1", "--out", str(out), "--update", *FAST])
    assert "cannot update profile h100: it was measured on 'NVIDIA H100" in err
    assert "batch 1" not in capsys.readouterr().out and out.read_bytes() == before


@pytest.mark.parametrize("args, message", [
    (["nonet"], "unknown model 'nonet'"),
    (["fmnist-cnn-w8", "--batch-sizes", "0"], "invalid batch size 0"),
    (["fmnist-cnn-w8", "--batch-sizes", "2-x"], "invalid --batch-sizes part '2-x'"),
    (["fmnist-cnn-w8", "--dtypes", "fp8"], "invalid dtypes = fp8"),
    (["fmnist-cnn-w8", "--modes", "graph"], "mode = 'graph' needs a CUDA device"),
    (["fmnist-cnn-w8", "--device", "tpu"], "invalid device 'tpu'"),
    (["fmnist-cnn-w8", "--kind", "phone"], "invalid kind 'phone'"),
    (["fmnist-cnn-w8", "--repeats", "1"], "invalid repeats = 1"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "p.json"
    assert main(["profile", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_asked_for_but_absent(tmp_path, capsys):
    assert main(["profile", "fmnist-cnn-w8", "--device", "cuda", "--out", str(tmp_path / "p.json")]) == 2
    assert "no CUDA device is available here" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@given(parts=st.lists(st.tuples(st.integers(1, 40), st.integers(0, 5)), min_size=1, max_size=5))
@settings(deadline=None)
def test_batch_size_ranges_parse(parts):
    from simulator.commands.profile import parse_batch_sizes

    text = ",".join(f"{lo}-{lo + n}" if n else str(lo) for lo, n in parts)
    expected = [b for lo, n in parts for b in range(lo, lo + n + 1)]
    twice = next((b for i, b in enumerate(expected) if b in expected[:i]), None)
    if twice is None:
        assert list(parse_batch_sizes(text)) == expected
    else:                                           # a size given twice is a typo, named
        with pytest.raises(FlexsimError, match=f"batch size {twice} given twice"):
            parse_batch_sizes(text)


# ------------------------------------------------------------------------------------------ profile files

@pytest.mark.parametrize("edit, message", [
    (lambda o: o.update(schema_version=0), "schema_version = 0 is not supported"),
    (lambda o: o["models"]["m"]["batches"]["1"]["latency_ms"].update(samples=[1.0, float("nan")]),
     "models.m.batches.1.latency_ms.samples[1] = nan must be a number > 0 and <= 1e+09"),
    (lambda o: o["models"]["m"]["batches"]["1"]["latency_ms"].update(samples=[-2.0]),
     "samples[0] = -2.0 must be a number > 0 and <= 1e+09"),
    (lambda o: o["models"]["m"]["batches"]["1"].update(energy_j=-1), "energy_j = -1 must be a number from 0 to 1e+09"),
    (lambda o: o["models"]["m"]["batches"]["1"].update(latency_summary_ms={"p50": float("nan"), "n": 5}),
     "batches.1.latency_summary_ms.p50 = nan must be a number > 0 and <= 1e+09"),
    (lambda o: o["models"]["m"]["batches"]["1"].update(latency_summary_ms={"p99": -1.0}),
     "latency_summary_ms.p99 = -1.0 must be a number > 0"),
    (lambda o: o["models"]["m"]["batches"].update({"01": {"latency_ms": {"samples": [1000.0]}}}),
     "models.m.batches: batch size 1 appears twice ('1' and '01')"),
    (lambda o: o["models"]["m"].update(dtype="fp64"), "profile x: model m's dtype = 'fp64' must be one of"),
])
def test_bad_profile_files_are_one_line_errors(tmp_path, capsys, edit, message):
    obj = {"schema_version": 1, "name": "x", "device": {"name": "d", "kind": "cpu"}, "idle_power_w": None,
           "decision_overhead_ms": 0.01, "provenance": {"source": "measured"},
           "models": {"m": {"arch": "resnet18", "batches": {"1": {"latency_ms": {"samples": [1.0]}}}}}}
    edit(obj)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(obj))
    assert main(["costmodel", "accuracy", "--profile", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_key_twice_in_one_object_is_refused(tmp_path, capsys):
    path = tmp_path / "twice.json"
    path.write_text((Path(__file__).resolve().parents[1] / "profiles" / "h100.json").read_text()
                    .replace('"batches": {', '"batches": {"1": {"latency_ms": {"samples": [1000.0]}}, ', 1))
    assert main(["profiles", str(path)]) == 2
    assert f"profile: {path} holds the key '1' twice in one object" in capsys.readouterr().err


def test_corrupt_profile_file(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text('{"schema_version": 1, "name": ')
    assert main(["costmodel", "accuracy", "--profile", str(path)]) == 2
    assert "is not valid JSON" in capsys.readouterr().err


def test_shipped_cpu_profile_was_measured_here():
    shipped = sorted(Path(__file__).resolve().parent.parent.joinpath("profiles").glob("cpu-*.json"))
    assert shipped, "no measured CPU profile shipped"
    p = load_profile(shipped[0])
    assert p.provenance["source"] == "measured" and p.kind == "cpu"
    assert {"fmnist-cnn-w8", "fmnist-cnn-w32", "fmnist-cnn-w64"} <= set(p.models)
    assert sorted(p.models["fmnist-cnn-w32"].batches) == list(range(1, 17))


def test_profiles_doc_example_runs():
    import re

    doc = Path(__file__).resolve().parent.parent / "docs" / "profiles.md"
    code = "\n".join(re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S))
    namespace = {}
    exec(compile(code, "profiles.md", "exec"), namespace)
    assert sorted(namespace["entry"].batches) == [1, 2, 4]


# ------------------------------------------------------------------------------------------ CUDA paths, faked
# No GPU was available where these were written: the CUDA code paths are checked against a fake torch.cuda only.

def _fake_torch(clock, gpus=1):
    from types import SimpleNamespace

    class Event:
        def __init__(self, enable_timing=True):
            self.t = None

        def record(self):
            self.t = clock.t

        def elapsed_time(self, end):
            return (end.t - self.t) * 1e3

    cuda = SimpleNamespace(Event=Event, is_available=lambda: gpus > 0, device_count=lambda: gpus)
    return SimpleNamespace(cuda=cuda, version=SimpleNamespace(cuda="13.0" if gpus else None), __version__="fake")


def test_cuda_event_and_host_time_of_a_call():
    from simulator.profiler.targets import Target, cuda_event_samples_ms

    clock = FakeClock()

    class Output:
        def to(self, where):
            clock.t += 0.0002  # copy to the host (synchronises)
            return self

    def forward():
        clock.t += 0.001
        return Output()

    target = Target(run=None, forward=forward, module=None, batch=1, cuda=True)
    host, device = cuda_event_samples_ms(_fake_torch(clock), target, 4, clock)
    assert np.allclose(host, 1.2) and np.allclose(device, 1.0)


def test_cuda_device_checks():
    from simulator.profiler.targets import check_device, check_mode

    clock = FakeClock()
    assert check_device(_fake_torch(clock, gpus=2), "cuda:1") == "cuda:1"
    with pytest.raises(FlexsimError, match="only 1 CUDA device"):
        check_device(_fake_torch(clock, gpus=1), "cuda:1")
    with pytest.raises(FlexsimError, match="no CUDA device is available here .*CUDA build: none"):
        check_device(_fake_torch(clock, gpus=0), "cuda")
    assert check_mode("graph", "cuda:0") == "graph"


def test_update_files_a_members_other_form_under_its_full_name():
    """A member measured as a CUDA graph under its bare name keeps it when an update measures it eager."""
    import copy

    from simulator.profiler.session import _renamed_forms
    from simulator.profiles import load_profile

    old = load_profile("profiles/h200.json").models
    eager = copy.deepcopy(old["fmnist-cnn-w8"])
    eager.info["mode"] = "eager"
    assert list(_renamed_forms(old, {"fmnist-cnn-w8": eager})) == ["fmnist-cnn-w8-fp32-eager"]
    assert list(_renamed_forms(old, {"fmnist-cnn-w8": old["fmnist-cnn-w8"]})) == ["fmnist-cnn-w8"]


@pytest.mark.parametrize("argv, message", [
    (["fmnist-cnn-w8", "--batch-sizes", "1-100000000000"], "batch sizes go up to 65536"),
    (["fmnist-cnn-w999999999"], "the width of a Fashion-MNIST member goes up to 1024"),
    (["fmnist-cnn-w8", "--no-energy", "--warmup-s", "inf"], "invalid warmup_s = inf: must be a number from 0.0"),
])
def test_impossible_measurements_are_refused_before_any(tmp_path, capsys, argv, message):

    assert message in cli_error(capsys, ["profile", *argv, "--out", str(tmp_path / "p.json")])
    assert not (tmp_path / "p.json").exists()
