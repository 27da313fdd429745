"""Bundle images as the browser receives them, encoded once per server process.

Given a file path, ``st.image`` decodes the PNG and re-encodes it as JPEG on every script run (~7 ms per
image, four on a visual case page). :func:`show` hands it bytes that are already what it would send, so a run
only reads the image header and hashes the bytes. The media URL is that hash (``/media/<sha>.jpg``): the
same on every replica, which lets nginx cache and serve it (docs/deployment.md).
"""

from __future__ import annotations

import functools
import io
import logging
import threading
from collections.abc import Iterable
from pathlib import Path

import streamlit as st
from PIL import Image

from app.i18n import N_

# Streamlit shrinks wider images to its widest layout (2 × 730 px); doing it here keeps that off every run.
MAX_WIDTH = 1460
JPEG_QUALITY = 90  # what st.image uses when it converts
LOG = logging.getLogger("skingen.app")
ENLARGE = N_("Enlarge")
"""The English label of the button under each trial image that opens it large (and logs it): bench/loadgen
clicks it; the trial page draws it translated."""


@functools.cache
def encoded(path: Path) -> tuple[bytes, str]:
    """(bytes, "JPEG" or "PNG"): photos as JPEG, images with transparency as PNG, as ``st.image`` chooses."""
    with Image.open(path) as image:
        transparent = image.mode in {"RGBA", "LA", "PA"} or "transparency" in image.info
        fmt = "PNG" if transparent else "JPEG"
        if image.format == fmt and image.width <= MAX_WIDTH:
            return path.read_bytes(), fmt
        if image.width > MAX_WIDTH:
            image = image.resize((MAX_WIDTH, round(image.height * MAX_WIDTH / image.width)), Image.BILINEAR)
        out = io.BytesIO()
        if fmt == "JPEG":
            image.convert("RGB").save(out, format="JPEG", quality=JPEG_QUALITY)
        else:
            image.save(out, format="PNG")
        return out.getvalue(), fmt


def show(path: Path, caption: str | None = None) -> None:
    data, fmt = encoded(path)
    st.image(data, caption=caption, width="stretch", output_format=fmt)


def warm(paths: Iterable[Path]) -> threading.Thread:
    """Encode ``paths`` in a background thread, so that no participant's page waits for the first encoding
    of its images (PIL releases the GIL while it decodes and encodes, so other sessions run meanwhile)."""

    def encode_all() -> None:
        for path in paths:
            try:
                encoded(path)
            except OSError:  # a broken file: the page that shows it reports it, as without warming
                LOG.warning("could not encode %s ahead of time", path, exc_info=True)

    thread = threading.Thread(target=encode_all, name="skingen-encode-images", daemon=True)
    thread.start()
    return thread
