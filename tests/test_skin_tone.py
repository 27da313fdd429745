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
