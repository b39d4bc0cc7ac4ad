"""The host's speed modes summarised from per-window medians (simulator.runner.speed_modes), and the script that
measures them (experiments/host_speed_modes.py)."""

import math

import pytest

from simulator.errors import FlexsimError
from simulator.runner.speed_modes import speed_modes


def test_two_modes_are_found_with_their_share_ratio_and_stretches():
    fast, slow = 0.265, 0.43
    windows = [fast] * 6 + [slow] * 3 + [fast] * 4 + [slow] + [fast] * 6
    modes = speed_modes(windows)
    assert modes["fast_ms"] == pytest.approx(fast) and modes["windows"] == 20
    assert modes["slow_stretches"] == [3, 1] and modes["fast_share"] == pytest.approx(16 / 20)
    assert modes["slow_over_fast"] == pytest.approx(slow / fast)
    assert modes["slow"][6:9] == [True] * 3 and not modes["slow"][0]


def test_a_steady_host_has_no_slow_window():
    modes = speed_modes([0.261, 0.262, 0.261, 0.263, 0.262])
    assert modes["slow_stretches"] == [] and modes["fast_share"] == 1.0 and math.isnan(modes["slow_over_fast"])


@pytest.mark.parametrize("windows, slow_above, what", [
    ([0.3], 1.2, "at least two"), ([0.3, float("nan")], 1.2, "finite"), ([0.3, -1.0], 1.2, "finite"),
    ([0.3, 0.3], 1.0, "slow_above")])
def test_bad_input_is_named(windows, slow_above, what):
    with pytest.raises(FlexsimError, match=what):
        speed_modes(windows, slow_above)


def test_the_script_measures_and_writes_its_windows(tmp_path):
    pytest.importorskip("torch")
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "modes.csv"
    done = subprocess.run([sys.executable, str(root / "experiments" / "host_speed_modes.py"), "--seconds", "1",
                           "--window-s", "0.25", "--out", str(out)], capture_output=True, text=True, cwd=root)
    assert done.returncode == 0, done.stderr
    assert "windows of 0.25 s: fast mode" in done.stdout
    rows = out.read_text().splitlines()
    assert rows[0] == "window,median_ms,slow" and len(rows) >= 3
    for seconds in ("0.1", "nan"):
        bad = subprocess.run([sys.executable, str(root / "experiments" / "host_speed_modes.py"), "--seconds", seconds],
                             capture_output=True, text=True, cwd=root)
        assert bad.returncode == 2 and "need finite --seconds" in bad.stderr and "Traceback" not in bad.stderr
