"""The real runner on the shipped trained ensemble: well-formed records, live = replay = simulation (stages and
predictions), closed loop, the dispatcher thread, and bad input (one line). Timing is not asserted: it is the
subject of docs/validation.md."""

import sys
from pathlib import Path

import numpy as np
import pytest

from simulator.config import RunConfig
from simulator.errors import FlexsimError
from simulator.logits import LogitCache, load_cache, save_cache
from simulator.profiles import BatchEntry, LatencyDistribution, ModelEntry, Profile, save_profile
from simulator.run import prepare, run_inputs
from simulator.runner.bundle import CACHE_PATH, MEMBERS_PATH, SAMPLES_PATH, load_members, load_samples

torch = pytest.importorskip("torch")

from simulator.runner.compute import EagerStage, member_modules, normalized_images  # noqa: E402
from simulator.runner.real import RunnerSetup, run_real  # noqa: E402

ENSEMBLE = dict(members=(0, 1, 2, 3), thresholds=(0.6, 0.5, 0.4))
MODELS_MS = {"fmnist-cnn-w8": 0.3, "fmnist-cnn-w16": 0.5, "fmnist-cnn-w32": 1.1}


@pytest.fixture(scope="module")
def profile_path(tmp_path_factory) -> str:
    """A small CPU profile of the shipped members' models (spread latencies; values do not matter here)."""
    models = {name: ModelEntry(batches={1: BatchEntry(latency=LatencyDistribution(
        samples_ms=ms * np.array([0.9, 1.0, 1.1, 1.3])))}) for name, ms in MODELS_MS.items()}
    profile = Profile(name="test-cpu", device={"name": "test", "kind": "cpu"}, idle_power_w=None,
                      decision_overhead_ms=0.05, provenance={"source": "derived"}, models=models)
    path = tmp_path_factory.mktemp("profile") / "cpu.json"
    save_profile(path, profile)
    return str(path)


def config(profile_path, **changes) -> RunConfig:
    fields = dict(logits=str(CACHE_PATH), profile=(profile_path,), requests=40, seed=3,
                  arrivals="poisson:load=0.5", **ENSEMBLE)
    return RunConfig(**{**fields, **changes})


def check_well_formed(real, inputs, labels) -> None:
    req = real.requests
    n = inputs.n_requests
    assert len(req) == n and real.summary.n_requests == n
    assert np.all(req.arrival_s <= req.start_s) and np.all(req.start_s < req.finish_s)
    assert np.all(req.start_s[1:] >= req.finish_s[:-1])                       # one worker, FIFO, in order
    np.testing.assert_allclose(req.latency_ms, (req.finish_s - req.arrival_s) * 1000.0)
    assert np.all((req.stages_run >= 1) & (req.stages_run <= inputs.n_stages))
    assert np.array_equal(req.correct, req.prediction == labels[req.sample])
    assert np.array_equal(req.sample, inputs.sample)
    assert len(real.batches) == req.stages_run.sum() and np.all(real.batches.batch_size == 1)
    assert np.all(real.batches.end_s > real.batches.start_s)
    assert np.all(real.stage_times.compute_s > 0) and np.all(real.stage_times.decision_s >= 0)
    assert np.isnan(req.energy_j).all() and real.summary.energy_per_request_j is None
    assert 0.0 < real.summary.utilisation <= 1.0


def test_live_run_is_well_formed_and_agrees_with_both_engines(profile_path):
    cfg = config(profile_path)
    cache = load_cache(cfg.logits)
    inputs = prepare(cfg, cache)
    real = run_real(cfg, RunnerSetup(), inputs=inputs, cache=cache)
    check_well_formed(real, inputs, cache.labels)
    assert np.array_equal(real.requests.arrival_s, inputs.arrival_s)
    for engine in ("numba", "simpy"):
        sim = run_inputs(inputs, engine)
        assert np.array_equal(real.requests.stages_run, sim.requests.stages_run)
        assert np.array_equal(real.requests.prediction, sim.requests.prediction)
    assert 1 < real.summary.mean_stages < 4                                   # the thresholds do stop requests
    assert real.setup["allocator"] == real.setup["allocator_facts"]["allocator"] == "steady"


def test_live_predictions_equal_the_replay_of_the_cache(profile_path):
    cfg = config(profile_path, requests=30)
    inputs = prepare(cfg)
    live = run_real(cfg, RunnerSetup(mode="live"), inputs=inputs)
    replay = run_real(cfg, RunnerSetup(mode="replay", compute=("fmnist-cnn-w8",)), inputs=inputs)
    assert np.array_equal(live.requests.stages_run, replay.requests.stages_run)
    assert np.array_equal(live.requests.prediction, replay.requests.prediction)


def test_replay_decides_on_a_float64_cache_in_float64(profile_path, tmp_path):
    """Logits that differ below float32's precision (classes 0 and 1 by 1e-12 in every member): the simulator decides
    on the float64 values (class 1); the replay must too, not on float32 copies that tie (class 0)."""
    cache = load_cache(str(CACHE_PATH))
    logits = cache.logits.astype(np.float64)
    logits[:, :20, :] = 0.0
    logits[:, :20, 0], logits[:, :20, 1] = 1.0, 1.0 + 1e-12
    save_cache(tmp_path / "fine.npz", LogitCache(logits=logits, labels=cache.labels, model_names=cache.model_names))
    cfg = config(profile_path, logits=str(tmp_path / "fine.npz"), requests=20, sample_order="cyclic")
    inputs = prepare(cfg)
    replay = run_real(cfg, RunnerSetup(mode="replay", compute=("fmnist-cnn-w8",)), inputs=inputs)
    sim = run_inputs(inputs, "numba")
    assert list(sim.requests.prediction) == [1] * 20
    assert np.array_equal(replay.requests.prediction, sim.requests.prediction)
    assert np.array_equal(replay.requests.stages_run, sim.requests.stages_run)


def test_live_logits_are_the_cached_logits():
    members, samples, cache = load_members(), load_samples(), load_cache(str(CACHE_PATH))
    modules = member_modules(members, "cpu")
    images = normalized_images(samples, members.pixel_mean, members.pixel_std, "cpu")
    for m in (0, 4, 5):
        stage = EagerStage(modules[m], images)
        live = np.stack([stage(s) for s in range(25)])
        np.testing.assert_allclose(live, cache.logits[m, :25], rtol=0, atol=1e-4)
        assert np.array_equal(live.argmax(1), cache.logits[m, :25].argmax(1))


def test_shipped_ensemble_is_trained():
    members, cache = load_members(), load_cache(str(CACHE_PATH))
    assert cache.model_names == members.model_names and cache.n_members == members.n_members
    assert np.all(members.test_accuracy > 0.8)
    assert (cache.logits[0].argmax(1) == cache.labels).mean() > 0.8


def test_closed_loop_releases_a_request_at_each_finish(profile_path):
    cfg = config(profile_path, arrivals="closed:2", requests=20)
    inputs = prepare(cfg)
    real = run_real(cfg, RunnerSetup(), inputs=inputs)
    req = real.requests
    assert np.all(req.arrival_s[:2] == 0.0)
    np.testing.assert_array_equal(req.arrival_s[2:], req.finish_s[:-2])
    assert np.array_equal(req.queue_len, np.minimum(20, 2 + np.arange(20)) - np.arange(20) - 1)
    assert np.array_equal(req.stages_run, run_inputs(inputs).requests.stages_run)


def test_dispatcher_thread_records_release_lags(profile_path):
    cfg = config(profile_path, requests=25)
    inputs = prepare(cfg)
    real = run_real(cfg, RunnerSetup(release="thread"), inputs=inputs)
    check_well_formed(real, inputs, load_cache(cfg.logits).labels)
    assert real.release_lag_s is not None and np.all(real.release_lag_s >= 0)


def test_a_spinning_idle_worker_serves_the_same(profile_path):
    cfg = config(profile_path, requests=25)
    inputs = prepare(cfg)
    real = run_real(cfg, RunnerSetup(idle="spin"), inputs=inputs)
    check_well_formed(real, inputs, load_cache(cfg.logits).labels)
    assert np.array_equal(real.requests.stages_run, run_inputs(inputs).requests.stages_run)


def test_deadline_and_cascade_runs_are_well_formed(profile_path):
    for changes in (dict(policy=("threshold", "deadline"), deadline_ms=0.5),
                    dict(members=(0, 4, 5), thresholds=(0.8, 0.7), combiner="last")):
        cfg = config(profile_path, requests=25, **changes)
        inputs = prepare(cfg)
        real = run_real(cfg, RunnerSetup(), inputs=inputs)
        check_well_formed(real, inputs, load_cache(cfg.logits).labels)


def test_an_energy_budget_counts_the_dispatch_overhead_as_the_engines_do(tmp_path):
    """A profile with energies and a dispatch overhead (idle power over it: 0.05 J on each request's first stage), and
    a budget that every stage's energy fits but not with the dispatch's: the real run's energy-budget decisions equal
    the simulation's (each stops before its last stage)."""
    energies = {"fmnist-cnn-w8": 0.01, "fmnist-cnn-w16": 0.02, "fmnist-cnn-w32": 0.04}
    models = {name: ModelEntry(batches={1: BatchEntry(latency=LatencyDistribution(samples_ms=np.array([ms])),
                                                      energy_j=energies[name])}) for name, ms in MODELS_MS.items()}
    profile = Profile(name="test-cpu-energy", device={"name": "test", "kind": "cpu"}, idle_power_w=10.0,
                      decision_overhead_ms=0.0, dispatch_overhead_ms=5.0, provenance={"source": "derived"},
                      models=models)
    save_profile(tmp_path / "energy.json", profile)
    cfg = config(str(tmp_path / "energy.json"), requests=20, policy=("energy",), thresholds=(), members=(0, 1),
                 energy_budget_j=0.045)
    inputs = prepare(cfg)
    real = run_real(cfg, RunnerSetup(), inputs=inputs)
    sim = run_inputs(inputs, "numba")
    assert np.array_equal(real.requests.stages_run, sim.requests.stages_run)
    assert list(sim.requests.stages_run) == [1] * 20


# ------------------------------------------------------------------------------------------ bad input

def test_missing_weights_file(profile_path, tmp_path):
    with pytest.raises(FlexsimError, match="weights file .*missing.npz does not exist"):
        run_real(config(profile_path), RunnerSetup(members_path=str(tmp_path / "missing.npz")))


def _members_with(tmp_path, change):
    """The shipped members' file with `change(arrays)` applied (a dict of arrays, changed in place)."""
    with np.load(MEMBERS_PATH) as shipped:
        arrays = dict(shipped)
    change(arrays)
    np.savez(tmp_path / "members.npz", **arrays)
    return str(tmp_path / "members.npz")


@pytest.mark.parametrize("change, message", [
    (lambda a: a.__setitem__("m0/classifier.1.weight", a["m0/classifier.1.weight"] * np.nan),
     "member 0's classifier.1.weight has NaN or infinite values"),
    (lambda a: a.__setitem__("pixel_std", np.float64(0.0)), "invalid pixel_mean = .*, pixel_std = 0.0"),
    (lambda a: a.__setitem__("pixel_mean", np.float64(np.nan)), "invalid pixel_mean = nan"),
    (lambda a: a.__setitem__("m1/classifier.1.weight", np.zeros((12, 32), np.float32)),
     r"member 1 of .* does not fit FashionCNN\(8\): classifier.1.weight has shape \(12, 32\), the model's is"),
    (lambda a: a.pop("m0/classifier.1.bias"), r"does not fit FashionCNN\(8\): no tensor classifier.1.bias"),
])
def test_a_weights_file_that_cannot_serve(profile_path, tmp_path, change, message):
    path = _members_with(tmp_path, change)
    with pytest.raises(FlexsimError, match=message):
        run_real(config(profile_path), RunnerSetup(members_path=path))


def test_images_of_another_size_than_the_members(profile_path, tmp_path):
    with np.load(SAMPLES_PATH) as shipped:
        arrays = dict(shipped)
    arrays["images"] = np.pad(arrays["images"], ((0, 0), (2, 2), (2, 2)))
    np.savez(tmp_path / "samples.npz", **arrays)
    with pytest.raises(FlexsimError, match="images are 32x32, the members take 28x28"):
        run_real(config(profile_path), RunnerSetup(samples_path=str(tmp_path / "samples.npz")))


def test_model_output_width_differs_from_the_cache(profile_path, tmp_path):
    cache = load_cache(str(CACHE_PATH))
    wide = np.concatenate([cache.logits, np.zeros(cache.logits.shape[:2] + (2,), dtype=np.float32)], axis=2)
    path = tmp_path / "wide.npz"
    save_cache(path, LogitCache(logits=wide, labels=cache.labels, model_names=cache.model_names))
    with pytest.raises(FlexsimError, match="outputs 10 classes, but the cache .* has 12"):
        run_real(config(profile_path, logits=str(path)), RunnerSetup())


def test_trace_longer_than_the_images_without_a_sample_column(profile_path, tmp_path):
    cache = load_cache(str(CACHE_PATH))
    tiled = LogitCache(logits=np.concatenate([cache.logits] * 2, axis=1), labels=np.tile(cache.labels, 2),
                       model_names=cache.model_names)
    save_cache(tmp_path / "tiled.npz", tiled)
    n = cache.n_samples + 5
    trace = tmp_path / "trace.csv"
    trace.write_text("arrival_s\n" + "\n".join(f"{i * 0.01:.3f}" for i in range(n)) + "\n")
    cfg = config(profile_path, logits=str(tmp_path / "tiled.npz"), arrivals=f"trace:{trace}", requests=None)
    with pytest.raises(FlexsimError, match=f"holds {cache.n_samples} images; give the trace a 'sample' column"):
        run_real(cfg, RunnerSetup())


def test_images_of_another_cache(profile_path, tmp_path):
    cache = load_cache(str(CACHE_PATH))
    save_cache(tmp_path / "other.npz", LogitCache(logits=cache.logits, labels=(cache.labels + 1) % 10,
                                                  model_names=cache.model_names))
    with pytest.raises(FlexsimError, match="labels of .* differ"):
        run_real(config(profile_path, logits=str(tmp_path / "other.npz")), RunnerSetup())


@pytest.mark.parametrize("changes, message", [
    (dict(batch_size=2), "batch_size = 2 is not supported"),
    (dict(policy=("threshold", "power-cap"), power_cap_w=10.0), "power-cap is not supported"),
])
def test_unsupported_configs(profile_path, changes, message):
    with pytest.raises(FlexsimError, match=message):
        run_real(config(profile_path, **changes), RunnerSetup())


@pytest.mark.parametrize("fields, message", [
    (dict(mode="dream"), "invalid mode = 'dream'"),
    (dict(mode="replay"), "replay mode needs a compute model"),
    (dict(release="carrier-pigeon"), "invalid release"),
    (dict(idle="nap"), "invalid idle = 'nap'"),
    (dict(execution="jit"), "invalid execution"),
    (dict(device="tpu"), "invalid device = 'tpu'"),
    (dict(allocator="mimalloc"), "invalid allocator = 'mimalloc'"),
])
def test_bad_setup(fields, message):
    with pytest.raises(FlexsimError, match=message):
        RunnerSetup(**fields)


def test_graph_execution_needs_cuda(profile_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: graph execution is valid")
    with pytest.raises(FlexsimError, match="execution = graph needs a CUDA device"):
        run_real(config(profile_path), RunnerSetup(execution="graph"))


def test_shipped_files_exist():
    for path in (MEMBERS_PATH, SAMPLES_PATH, CACHE_PATH):
        assert Path(path).exists() and Path(path).stat().st_size < 2_000_000


def _train_script(monkeypatch):
    """experiments/train_fmnist.py as a module, its test split the shipped 1,000 served images (no dataset here)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_fmnist", Path(__file__).resolve().parents[1] / "experiments"
                                                  / "train_fmnist.py")
    script = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "train_fmnist", script)          # its dataclasses look their module up there
    spec.loader.exec_module(script)
    samples = load_samples()
    monkeypatch.setattr(script, "load_split", lambda split, root=None: (samples.images.copy(), samples.labels.copy()))
    return script


def test_training_writes_the_ensembles_four_files_together_or_none(tmp_path, monkeypatch):
    script = _train_script(monkeypatch)
    members = load_members()
    out = tmp_path / "out"
    out.mkdir()
    for name in ("fmnist_cpu_members.npz", "fmnist_cpu_samples.npz", "fmnist_cpu_logits_test.npz"):
        (out / name).write_text("earlier")
    (out / "fmnist_cpu.md").mkdir()                          # the last file cannot be written
    with pytest.raises(FlexsimError, match="fmnist_cpu.md"):
        script.write_ensemble("cpu", script.CONFIGS["cpu"], members.states, out, 100, "cpu", 1)
    assert sorted(p.name for p in out.iterdir()) == ["fmnist_cpu.md", "fmnist_cpu_logits_test.npz",
                                                     "fmnist_cpu_members.npz", "fmnist_cpu_samples.npz"]
    assert (out / "fmnist_cpu_samples.npz").read_text() == "earlier"
    (out / "fmnist_cpu.md").rmdir()
    script.write_ensemble("cpu", script.CONFIGS["cpu"], members.states, out, 100, "cpu", 1)
    cache = load_cache(out / "fmnist_cpu_logits_test.npz")
    # the shipped logits were computed on an AVX-512 host; another CPU's kernels round the last bits otherwise
    np.testing.assert_allclose(cache.logits, load_cache(CACHE_PATH).logits[:, :100], rtol=0, atol=1e-4)
    assert load_samples(out / "fmnist_cpu_samples.npz").n_samples == 100


def test_training_refuses_a_trained_member_file_it_cannot_read(tmp_path, monkeypatch):
    script = _train_script(monkeypatch)
    (tmp_path / "member-0-w8-s0-e3.npz").write_text("not a member")
    with pytest.raises(FlexsimError, match="trained member .*member-0-w8-s0-e3.npz cannot be read"):
        script.trained_states(script.CONFIGS["cpu"], tmp_path, None, None, "cpu", None)
