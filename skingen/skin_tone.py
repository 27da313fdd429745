"""Fitzpatrick skin types, and the three groups every per-skin-tone result is reported in.

Generative and diagnostic skin models are known to do worse on darker skin, so data cards, validation images
and evaluation metrics are all broken down by the same groups (I–II, III–IV, V–VI, as the DDI dataset labels
them). Torch-free: the bundle format and the study read it too.
"""

from __future__ import annotations

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
