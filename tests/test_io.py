"""Writing files: through a symbolic link, and never over a device or a FIFO (`simulator.io`)."""

import os
import stat

import pytest

from simulator.errors import FlexsimError
from simulator.io import check_output_file, write_json_atomic, write_text_atomic
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
