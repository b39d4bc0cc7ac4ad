"""Writing files: through a symbolic link, and never over a device or a FIFO (`simulator.io`)."""

import json
import math
import os
import signal
import stat
import time

import numpy as np
import pytest

import simulator.io
from simulator.errors import FlexsimError
from simulator.io import check_output_file, json_text, staged_dir, write_json_atomic, write_text_atomic
from tests.helpers import cli_error


def test_a_write_goes_through_a_symbolic_link_which_stays(tmp_path):
    (tmp_path / "target.json").write_text("{}")
    (tmp_path / "link.json").symlink_to("target.json")
    write_json_atomic(tmp_path / "link.json", {"a": 1})
    assert (tmp_path / "link.json").is_symlink()
    assert (tmp_path / "target.json").read_text() == '{\n  "a": 1\n}\n'


def test_a_dangling_link_is_written_at_its_target(tmp_path):
    (tmp_path / "link.txt").symlink_to("new.txt")
    write_text_atomic(tmp_path / "link.txt", "x")
    assert (tmp_path / "new.txt").read_text() == "x" and (tmp_path / "link.txt").is_symlink()


@pytest.mark.parametrize("link", [False, True])
def test_a_fifo_is_refused_and_left_a_fifo(tmp_path, link):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    path = fifo
    if link:
        path = tmp_path / "link"
        path.symlink_to(fifo)
    with pytest.raises(FlexsimError, match="is not a regular file"):
        check_output_file(path)
    with pytest.raises(FlexsimError, match="is not a regular file"):
        write_text_atomic(path, "x")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_the_cli_refuses_a_device_as_an_output_file(tmp_path, capsys):
    link = tmp_path / "null.json"
    link.symlink_to(os.devnull)
    err = cli_error(capsys, ["costmodel", "accuracy", "--profile", "cpu-amd-epyc-zen5-2c", "--json", str(link)])
    assert "is not a regular file" in err
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


def test_a_staged_folder_replaces_its_entries_all_or_none(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a").write_text("old a")
    (out / "b").write_text("old b")
    (out / "mine").write_text("kept")
    replace = os.replace

    def failing(src, dst):
        if os.path.basename(src) == "b" and ".partial" in str(src):
            raise OSError(28, "No space left on device")
        replace(src, dst)

    monkeypatch.setattr(simulator.io.os, "replace", failing)
    with pytest.raises(FlexsimError, match=f"cannot write {out / 'b'}: No space left on device"):
        with staged_dir(out) as staging:
            for name in "abc":
                (staging / name).write_text(f"new {name}")
    assert {p.name: p.read_text() for p in out.iterdir()} == {"a": "old a", "b": "old b", "mine": "kept"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_staged_folder_takes_a_folder_where_a_file_of_that_name_was(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "scenario").write_text("a file in the way")
    with staged_dir(out) as staging:
        (staging / "scenario").mkdir()
        (staging / "scenario" / "trace.csv").write_text("x")
    assert (out / "scenario" / "trace.csv").read_text() == "x" and sorted(os.listdir(out)) == ["scenario"]


def test_sigterm_stops_a_command_as_ctrl_c_does_and_cleans_up(tmp_path, monkeypatch, capsys):
    import simulator.commands.profiles as command
    from simulator.cli import main

    def stopped(args):
        with staged_dir(tmp_path / "out") as staging:
            (staging / "half").write_text("half written")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)                              # the handler raises before this ends
        return 0

    monkeypatch.setattr(command, "run", stopped)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["profiles"]) == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == [] and signal.getsignal(signal.SIGTERM) is before


def test_staged_entries_that_are_links_or_fifos_are_refused_and_left(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "elsewhere.json").write_text("theirs")
    (out / "results.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(FlexsimError, match="results.json: it is a symbolic link, a device, a FIFO or a socket"):
        with staged_dir(out) as staging:
            (staging / "results.json").write_text("ours")
    assert (out / "results.json").is_symlink() and (tmp_path / "elsewhere.json").read_text() == "theirs"


def test_a_staged_folder_given_as_a_link_is_staged_beside_its_target(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with staged_dir(tmp_path / "link") as staging:
        assert staging.parent == tmp_path                   # beside the target, on its file system
        (staging / "a").write_text("x")
    assert (tmp_path / "real" / "a").read_text() == "x" and (tmp_path / "link").is_symlink()


def test_a_stale_file_that_is_a_fifo_is_refused_not_removed(tmp_path):
    from simulator.io import atomic_paths

    os.mkfifo(tmp_path / "batches.csv")
    with pytest.raises(FlexsimError, match="cannot remove .*batches.csv, left by an earlier run"):
        with atomic_paths([tmp_path / "requests.csv"], stale=[tmp_path / "batches.csv"]) as (tmp,):
            tmp.write_text("x")
    assert stat.S_ISFIFO(os.stat(tmp_path / "batches.csv").st_mode) and not (tmp_path / "requests.csv").exists()


def test_update_doc_refuses_a_fifo_without_waiting_on_it(tmp_path, capsys):
    os.mkfifo(tmp_path / "doc.md")
    assert "is not a regular file" in cli_error(capsys, ["costmodel", "accuracy", "--update-doc",
                                                         str(tmp_path / "doc.md")])


def test_json_outputs_are_standard_json_with_null_for_numbers_that_are_not_finite(tmp_path):
    obj = {"edges": (5.0, math.inf), "rate": np.float64("nan"), "array": np.array([1.0, -np.inf]),
           "nested": [{"x": np.int64(3), "ok": np.bool_(True)}]}
    text = json_text(obj)

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    assert json.loads(text, parse_constant=refuse) == {"edges": [5.0, None], "rate": None, "array": [1.0, None],
                                                       "nested": [{"x": 3, "ok": True}]}
    with pytest.raises(FlexsimError, match="cannot write a value of type object"):
        json_text({"x": object()})
