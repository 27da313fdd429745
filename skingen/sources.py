"""Checked access to user-named inputs: model paths or hub ids, images, CSV tables, files to hash.

Each failure is a :class:`SkinGenError` naming the path or id, raised before any heavy loading or writing.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from skingen.errors import SkinGenError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def resolve_model(ref: str, what: str) -> str:
    """``ref`` as something ``from_pretrained`` can load without hanging; ``what`` names it in errors.

    A local path must exist. A hub id (``owner/name``) is passed on, except while ``HF_HUB_OFFLINE`` is set
    and the id is not in the local hub cache: then fail now instead of retrying the network.
    """
    path = Path(ref).expanduser()
    if path.exists():
        return str(path)
    if not _HUB_ID.match(ref) or ref.startswith((".", "~")):
        raise SkinGenError(f"{what}: model path not found: {ref}")
    if hub_offline():
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            return snapshot_download(ref, local_files_only=True)
        except (LocalEntryNotFoundError, OSError, ValueError):
            raise SkinGenError(
                f"{what}: {ref!r} is neither a local path nor in the local hub cache (HF_HUB_OFFLINE set); "
                "pass a local directory or download the model first"
            ) from None
    return ref


def load_image(path: str | Path, what: str = "image") -> Image.Image:
    """An RGB image, or a :class:`SkinGenError` naming the file."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise SkinGenError(f"{what} not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise SkinGenError(f"{what} is not a readable image: {path} ({exc})") from None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def image_sha256(image: Image.Image) -> str:
    """Hash of the pixels (and size/mode), independent of how the file was encoded."""
    digest = hashlib.sha256(f"{image.mode}:{image.size}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def read_table(path: Path, required: Sequence[str], *, what: str) -> list[tuple[int, dict[str, str]]]:
    """``(line, row)`` for every row of a CSV, values stripped; a missing file or column names it.

    ``what`` names the file's role in messages ("Fitzpatrick17k's fitzpatrick17k.csv", "cases file"). Every
    value is a string (SCIN's 64-bit case ids stay exact). The one checked CSV reader of the pipeline.
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or ())
            missing = [c for c in required if c not in columns]
            if missing:
                raise SkinGenError(
                    f"{path}: missing column(s) {', '.join(missing)} ({what} has {', '.join(required)})"
                )
            rows = [
                (reader.line_num, {k: (v or "").strip() for k, v in row.items() if isinstance(k, str)})
                for row in reader
            ]
    except OSError as exc:
        raise SkinGenError(f"{what} not readable: {path} ({exc.strerror})") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise SkinGenError(f"{path}: not a readable CSV file ({exc})") from exc
    return rows
