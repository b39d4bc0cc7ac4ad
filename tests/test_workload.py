"""Arrival specifications, generated arrival processes, trace files and closed loops."""

import numpy as np
import pytest

from simulator.errors import FlexsimError
from simulator.workload import generate_arrivals, parse_arrivals, read_trace


@pytest.mark.parametrize("text, kind, rates, load", [
    ("poisson:1200", "poisson", (1200.0,), None),
    ("poisson:load=0.8", "poisson", (None,), 0.8),
    ("gamma:500:2.5", "gamma", (500.0,), None),
    ("mmpp:100:900:0.5", "mmpp", (100.0, 900.0), None),
])
def test_parse_open_loop_specs(text, kind, rates, load):
    spec = parse_arrivals(text)
    assert (spec.kind, spec.rates, spec.load) == (kind, rates, load)


def test_parse_closed_and_trace():
    assert parse_arrivals("closed").clients == 1
    assert parse_arrivals("closed:8").clients == 8
    assert parse_arrivals("trace:/tmp/a:b.csv").path == "/tmp/a:b.csv"


@pytest.mark.parametrize("text, message", [
    ("uniform:3", "unknown kind"), ("poisson", "expected poisson"), ("poisson:-3", "rate"),
    ("poisson:abc", "not a number"), ("gamma:100", "expected gamma"), ("gamma:100:0", "CV"),
    ("closed:2.5", "integer"), ("closed:0", "CLIENTS"), ("trace:", "trace:PATH"), ("", "expected e.g."),
    ("poisson:load=-1", "load"), ("poisson:inf", "rate"),
])
def test_bad_specs_are_named(text, message):
    with pytest.raises(FlexsimError, match=message):
        parse_arrivals(text)


def test_poisson_rate_and_gamma_cv():
    rng = np.random.default_rng(1)
    a = generate_arrivals(parse_arrivals("poisson:2000"), 200_000, rng)
    gaps = np.diff(a)
    assert np.all(gaps >= 0)
    assert abs(1 / gaps.mean() - 2000) / 2000 < 0.02
    g = np.diff(generate_arrivals(parse_arrivals("gamma:2000:3"), 200_000, rng))
    assert abs(g.std() / g.mean() - 3) < 0.1
    assert abs(1 / g.mean() - 2000) / 2000 < 0.05


def test_mmpp_alternates_rates():
    a = generate_arrivals(parse_arrivals("mmpp:100:1900:0.2"), 100_000, np.random.default_rng(2))
    assert np.all(np.diff(a) >= 0) and len(a) == 100_000
    assert abs(len(a) / a[-1] - 1000) / 1000 < 0.1     # mean of the two rates (~500 dwell periods: within ~5%)
    counts = np.histogram(a, bins=np.arange(0, a[-1], 0.1))[0]
    assert counts.std() / counts.mean() > 0.5          # bursty: far more variable than Poisson


def test_load_rates_resolve():
    spec = parse_arrivals("gamma:load=0.5:2").resolve(mean_service_s=0.002)
    assert spec.rates == (250.0,) and spec.load is None


def _write(tmp_path, text):
    path = tmp_path / "trace.csv"
    path.write_text(text)
    return path


def test_trace_columns(tmp_path):
    t = read_trace(_write(tmp_path, "arrival_s,deadline_ms,sample\n0.0,5,3\n0.5,7,1\n0.5,9,0\n"))
    assert list(t.arrival_s) == [0.0, 0.5, 0.5] and list(t.deadline_ms) == [5, 7, 9] and list(t.sample) == [3, 1, 0]
    assert t.energy_budget_j is None


@pytest.mark.parametrize("text, message", [
    ("time\n1\n", "no column 'arrival_s'"), ("arrival_s\n", "empty"), ("arrival_s\n1\n0.5\n", "not sorted"),
    ("arrival_s\n-1\n", "negative"), ("arrival_s\nx\n", "not a number"), ("arrival_s,sample\n1,0.5\n", "integers"),
])
def test_bad_traces_are_named(tmp_path, text, message):
    with pytest.raises(FlexsimError, match=message):
        read_trace(_write(tmp_path, text))


def test_missing_trace_file():
    with pytest.raises(FlexsimError, match="does not exist"):
        read_trace("/nonexistent/trace.csv")


@pytest.mark.parametrize("text, message", [
    ("arrival_s\n0\nnan\n", "arrival_s row 2 = nan is not a finite number"),
    ("arrival_s\n0\ninf\n", "arrival_s row 2 = inf is not a finite number"),
    ("arrival_s\n0\n2e9\n", "row 2 = 2e\\+09 s is beyond 1e\\+09 s"),
    ("arrival_s,sample\n0,1e30\n", "sample row 1 = 1e\\+30 is not a sample index"),
    ("arrival_s,sample\n0,-1\n", "sample row 1 = -1 is not a sample index"),
])
def test_non_finite_times_and_bad_sample_indices(tmp_path, text, message):
    with pytest.raises(FlexsimError, match=message):
        read_trace(_write(tmp_path, text))


def test_unreadable_trace_files_are_named(tmp_path):
    with pytest.raises(FlexsimError, match="is a directory, not a file"):
        read_trace(tmp_path)
    path = tmp_path / "t.csv"
    path.write_bytes(b"arrival_s\n\xff\xfe\n")
    with pytest.raises(FlexsimError, match="not a UTF-8 text file"):
        read_trace(path)


@pytest.mark.parametrize("text, message", [
    ("poisson:1e-320", "arrival 1 = inf is not a finite number"),
    ("poisson:1e-300", "beyond 1e\\+09 s"),
    ("gamma:1e-300:2", "beyond 1e\\+09 s"),
    ("mmpp:1e-300:1e-200:1", "beyond 1e\\+09 s"),
])
def test_rates_too_small_for_finite_arrivals(text, message):
    with pytest.raises(FlexsimError, match=message + ".*the rate is too small"):
        generate_arrivals(parse_arrivals(text), 300, np.random.default_rng(0))


def test_load_is_a_share_of_the_devices_combined_capacity_whatever_their_order():
    from simulator.config import RunConfig
    from simulator.run import mean_service_s, prepare

    base = dict(requests=500, devices=2, arrivals="poisson:load=0.5", seed=3)
    fast_first = prepare(RunConfig(profile=("a100", "rpi5"), **base))
    slow_first = prepare(RunConfig(profile=("rpi5", "a100"), **base))
    np.testing.assert_allclose(fast_first.arrival_s, slow_first.arrival_s, rtol=1e-12)
    means = [mean_service_s(fast_first.stages, fast_first.cost_scale, fast_first.devices, fast_first.policy, d)
             for d in (0, 1)]
    assert means[1] > 2 * means[0]                                       # a Raspberry Pi 5 beside an A100
    alone = prepare(RunConfig(profile=("a100",), **{**base, "devices": 1}))
    capacity = 1 / means[0] + 1 / means[1]                               # requests/s of the two together
    # the same seeded draws at another rate: inter-arrival times scale by the ratio of the rates
    np.testing.assert_allclose(np.diff(fast_first.arrival_s), np.diff(alone.arrival_s) * (1 / means[0]) / capacity,
                               rtol=1e-9)


@pytest.mark.parametrize("arrivals, message", [
    ("mmpp:100:200:1e-300", "DWELL_S = 1e-300 s is too short for 50 arrivals"),
    ("gamma:load=0.8:1e-200", "CV must be >= 1e-06"),
    ("closed:1e15", "1000000000000000 clients for 50 requests"),
])
def test_impossible_arrivals_are_refused_before_any_work(arrivals, message):
    from simulator.config import RunConfig
    from simulator.run import prepare

    with pytest.raises(FlexsimError, match=message):
        prepare(RunConfig(requests=50, arrivals=arrivals))


def test_more_requests_than_memory_holds_are_refused_before_allocating():
    from simulator.config import RunConfig
    from simulator.run import prepare

    with pytest.raises(FlexsimError, match="invalid requests = 1000000000000: about .* GB of arrays, more than"):
        prepare(RunConfig(requests=10 ** 12))


@pytest.mark.parametrize("text, message", [
    ("arrival_s\n0.1\n0.2,3\n", "row 2 has more fields than the header's 1"),
    ("arrival_s,sample\n0.1\n", "row 1 has fewer fields than the header's 2"),
    ("arrival_s,arrival_s\n0.1,0.2\n", "column arrival_s appears more than once"),
    ('arrival_s\n"0.1\n', "malformed CSV"),
])
def test_ragged_or_ambiguous_trace_files_are_refused(tmp_path, text, message):
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(FlexsimError, match=message):
        read_trace(path)


def test_a_trace_is_parsed_once_while_unchanged_and_again_once_rewritten(tmp_path):
    from simulator.io import write_text_atomic

    path = tmp_path / "t.csv"
    write_text_atomic(path, "arrival_s,sample\n0.0,3\n0.5,4\n")
    first = read_trace(path)
    assert read_trace(path) is first                                  # shared, so ...
    with pytest.raises(ValueError):
        first.arrival_s[0] = 9.0                                      # ... read-only
    write_text_atomic(path, "arrival_s,sample\n0.0,3\n0.7,4\n")      # the same size, a new file
    assert read_trace(path).arrival_s.tolist() == [0.0, 0.7]
    path.write_text("arrival_s\n-1\n")
    for _ in range(2):                                                # a bad file is named every time
        with pytest.raises(FlexsimError, match="negative"):
            read_trace(path)
