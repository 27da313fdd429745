"""Skin-tone fidelity: images painted with skin of a known ITA are measured back to their Fitzpatrick group
(through the skin mask, a grey background and a dark lesion around them), and the agreement table, the
Wilson interval and Cohen's κ with its interval equal statsmodels'. Torch-free."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from skingen.evaluation.skin_fidelity import (
    MeasuredTone,
    cohens_kappa,
    measure_tones,
    skin_tone_fidelity,
    wilson_interval,
)
from skingen.skin_tone import cielab, estimate_skin_tone, fitzpatrick_from_ita, skin_mask

stats_inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
proportion = pytest.importorskip("statsmodels.stats.proportion")


def lab_to_srgb(lightness: float, a: float, b: float) -> np.ndarray:
    """CIELAB (D65) → sRGB 0–255, the inverse of the standard formulas (written here, not skingen's)."""
    fy = (lightness + 16) / 116
    f = np.array([fy + a / 500, fy, fy - b / 200])
    xyz = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * np.array([0.95047, 1.0, 1.08883])
    to_rgb = np.linalg.inv(
        np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    )
    linear = to_rgb @ xyz
    srgb = np.where(
        linear <= 0.0031308, 12.92 * linear, 1.055 * np.clip(linear, 0, None) ** (1 / 2.4) - 0.055
    )
    return np.clip(np.round(srgb * 255), 0, 255)


def skin_colour(ita: float, b: float = 18.0) -> np.ndarray:
    """sRGB of skin with this ITA: L* = 50 + b*·tan(ITA), a* = 10 (a typical skin redness)."""
    return lab_to_srgb(50 + b * math.tan(math.radians(ita)), 10.0, b)


def painted(
    ita: float,
    size: int = 64,
    seed: int = 0,
    background: float = 0.125,
    cloth: tuple[int, ...] = (128, 128, 128),
) -> Image.Image:
    """Skin of the given ITA with noise, a dark-red lesion in the middle and a ``cloth`` background over the top
    ``background`` of the image (inside the border the estimator reads): the skin mask must drop it."""
    rng = np.random.default_rng(seed)
    pixels = skin_colour(ita) + rng.normal(0, 2.0, (size, size, 3))
    pixels[size // 3 : 2 * size // 3, size // 3 : 2 * size // 3] = (90, 30, 35)
    pixels[: round(size * background)] = cloth
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


# one ITA inside each Fitzpatrick band of Del Bino & Bernerd (I > 55 > II > 41 > III > 28 > IV > 10 > V > −30)
ITA_OF = {"I": 62.0, "II": 48.0, "III": 34.0, "IV": 19.0, "V": -10.0, "VI": -45.0}


@pytest.mark.parametrize("tone", list(ITA_OF))
def test_painted_skin_is_measured_back_to_its_type(tone: str) -> None:
    colour = skin_colour(ITA_OF[tone])
    lab = cielab(colour[None, :])[0]
    assert math.degrees(math.atan2(lab[0] - 50, lab[2])) == pytest.approx(ITA_OF[tone], abs=1.0)  # the paint
    estimate = estimate_skin_tone(painted(ITA_OF[tone]), skin_only=True)
    assert estimate.fitzpatrick == tone
    assert estimate.ita == pytest.approx(ITA_OF[tone], abs=2.0)
    assert fitzpatrick_from_ita(estimate.ita) == tone


def test_the_skin_mask_keeps_skin_and_drops_backgrounds() -> None:
    skin = np.array([skin_colour(ita) for ita in ITA_OF.values()])
    others = np.array([(128, 128, 128), (250, 250, 250), (10, 10, 10), (40, 80, 200), (40, 160, 60)], float)
    assert skin_mask(skin).all()
    assert not skin_mask(others).any()
    # a dark-blue cloth over most of the border: read as skin, type I skin becomes type VI; masked, it is I
    photo = painted(ITA_OF["I"], background=0.6, cloth=(20, 30, 80))
    assert estimate_skin_tone(photo).fitzpatrick == "VI"
    assert estimate_skin_tone(photo, skin_only=True).fitzpatrick == "I"


def test_an_image_without_skin_is_unmeasured(tmp_path: Path) -> None:
    Image.new("RGB", (32, 32), (40, 80, 200)).save(tmp_path / "blue.png")
    painted(ITA_OF["V"]).save(tmp_path / "v.png")
    tones = measure_tones([tmp_path / "blue.png", tmp_path / "v.png"])
    assert tones[0] == MeasuredTone(None, None) and tones[1].fitzpatrick == "V" and tones[1].group == "V-VI"


def test_fidelity_table_agreement_and_kappa_against_statsmodels() -> None:
    # requested types and what was measured: light prompts mostly right, dark prompts often drawn lighter
    requested = ["I"] * 10 + ["III"] * 10 + ["V"] * 10 + ["VI"] * 2 + [None]
    measured_groups = (["I-II"] * 9 + ["III-IV"]) + (["III-IV"] * 7 + ["I-II"] * 2 + [None]) + (
        ["V-VI"] * 4 + ["III-IV"] * 5 + ["I-II"]) + ["V-VI", "III-IV"] + ["I-II"]  # fmt: skip
    type_of = {"I-II": "II", "III-IV": "III", "V-VI": "V", None: None}
    measured = [MeasuredTone(type_of[g], None if g is None else 0.0) for g in measured_groups]
    result = skin_tone_fidelity(requested, measured, 0.95)
    assert result["n"] == 32 and result["n_measured"] == 31  # the unrequested image is left out
    assert result["table"] == [[9, 1, 0], [2, 7, 0], [1, 6, 5]]
    v_vi = result["by_requested_group"]["V-VI"]
    assert v_vi["measured"] == {"I-II": 1, "III-IV": 6, "V-VI": 5, "unmeasured": 0} and v_vi["n"] == 12
    assert v_vi["agreement"] == pytest.approx(5 / 12)
    low, high = proportion.proportion_confint(5, 12, alpha=0.05, method="wilson")
    assert v_vi["agreement_ci"] == pytest.approx([low, high], rel=1e-12)
    assert result["by_requested_group"]["III-IV"]["measured"]["unmeasured"] == 1
    reference = stats_inter_rater.cohens_kappa(np.array(result["table"]))
    assert result["kappa"] == pytest.approx(reference.kappa, rel=1e-12)
    assert result["kappa_se"] == pytest.approx(reference.std_kappa, rel=1e-12)
    assert result["kappa_ci"] == pytest.approx([reference.kappa_low, reference.kappa_upp], rel=1e-12)
    assert result["agreement"] == pytest.approx(21 / 31)
    assert wilson_interval(0, 0, 0.95) is None
    assert cohens_kappa(np.array([[5, 0], [0, 0]]), 0.95)["kappa"] is None  # one category: κ undefined
