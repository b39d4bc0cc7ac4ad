"""The allocator setting of the profiler and the real runner: glibc's malloc held steady, in a fresh process each
(the setting is process-wide and cannot be undone)."""

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.cli import main
from simulator.errors import FlexsimError
from simulator.profiler.allocator import check_allocator
from simulator.profiler.settings import MeasureSettings

ROOT = Path(__file__).resolve().parent.parent
GLIBC = platform.libc_ver()[0] == "glibc"

#: Page faults per call of a width-32 Fashion-MNIST member at batch 11, after warm-up (one JSON line): the fewest
#: over five blocks of ten calls. The allocator's faults come with every call (glibc's defaults: every block);
#: the host adds a few now and then (up to ~90 per call in one block of ten seen on the project's host, none in
#: most), which the least block leaves out.
FAULTS = """
import json, resource, sys
from simulator.profiler.allocator import set_allocator
facts = set_allocator(sys.argv[1])
import torch
from simulator.models.fmnist import FashionCNN
torch.set_num_threads(1)
model, x = FashionCNN(32).eval(), torch.randn(11, 1, 28, 28)
blocks = []
with torch.inference_mode():
    for _ in range(10):
        model(x).numpy()
    for _ in range(5):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(10):
            model(x).numpy()
        blocks.append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
print(json.dumps({"facts": facts, "faults_per_call": min(blocks)}))
"""


def _faults(allocator: str) -> dict:
    pytest.importorskip("torch")
    out = subprocess.run([sys.executable, "-c", FAULTS, allocator], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_steady_allocator_stops_page_faults_of_warm_calls():
    steady = _faults("steady")
    assert steady["facts"]["applied"] and steady["facts"]["mmap_threshold_bytes"] == 2 ** 30
    assert steady["faults_per_call"] < 50  # glibc's defaults: 400-1,300 per call on the project's host


def test_default_after_steady_in_one_process_is_refused():
    script = ("from simulator.profiler.allocator import set_allocator, allocator_facts\n"
              "from simulator.errors import FlexsimError\n"
              "set_allocator('steady')\n"
              "try:\n    set_allocator('default')\nexcept FlexsimError as e:\n    print('refused:', e)\n"
              "print(allocator_facts()['allocator'])\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    if GLIBC:
        assert lines[0].startswith("refused: allocator = 'default' asked for") and lines[1] == "steady"
    else:
        assert lines == ["default"]


@pytest.mark.parametrize("make", [lambda: check_allocator("jemalloc"), lambda: MeasureSettings(allocator="tc")])
def test_unknown_allocator_names_the_field(make):
    with pytest.raises(FlexsimError, match="invalid allocator = "):
        make()


def test_cli_unknown_allocator_exits_2_and_writes_nothing(tmp_path, capsys):
    pytest.importorskip("torch")
    assert main(["profile", "fmnist-cnn-w8", "--allocator", "jemalloc", "--out", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err
    assert "invalid allocator = 'jemalloc'" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
