"""The demo study: two packaged protocols (``between.yaml``, ``within.yaml``) on the synthetic demo bundle.

``skingen-study serve --demo`` must work from an installed package, where the package folder is not the place
to draw a bundle into. So :func:`prepare_demo` copies the packaged protocol, unchanged, into a demo folder of
the user's (:func:`demo_dir`) and draws the demo bundle where that copy's ``cases.bundle`` points (beside it)
if it is missing. The protocol text stays the single source of truth: the copy is what gets registered and
served, and its bundle path resolves as any protocol's does.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import platformdirs

from formats.bundle import MANIFEST_NAME
from skingen.bundle.demo import writer
from study.protocol.loading import parse_protocol

DEMO_DIR_ENV = "SKINGEN_DEMO_DIR"
APP_NAME = "skingen-study"
PROTOCOLS = ("between.yaml", "within.yaml")


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
