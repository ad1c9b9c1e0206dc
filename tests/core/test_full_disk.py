"""A full disk (issue 23): whichever file a command was writing when the disk filled up, it ends
in one line naming that file (exit 2, no traceback), and the committed files stay as they were.
The disk is filled by making the write itself fail with ENOSPC, without a file name, as a real
full disk does (the file opens, the write fails)."""
from __future__ import annotations

import errno
import pathlib

import pandas as pd
import pytest

from project_tools import full_project, rebase_paths, snapshot
from project_tools import check_clean_failure

from nextloc.cli import main


def fill_the_disk(monkeypatch, writes_before_full: int = 0) -> None:
    """Every text and table write after the first ``writes_before_full`` fails with ENOSPC."""
    count = [0]

    def full(original):
        def write(self_or_frame, *args, **kwargs):
            count[0] += 1
            if count[0] > writes_before_full:
                raise OSError(errno.ENOSPC, "No space left on device")
            return original(self_or_frame, *args, **kwargs)
        return write

    monkeypatch.setattr(pathlib.Path, "write_text", full(pathlib.Path.write_text))
    monkeypatch.setattr(pd.DataFrame, "to_csv", full(pd.DataFrame.to_csv))


@pytest.mark.parametrize("argv", [["tables"], ["archive", "x", "--as", "new"]],
                         ids=["tables", "archive"])
def test_a_full_disk_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys, argv):
    root = full_project(tmp_path / "project")
    rebase_paths(root, monkeypatch.setattr)
    before = snapshot(root)
    fill_the_disk(monkeypatch)
    code = main(argv)
    out, err = capsys.readouterr()
    check_clean_failure(code, out, err, f"no space left on the device writing {root}/")
    assert files(snapshot(root)) == files(before)


def files(snapshot: dict[str, str]) -> dict[str, str]:
    """The files of a snapshot (a folder made for them, left empty, is no change of content)."""
    return {name: digest for name, digest in snapshot.items() if not name.endswith("/")}


@pytest.mark.parametrize("writes_before_full", [3, 12])
def test_tables_filling_the_disk_half_way_changes_no_page(tmp_path, monkeypatch, capsys,
                                                          writes_before_full):
    """The pages written before the disk filled up are held back with the rest: all or none."""
    root = full_project(tmp_path / "project")
    rebase_paths(root, monkeypatch.setattr)
    before = snapshot(root)
    fill_the_disk(monkeypatch, writes_before_full)
    code = main(["tables"])
    out, err = capsys.readouterr()
    check_clean_failure(code, out, err, "no space left on the device writing")
    assert files(snapshot(root)) == files(before)
