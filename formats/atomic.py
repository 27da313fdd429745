"""Write a directory completely or not at all: build it beside its destination, then swap it in.

Bundles, the demo bundle, study exports and analysis reports are folders that other programs read (the study
server, a statistics script, a reviewer). A crash, a full disk or an invalid input half-way must leave the
previous folder exactly as it was, never a mixture. Python's standard library renames single paths
atomically but has no "replace this directory" operation, and no maintained package offers one, so this is
the one place that does it: everything is written into a staging folder in the same parent (same file
system, so the renames are atomic), and only a complete folder is moved into place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar


class OutputExistsError(FileExistsError):
    """The output folder is in the way; ``reason`` says how (``not_empty`` or ``not_a_directory``)."""

    MESSAGES: ClassVar[dict[str, str]] = {
        "not_empty": "{path} already exists and is not empty; pass --overwrite to replace it",
        "not_a_directory": "{path} exists and is not a directory",
    }

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(self.MESSAGES[reason].format(path=path))


def check_output_dir(out: Path, *, overwrite: bool) -> None:
    """Refuse an output that is a file, or a non-empty folder unless ``overwrite`` (before any work starts)."""
    if out.exists() and not out.is_dir():
        raise OutputExistsError(out, "not_a_directory")
    if out.is_dir() and not overwrite and any(out.iterdir()):
        raise OutputExistsError(out, "not_empty")


@contextmanager
def atomic_directory(out: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder; when the ``with`` block succeeds it becomes ``out``.

    An existing ``out`` is refused as :func:`check_output_dir` says, before the block runs. If the block
    raises, the staging folder is removed and ``out`` is untouched. When it succeeds, an existing ``out`` is
    renamed aside, the staging folder renamed to ``out`` (the old one put back if that fails) and only then is
    the old one deleted. The folder gets the permissions the umask gives a new folder (``mkdtemp`` would make
    it private, but a bundle or report is meant to be read by other users, e.g. the study server).
    """
    out = Path(out)
    check_output_dir(out, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    try:
        yield staging
        _swap_in(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already after a successful swap


def _swap_in(staging: Path, out: Path) -> None:
    if not out.exists():
        staging.rename(out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    old.rmdir()  # only its unique name is needed
    out.rename(old)
    try:
        staging.rename(out)
    except OSError:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)
