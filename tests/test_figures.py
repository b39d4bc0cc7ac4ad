"""The figure scripts of experiments/ run from scratch and write what they plot (on a small synthetic profile)."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def fmnist_profile(tmp_path_factory):
    """A derived profile with constant costs for the three Fashion-MNIST models (small, medium, large)."""
    models = {f"fmnist-cnn-w{w}": {"batches": {"1": {"latency_ms": {"samples": [ms]}, "energy_j": ms / 100}}}
              for w, ms in ((8, 0.25), (32, 1.0), (64, 3.0))}
    profile = {"schema_version": 1, "name": "tiny-cpu", "device": {"name": "test", "kind": "cpu"},
               "idle_power_w": 5.0, "decision_overhead_ms": 0.0,
               "provenance": {"source": "derived", "method": "constant costs for a test"}, "models": models}
    path = tmp_path_factory.mktemp("profiles") / "tiny-cpu.json"
    path.write_text(json.dumps(profile))
    return str(path)


def _run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "experiments" / script), *args], capture_output=True,
                          text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_normal_ensembles_figure(tmp_path, fmnist_profile):
    _run("fig1_normal_ensembles.py", "--profile", fmnist_profile, "--out", str(tmp_path))
    rows = _rows(tmp_path / "fig1-normal-ensembles-tiny-cpu.csv")
    assert (tmp_path / "fig1-normal-ensembles-tiny-cpu.png").stat().st_size > 0
    assert [float(r["latency_ms"]) for r in rows] == pytest.approx([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert float(rows[-1]["accuracy"]) == pytest.approx(0.9251)     # the mean of members 0-5 on the test set


def test_heterogeneous_cascade_figure_skips_profiles_without_the_models(tmp_path, fmnist_profile):
    out = _run("fig4_heterogeneous_cascade.py", "--profile", fmnist_profile, "--profile", "h100",
               "--out", str(tmp_path))
    assert "skipping profile h100" in out
    rows = _rows(tmp_path / "fig4-heterogeneous-cascade-tiny-cpu.csv")
    cascade = [r for r in rows if r["series"] == "cascade 6->0->7, last"]
    assert min(float(r["test_latency_ms"]) for r in cascade) == pytest.approx(0.25)   # member 6 alone
    assert all(float(r["test_latency_ms"]) <= 0.25 + 1.0 + 3.0 for r in cascade)
    assert not list(tmp_path.glob("*h100*"))
