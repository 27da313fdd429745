"""Fitzpatrick skin types, and the three groups every per-skin-tone result is reported in.

Generative and diagnostic skin models are known to do worse on darker skin, so data cards, validation images
and evaluation metrics are all broken down by the same groups (I–II, III–IV, V–VI, as the DDI dataset labels
them). Torch-free: the bundle format and the study read it too.

:func:`estimate_skin_tone` estimates a photo's type from the colour of the skin around the lesion by the
individual typology angle (ITA, Chardon et al. 1991), the colorimetric measure dermatology uses for this.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

FITZPATRICK_TYPES = ("I", "II", "III", "IV", "V", "VI")
SKIN_TONE_GROUPS: dict[str, tuple[str, ...]] = {
    "I-II": ("I", "II"),
    "III-IV": ("III", "IV"),
    "V-VI": ("V", "VI"),
}
_GROUP_OF = {tone: group for group, tones in SKIN_TONE_GROUPS.items() for tone in tones}


def skin_tone_group(skin_tone: str | None) -> str | None:
    """The group of a Fitzpatrick type ('IV' → 'III-IV') or of a group label itself; None when unknown ('').

    Raises ``ValueError`` for anything else, so a typo never silently becomes "unknown".
    """
    if not skin_tone:
        return None
    if skin_tone in SKIN_TONE_GROUPS:
        return skin_tone
    if skin_tone in _GROUP_OF:
        return _GROUP_OF[skin_tone]
    raise ValueError(
        f"skin tone {skin_tone!r} is neither a Fitzpatrick type ({'/'.join(FITZPATRICK_TYPES)}) nor a group "
        f"({'/'.join(SKIN_TONE_GROUPS)})"
    )


# ITA bands (degrees) of Del Bino & Bernerd 2013, as the usual approximate mapping onto Fitzpatrick types:
# very light > 55 (I), light 41–55 (II), intermediate 28–41 (III), tan 10–28 (IV), brown −30–10 (V), dark (VI).
ITA_BANDS: tuple[tuple[float, str], ...] = ((55, "I"), (41, "II"), (28, "III"), (10, "IV"), (-30, "V"))
BORDER = 0.2  # the outer fifth of each side: photos are framed on the lesion, with skin around it


@dataclass(frozen=True)
class SkinToneEstimate:
    """A photo's estimated type, from the ITA of the skin around the lesion (median L* and b* there)."""

    fitzpatrick: str
    ita: float
    lightness: float
    yellowness: float


def fitzpatrick_from_ita(ita: float) -> str:
    return next((tone for bound, tone in ITA_BANDS if ita > bound), "VI")


def cielab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (…×3, 0–255) to CIELAB under D65 (the standard formulas; PIL's Lab mode has no white point)."""
    c = rgb.astype(np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    to_xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = linear @ to_xyz.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


# CIELAB hue angle (degrees) and chroma of skin: every skin tone, from Fitzpatrick I to VI, lies in the
# red–yellow quadrant (melanin and haemoglobin), so grey, white, blue or green backgrounds, clothing and
# black shadows fall outside. The bounds are ours, wide on purpose (very light skin has low chroma, very dark
# skin low L*); tests/test_skin_fidelity.py checks that skin painted at every ITA band passes and that grey,
# white, blue and green do not.
SKIN_HUE = (20.0, 90.0)
SKIN_MIN_CHROMA = 6.0
SKIN_LIGHTNESS = (8.0, 97.0)


def skin_mask(rgb: np.ndarray) -> np.ndarray:
    """Per pixel of an ``(h, w, 3)`` sRGB array: is its colour skin-like (hue, chroma and L* in skin's range)?"""
    lab = cielab(rgb)
    hue = np.degrees(np.arctan2(lab[..., 2], lab[..., 1]))
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    return (
        (hue >= SKIN_HUE[0])
        & (hue <= SKIN_HUE[1])
        & (chroma >= SKIN_MIN_CHROMA)
        & (lab[..., 0] >= SKIN_LIGHTNESS[0])
        & (lab[..., 0] <= SKIN_LIGHTNESS[1])
    )


def estimate_skin_tone(
    image: Image.Image, lesion_mask: Image.Image | None = None, *, skin_only: bool = False
) -> SkinToneEstimate:
    """The type of the skin around the lesion: outside ``lesion_mask`` (white = lesion) when given, else the
    photo's border. ITA = atan((L* − 50) / b*) in degrees; medians keep hair and shadows from moving it.

    ``skin_only`` (generated images, whose framing nobody checked) also drops the pixels :func:`skin_mask`
    rejects, so a background or clothing at the border does not count as skin; ``ValueError`` if none is left.
    """
    rgb = np.asarray(image.convert("RGB"))
    if lesion_mask is not None:
        around = np.asarray(lesion_mask.convert("L").resize(image.size)) < 128
    else:
        height, width = rgb.shape[:2]
        dy, dx = max(1, round(height * BORDER)), max(1, round(width * BORDER))
        around = np.ones((height, width), dtype=bool)
        around[dy : height - dy, dx : width - dx] = False
    if not around.any():
        raise ValueError("lesion_mask: it covers the whole photo, so no surrounding skin is left to measure")
    if skin_only:
        around &= skin_mask(rgb)
        if not around.any():
            raise ValueError("no skin-coloured pixels around the lesion to measure")
    lab = cielab(rgb[around])
    lightness, yellowness = float(np.median(lab[:, 0])), float(np.median(lab[:, 2]))
    ita = math.degrees(math.atan2(lightness - 50, yellowness))
    return SkinToneEstimate(
        fitzpatrick_from_ita(ita), round(ita, 1), round(lightness, 1), round(yellowness, 1)
    )
