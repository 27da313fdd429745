"""The one "write a folder, then swap it in" helper, and the writers that use it (bundle, export, report)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from formats.atomic import OutputExistsError, atomic_directory


def _previous(out: Path) -> Path:
    out.mkdir()
    (out / "old.txt").write_text("previous run")
    return out


def test_a_new_folder_appears_complete(tmp_path: Path) -> None:
    out = tmp_path / "new" / "out"
    with atomic_directory(out) as staging:
        (staging / "a.txt").write_text("a")
        assert not out.exists(), "nothing is visible before the block ends"
    assert (out / "a.txt").read_text() == "a"
    assert [p.name for p in out.parent.iterdir()] == ["out"], "no staging or backup folder is left"


def test_a_failure_leaves_the_previous_folder_untouched(tmp_path: Path) -> None:
    out = _previous(tmp_path / "out")
    with pytest.raises(RuntimeError), atomic_directory(out, overwrite=True) as staging:
        (staging / "half.txt").write_text("half")
        raise RuntimeError("disk full")
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_overwrite_replaces_the_whole_folder(tmp_path: Path) -> None:
    out = _previous(tmp_path / "out")
    with atomic_directory(out, overwrite=True) as staging:
        (staging / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_non_empty_folder_or_a_file_is_refused_before_any_work(tmp_path: Path) -> None:
    out = _previous(tmp_path / "out")
    ran = False
    with pytest.raises(OutputExistsError, match="not empty; pass --overwrite") as refused:  # noqa: SIM117
        with atomic_directory(out):
            ran = True
    assert refused.value.reason == "not_empty" and not ran
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputExistsError, match="not a directory"), atomic_directory(tmp_path / "file"):
        pass
    with atomic_directory(tmp_path / "empty-ok") as staging:  # an empty folder needs no --overwrite
        pass
    (tmp_path / "empty").mkdir()
    with atomic_directory(tmp_path / "empty") as staging:
        (staging / "x").write_text("x")
    assert (tmp_path / "empty" / "x").exists()


def test_the_folder_is_readable_by_others_as_the_umask_allows(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "out") as staging:
            (staging / "x").write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755


def test_a_failed_export_keeps_the_previous_export(tmp_path: Path) -> None:
    from study.export import write_export

    out = _previous(tmp_path / "export")

    class Broken(pd.DataFrame):
        def to_csv(self, *args, **kwargs):
            raise OSError("disk full")

    frames = {"responses": pd.DataFrame({"a": [1]}), "participants": Broken({"b": [2]})}
    with pytest.raises(OSError, match="disk full"):
        write_export(frames, out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]
    with pytest.raises(OutputExistsError):
        write_export({"responses": pd.DataFrame({"a": [1]})}, out)
    written = write_export({"responses": pd.DataFrame({"a": [1]})}, out, overwrite=True)
    assert [p.name for p in written] == ["responses.csv"] and sorted(p.name for p in out.iterdir()) == [
        "responses.csv"
    ]
