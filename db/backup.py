"""Online, consistent copies of the study database, and restoring one into a new database.

SQLite: the backup API (``sqlite3.Connection.backup``) copies a consistent snapshot while the app keeps
writing (WAL), page by page — copying the file itself could catch a half-applied transaction.
PostgreSQL: ``pg_dump --format=custom`` (one consistent snapshot, the server keeps serving) and
``pg_restore``; we call Debian's tools rather than re-implement a dump format.
Both write a temporary file and rename it into place, so a failed backup never leaves a half-written FILE.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(ValueError):
    """A backup or restore that could not be made; the message names the file or tool."""


def backup(url: str, out: Path) -> Path:
    """Copy the database at ``url`` to the new file ``out`` (refused if it exists)."""
    out = Path(out)
    if out.exists():
        raise BackupError(f"--out {out}: already exists; choose a new file name")
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        source = _sqlite_path(url)
        _write_new_file(out, lambda partial: _sqlite_copy(source, partial))
    elif backend == "postgresql":
        _write_new_file(
            out, lambda partial: _run_tool("pg_dump", "--format=custom", f"--file={partial}", _libpq_url(url))
        )
    else:
        raise BackupError(f"{backend}: backups are supported for SQLite and PostgreSQL")
    return out


def restore(backup_file: Path, url: str) -> None:
    """Restore ``backup_file`` (made by :func:`backup`) into the database at ``url``, which must be new:
    a SQLite file that does not exist yet, or an empty PostgreSQL database. All or nothing."""
    backup_file = Path(backup_file)
    if not backup_file.is_file():
        raise BackupError(f"{backup_file}: no such backup file")
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        target = _sqlite_path(url)
        if target.exists():
            raise BackupError(f"{target}: already exists; restore into a new database file")
        _write_new_file(target, lambda partial: _sqlite_copy(backup_file, partial))
    elif backend == "postgresql":
        _run_tool(
            "pg_restore",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={_libpq_url(url)}",
            str(backup_file),
        )
    else:
        raise BackupError(f"{backend}: restores are supported for SQLite and PostgreSQL")


def _write_new_file(target: Path, write: Callable[[Path], None]) -> None:
    """``write`` a hidden partial file beside ``target``, then rename it into place: never half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    try:
        write(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError(f"{url}: only a SQLite database file can be backed up")
    return Path(database)


def _sqlite_copy(source: Path, target: Path) -> None:
    if not source.is_file():
        raise BackupError(f"{source}: no such SQLite database file")
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    except sqlite3.Error as exc:
        raise BackupError(f"{source}: not a usable SQLite database ({exc})") from None
    finally:
        dst.close()
        src.close()


def _libpq_url(url: str) -> str:
    """The SQLAlchemy URL as libpq's tools take it (``postgresql://``, no ``+driver``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _tool(name: str) -> str:
    """``name`` on PATH, else the newest Debian install's (``/usr/lib/postgresql/<major>/bin``)."""
    found = shutil.which(name)
    if found:
        return found
    installed = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    if not installed:
        raise BackupError(
            f"{name} not found: install the PostgreSQL client tools (apt-get install postgresql-client)"
        )
    return str(installed[-1])


def _run_tool(name: str, *args: str) -> None:
    done = subprocess.run([_tool(name), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{name} failed: {done.stderr.strip()}")
