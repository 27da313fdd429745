"""Perceptual hashes: how near-duplicate images are recognised (data prepare's dedupe, retrieval's exclusions).

A 64-bit pHash (imagehash) of an image, as an ``int``, and the Hamming distances of one hash to many at once
(numpy popcount, so thousands of images take milliseconds). Two images within a few bits are the same photo
resized, re-encoded or slightly cropped.
"""

from __future__ import annotations

import imagehash
import numpy as np
from PIL import Image


def perceptual_hash(image: Image.Image) -> int:
    """The image's 64-bit pHash."""
    return int(str(imagehash.phash(image)), 16)


def hash_distances(hashes: np.ndarray, value: int) -> np.ndarray:
    """Hamming distance (bits) of every hash in ``hashes`` (``uint64``) to ``value``."""
    return np.bitwise_count(hashes ^ np.uint64(value))
