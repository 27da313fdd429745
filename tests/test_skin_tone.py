"""Skin-tone groups: the one breakdown data cards, validation images and metrics share."""

from __future__ import annotations

import pytest

from skingen.skin_tone import FITZPATRICK_TYPES, SKIN_TONE_GROUPS, skin_tone_group


def test_every_type_falls_in_exactly_one_group_and_groups_map_to_themselves() -> None:
    assert [skin_tone_group(t) for t in FITZPATRICK_TYPES] == [
        "I-II",
        "I-II",
        "III-IV",
        "III-IV",
        "V-VI",
        "V-VI",
    ]
    assert all(skin_tone_group(g) == g for g in SKIN_TONE_GROUPS)
    assert skin_tone_group("") is None and skin_tone_group(None) is None


def test_a_typo_is_an_error_not_unknown() -> None:
    with pytest.raises(ValueError, match="neither a Fitzpatrick type"):
        skin_tone_group("VII")


def test_cielab_matches_the_published_values_of_reference_colours() -> None:
    import numpy as np

    from skingen.skin_tone import cielab

    # sRGB white, mid grey and pure red in CIELAB D65 (e.g. Bruce Lindbloom's calculator)
    lab = cielab(np.array([[255, 255, 255], [128, 128, 128], [255, 0, 0]]))
    assert np.allclose(lab, [[100, 0, 0], [53.59, 0, 0], [53.24, 80.09, 67.20]], atol=0.05)


@pytest.mark.parametrize(
    ("rgb", "expected"),
    # ITA of these skin colours: 78.6°, 46.5°, 34.8°, 25.2°, −14.2°, −53.3°
    [
        ((246, 226, 214), "I"),
        ((215, 170, 140), "II"),
        ((200, 150, 120), "III"),
        ((190, 140, 105), "IV"),
        ((140, 95, 70), "V"),
        ((95, 60, 45), "VI"),
    ],
)
def test_skin_around_a_lesion_gives_the_type_of_its_ita_band(rgb, expected) -> None:
    from PIL import Image, ImageDraw

    from skingen.skin_tone import estimate_skin_tone, fitzpatrick_from_ita

    photo = Image.new("RGB", (100, 100), rgb)
    ImageDraw.Draw(photo).ellipse((30, 30, 70, 70), fill=(150, 20, 40))  # a red lesion in the middle
    estimate = estimate_skin_tone(photo)
    assert estimate.fitzpatrick == expected == fitzpatrick_from_ita(estimate.ita)
    mask = Image.new("L", (100, 100), 0)
    ImageDraw.Draw(mask).ellipse((30, 30, 70, 70), fill=255)
    assert estimate_skin_tone(photo, mask) == estimate  # only the skin around counts either way


def test_ita_bands_follow_the_published_thresholds() -> None:
    from skingen.skin_tone import fitzpatrick_from_ita

    assert [fitzpatrick_from_ita(a) for a in (60, 55.1, 41.1, 28.1, 10.1, -29.9, -30, -60)] == [
        "I",
        "I",
        "II",
        "III",
        "IV",
        "V",
        "VI",
        "VI",
    ]
