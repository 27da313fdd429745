"""The demo study: two packaged protocols (``between.yaml``, ``within.yaml``) on the synthetic demo bundle.

``skingen-study serve --demo`` must work from an installed package, where the package folder is not the place
to draw a bundle into. So :func:`prepare_demo` copies the packaged protocol, unchanged, into a demo folder of
the user's (:func:`demo_dir`) and draws the demo bundle where that copy's ``cases.bundle`` points (beside it)
if it is missing. The protocol text stays the single source of truth: the copy is what gets registered and
served, and its bundle path resolves as any protocol's does.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import platformdirs

from db.session import absolute_url
from formats.bundle import MANIFEST_NAME
from skingen.bundle.demo import writer
from study.protocol.loading import parse_protocol

DEMO_DIR_ENV = "SKINGEN_DEMO_DIR"
APP_NAME = "skingen-study"
PROTOCOLS = ("between.yaml", "within.yaml")
RUNNING_FILE = "running.json"  # in the demo folder while a demo server runs: where, and which process


class DemoRunning(ValueError):
    """The demo of this folder is already being served: the message says where."""


def demo_dir(override: str | Path | None = None) -> Path:
    """Where the demo is drawn: ``override``, else ``$SKINGEN_DEMO_DIR``, else the user data folder
    (``$XDG_DATA_HOME/skingen-study/demo``, i.e. ``~/.local/share/skingen-study/demo`` on Linux)."""
    chosen = override or os.environ.get(DEMO_DIR_ENV)
    return Path(chosen) if chosen else platformdirs.user_data_path(APP_NAME) / "demo"


def packaged_protocol_text(name: str = "between.yaml") -> str:
    if name not in PROTOCOLS:
        raise ValueError(f"demo protocol must be one of {', '.join(PROTOCOLS)}, got {name!r}")
    return (resources.files(__package__) / name).read_text(encoding="utf-8")


def prepare_demo(folder: Path, name: str = "between.yaml") -> Path:
    """Copy the packaged protocol ``name`` into ``folder`` and draw its demo bundle if missing; returns the copy.

    A copy that differs from the packaged text (an upgraded package) is replaced; a drawn bundle is kept.
    """
    text = packaged_protocol_text(name)
    protocol = parse_protocol(text, f"{__package__}/{name}")
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / name
    if not copy.is_file() or copy.read_text(encoding="utf-8") != text:
        partial = copy.with_name(f".{name}.partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(copy)
    bundle = (folder / protocol.cases.bundle).resolve()
    if not (bundle / MANIFEST_NAME).is_file():
        print(f"drawing the demo bundle into {bundle} …", flush=True)
        writer.build_demo_bundle(bundle)
    return copy


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def check_not_running(folder: Path) -> None:
    """Raise :class:`DemoRunning` when a live server is serving the demo of ``folder`` (a marker left by a
    server that died is ignored)."""
    marker = folder / RUNNING_FILE
    try:
        running = json.loads(marker.read_text(encoding="utf-8"))
        pid, url, db_url = int(running["pid"]), str(running["url"]), str(running["db"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    if pid != os.getpid() and _alive(pid):
        raise DemoRunning(
            f"the demo is already running at {url} (process {pid}, database {db_url}); open that address, "
            "or stop that server first"
        )


@contextmanager
def running(folder: Path, url: str, db_url: str) -> Iterator[None]:
    """Mark the demo of ``folder`` as served at ``url`` while the block runs."""
    marker = folder / RUNNING_FILE
    marker.write_text(json.dumps({"pid": os.getpid(), "url": url, "db": db_url}) + "\n", encoding="utf-8")
    try:
        yield
    finally:
        marker.unlink(missing_ok=True)


def next_steps(db_url: str, base_url: str) -> list[str]:
    """The commands the demo prints, as they work when pasted in any folder: the demo's database named
    absolutely (``var/study.db`` is relative to where the demo was started), the app's address given."""
    db = shlex.quote(absolute_url(db_url))
    return [
        f"skingen-study raters add NAME --db {db} --base-url {base_url}",
        f"skingen-study export --db {db} --out demo-export/",
        f"skingen-analysis report --db {db} --out demo-results/",
    ]
