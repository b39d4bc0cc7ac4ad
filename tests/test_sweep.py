"""Sweeps: each combination's run is the simulation of that configuration; bad input fails before any run."""

import csv
import json
import math
import re

import pytest

from simulator import RunConfig, simulate
from simulator.errors import FlexsimError
from simulator.sweep import parse_vary, sweep
from tests.helpers import cli_error

BASE = dict(policy=("threshold", "deadline", "energy"), requests=1500, arrivals="poisson:load=0.9")


def test_every_run_is_the_simulation_of_its_combination_and_seed():
    result = sweep(vary={"deadline_ms": (3.0, 12.0), "energy_budget_j": (0.3, 0.6)}, seeds=2, seed=5, **BASE)
    combinations = [(d, e) for d in (3.0, 12.0) for e in (0.3, 0.6)]           # the first field varies slowest
    expected = [(d, e, s) for d, e in combinations for s in (5, 6)]
    assert [(r["deadline_ms"], r["energy_budget_j"], r["seed"]) for r in result.rows()] == expected
    for row in result.rows():
        alone = simulate(deadline_ms=row["deadline_ms"], energy_budget_j=row["energy_budget_j"], seed=row["seed"],
                         **BASE).summary.to_dict()
        assert {k: row[k] for k in alone} == alone
    means = result.means()
    assert [(m["deadline_ms"], m["energy_budget_j"], m["runs"]) for m in means] == [(*c, 2) for c in combinations]
    first = [r["latency_p99_ms"] for r in result.rows()[:2]]
    assert means[0]["latency_p99_ms"] == pytest.approx(sum(first) / 2)
    assert (means[0]["latency_p99_ms_min"], means[0]["latency_p99_ms_max"]) == (min(first), max(first))
    assert means[0]["deadline_miss_rate"] > means[2]["deadline_miss_rate"]    # a tighter deadline misses more


@pytest.mark.parametrize("keep_bytes, prepared", [(None, 2 + 2), (0, 2 + 4), (1, 2 + 4)])
def test_the_check_pass_hands_its_inputs_to_the_runs_while_they_fit(monkeypatch, keep_bytes, prepared):
    """Each combination's first seed runs on the inputs its check prepared (none kept where they do not fit in
    KEEP_BYTES: then they are prepared again); the summaries are the same either way."""
    import importlib

    import simulator.run

    sweep_module = importlib.import_module("simulator.sweep")    # the package's `sweep` is the function
    calls, prepare = [], simulator.run.prepare
    monkeypatch.setattr(simulator.run, "prepare", lambda *a, **k: calls.append(1) or prepare(*a, **k))
    if keep_bytes is not None:
        monkeypatch.setattr(sweep_module, "KEEP_BYTES", keep_bytes)
    vary = {"deadline_ms": (3.0, 12.0)}
    result = sweep(vary=vary, seeds=2, seed=5, energy_budget_j=0.4, **BASE)
    assert len(calls) == prepared
    monkeypatch.setattr(sweep_module, "KEEP_BYTES", 0)
    again = sweep(vary=vary, seeds=2, seed=5, energy_budget_j=0.4, **BASE)
    assert result.rows() == again.rows()


def test_values_of_list_fields_and_their_text_form():
    assert parse_vary("thresholds=inf,inf|-inf,-inf") == ("thresholds", ((math.inf, math.inf), (-math.inf, -math.inf)))
    assert parse_vary("load-levels=0:2;4:1|0:1") == ("load_levels", ("0:2;4:1", "0:1"))
    result = sweep(vary={"members": ((0, 1), (1, 0))}, thresholds=(0.5,), requests=200)
    assert result.csv_text(result.rows()).splitlines()[1].startswith('"0,1",0,200,')


@pytest.mark.parametrize("vary, extra, message", [
    ({"foo": (1,)}, {}, "vary: unknown field"),
    ({"seed": (1, 2)}, {}, "seed cannot vary"),
    ({"record_batches": (True,)}, {}, "record_batches cannot vary"),
    ({"deadline_ms": ()}, {}, "must be a non-empty list"),
    ({"deadline_ms": 3.0}, {}, "must be a non-empty list"),
    ({"deadline_ms": (3.0, -1.0)}, {}, "invalid deadline_ms = -1.0"),
    ({"members": ((0, 1),)}, {}, r"sweep run members=0,1, seed=0: invalid thresholds: the default 0.4,0.5,0.2,0.2,0.2 "
                                 r"\(for the shipped 6-member ensemble\) has 5 values for 2 stages: give --thresholds "
                                 "with 1"),
    ({"members": ((0, 1),)}, {"thresholds": (0.5, 0.5)}, r"invalid thresholds: 2 values given for 2 stages"),
    ({"deadline_ms": (1.0,)}, {"seeds": 0}, "invalid seeds = 0"),
    ({"deadline_ms": tuple(range(1, 102))}, {"seeds": 100}, "10100 runs .* at most 10000"),
])
def test_bad_sweeps_are_refused_before_any_run(vary, extra, message):
    done = []
    with pytest.raises(FlexsimError, match=message):
        sweep(vary=vary, progress=lambda i, n: done.append(i), **extra)
    assert not done


def test_a_combination_that_cannot_run_is_found_before_the_first_run():
    done = []
    with pytest.raises(FlexsimError, match="sweep run profile=nope, seed=0: profile: unknown profile name 'nope'"):
        sweep(vary={"profile": (("h100",), ("nope",))}, progress=lambda i, n: done.append(i), requests=100)
    assert not done


def test_the_command_writes_its_files_as_one_set(tmp_path, capsys):
    from simulator.cli import main

    out = tmp_path / "sweep"
    assert main(["sweep", "--policy", "threshold,deadline", "--requests", "500", "--vary", "deadline-ms=2|8",
                 "--vary", "arrivals=poisson:load=0.5|poisson:load=0.9", "--seeds", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "8 runs (2 seed(s) each)" in printed and "poisson:load=0.9" in printed
    assert sorted(p.name for p in out.iterdir()) == ["runs.csv", "sweep.csv", "sweep.json", "sweep.png"]
    with open(out / "sweep.csv") as fh:
        means = list(csv.DictReader(fh))
    assert [(m["deadline_ms"], m["arrivals"]) for m in means] == [
        ("2.0", "poisson:load=0.5"), ("2.0", "poisson:load=0.9"),
        ("8.0", "poisson:load=0.5"), ("8.0", "poisson:load=0.9")]
    record = json.loads((out / "sweep.json").read_text())
    assert record["seeds"] == 2 and record["vary"]["deadline_ms"] == [2.0, 8.0]
    with open(out / "runs.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 8
    # three fields: no figure, and the earlier one is removed with the rest replaced
    assert main(["sweep", "--requests", "300", "--vary", "deadline-ms=2", "--vary", "batch-size=1",
                 "--vary", "devices=1|2", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["runs.csv", "sweep.csv", "sweep.json"]


def test_the_command_refuses_bad_input_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "sweep"
    for argv, message in ((["--vary", "deadline-ms=1||2"], "has an empty value"),
                          (["--vary", "deadline-ms=1|2", "--vary", "deadline_ms=3"], "a field is given twice"),
                          (["--vary", "deadline-ms=a"], "invalid deadline_ms = 'a'"),
                          (["--vary", "profile=h100|nope"], "unknown profile name 'nope'")):
        assert message in cli_error(capsys, ["sweep", "--requests", "100", *argv, "--out", str(out)])
    assert not out.exists()
    assert "nothing to vary: give --vary" in cli_error(capsys, ["sweep", "--requests", "100"])


def test_prepare_refuses_signals_of_another_shape():
    from simulator.logits import load_cache
    from simulator.run import prepare
    from simulator.signals import stage_signals

    cache = load_cache("fmnist")
    signals = stage_signals(cache.logits, cache.labels, (0, 1))
    with pytest.raises(FlexsimError, match="signals must be the StageSignals of 6 stages"):
        prepare(RunConfig(), cache, signals=signals)


def test_a_study_file_holds_the_sweep_and_flags_replace_its_values(tmp_path, capsys):
    from simulator.cli import main

    study = tmp_path / "study.toml"
    study.write_text('[run]\npolicy = ["threshold", "deadline"]\nrequests = 300\n\n'
                     '[sweep]\ndeadline-ms = [2, "8"]\nprofile = ["h100", "a100"]\nseeds = 2\n')
    assert main(["sweep", str(study), "--json"]) == 0
    means = json.loads(capsys.readouterr().out)
    assert [(m["deadline_ms"], m["profile"], m["runs"]) for m in means] == [
        (2, ["h100"], 2), (2, ["a100"], 2), (8.0, ["h100"], 2), (8.0, ["a100"], 2)]
    assert main(["sweep", str(study), "--vary", "profile=a100", "--seeds", "1", "--json"]) == 0
    assert [(m["deadline_ms"], m["profile"], m["runs"]) for m in json.loads(capsys.readouterr().out)] == [
        (2, ["a100"], 1), (8.0, ["a100"], 1)]
    assert main(["run", str(study), "--deadline-ms", "5", "--json"]) == 0    # run reads [run] alone
    capsys.readouterr()
    for text, message in (("[sweep]\ndeadline_ms = 3\n", r"\[sweep\]: deadline_ms = 3 must be an array"),
                          ("[sweep]\nfoo = [1]\n", r"\[sweep\]: unknown field\(s\) foo"),
                          ("requests = 5\n[sweep]\nseeds = 2\n", "nothing to vary"),
                          ("sweep = 3\n", r"unknown field\(s\) sweep")):
        study.write_text(text)
        assert re.search(message, cli_error(capsys, ["sweep", str(study)]))


def test_the_audit_cases_are_refused_in_one_line(tmp_path, capsys):
    import numpy as np

    from simulator.sweep_plot import plot_sweep

    for call, message in ((lambda: sweep(vary={"deadline_ms": (1, 1.0)}), "deadline_ms has the value '1.0' twice"),
                          (lambda: sweep(vary={"deadline_ms": np.array(2.0)}), "must be a non-empty list"),
                          (lambda: sweep(vary={"thresholds": ((0.5,), (0.5, 0.6))}),
                           "sweep run thresholds=0.5, seed=0: invalid thr"),
                          (lambda: sweep(vary={"deadline_ms": (1.0,)}, progress=3), "progress must be a function"),
                          (lambda: sweep(vary={"deadline_ms": (1.0,)}, out="x"), "out cannot be set"),
                          (lambda: sweep(vary={"devices": (1,), "profile": (("h100", "a100"),)}),
                           r"sweep run devices=1, profile=h100,a100: invalid profile: 2 profiles"),
                          (lambda: sweep(vary={"deadline_ms": (1.0,)}, seed=int(1e300) - 1, seeds=2),
                           "invalid seeds = 2 from seed = .*: the last run's seed .* is not a seed")):
        with pytest.raises(FlexsimError, match=message):
            call()
    three = sweep(vary={"deadline_ms": (1.0,), "queue": ("fifo",), "devices": (1,)}, requests=50)
    with pytest.raises(FlexsimError, match="needs one or two varied fields, not 3"):
        plot_sweep(three, tmp_path / "p.png")
    study = tmp_path / "s.toml"
    for text, message in (("[sweep]\ndeadline_ms = [2]\ndeadline-ms = [8]\n", "deadline_ms is given twice"),
                          ('[sweep]\nseeds = "2"\ndeadline_ms = [1]\n', "seeds = '2': need an integer")):
        study.write_text(text)
        assert re.search(message, cli_error(capsys, ["sweep", str(study), "--seeds", "2"]))
    assert "is not a field name" in cli_error(capsys, ["sweep", "--vary", "dead\nline=1"])
    assert len(cli_error(capsys, ["sweep", "--vary", "deadline-ms=" + "1|" * 3000])) < 200
    assert "invalid --out = ''" in cli_error(capsys, ["sweep", "--vary", "deadline-ms=1", "--out", ""])


def test_a_list_field_takes_one_item_per_value_in_a_study_file(tmp_path, capsys):
    from simulator.cli import main

    study = tmp_path / "s.toml"
    study.write_text("[run]\nmembers = [0, 1]\nrequests = 200\n[sweep]\nthresholds = [0.5, [0.6], \"0.7\"]\n")
    assert main(["sweep", str(study), "--json"]) == 0
    assert [m["thresholds"] for m in json.loads(capsys.readouterr().out)] == [[0.5], [0.6], [0.7]]
    study.write_text("[run]\nmembers = [0, 1]\nthresholds = 0.5\nrequests = 200\n")    # crashed in [run] before
    assert main(["run", str(study), "--json"]) == 0


def test_a_folder_whose_figure_is_a_directory_is_refused_before_running(tmp_path, capsys):
    from simulator.cli import main

    out = tmp_path / "s"
    assert main(["sweep", "--requests", "100", "--vary", "deadline-ms=2|4", "--out", str(out)]) == 0
    (out / "sweep.png").unlink()
    (out / "sweep.png").mkdir()
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    message = cli_error(capsys, ["sweep", "--requests", "100", "--vary", "deadline-ms=2|4", "--vary", "queue=fifo|edf",
                                 "--vary", "devices=1|2", "--out", str(out)])
    assert "sweep.png there is a directory" in message
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_the_figure_leaves_out_what_says_nothing_and_logs_wide_latencies():
    import numpy as np

    from simulator.sweep_plot import _logarithmic, _never

    assert _logarithmic("latency_p99_ms", np.array([[1.0, 30.0]])) and not _logarithmic("latency_p99_ms",
                                                                                        np.array([1.0, 19.0]))
    assert not _logarithmic("accuracy", np.array([0.01, 0.9])) and not _logarithmic("latency_p99_ms",
                                                                                   np.array([0.0, 9.0]))
    free = sweep(vary={"load_levels": ("0:6", "0:6;4:3")}, policy=("threshold", "load-adaptive"), requests=200)
    assert _never(free, free.means(), "deadline_miss_rate") and not _never(free, free.means(), "accuracy")
    timed = sweep(vary={"deadline_ms": (0.5, 5.0)}, policy=("threshold", "deadline"), requests=200)
    assert not _never(timed, timed.means(), "deadline_miss_rate")
