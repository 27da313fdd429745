"""Exclusion rules declared in the protocol, applied to one participant's record (pure)."""

from __future__ import annotations

from study.items.base import Item
from study.protocol.sections import Exclusions


def failed_attention_checks(items: dict[str, Item], answers: dict[str, str]) -> int:
    """Attention-check items answered differently from the instruction (unanswered ones don't count)."""
    return sum(
        1
        for item_id, value in answers.items()
        if (item := items.get(item_id)) is not None
        and item.attention_check is not None
        and value != str(item.attention_check.expected)
    )


def exclusion_reasons(
    rules: Exclusions, *, completed: bool, duration_s: float | None, attention_failures: int
) -> list[str]:
    reasons = []
    if (
        rules.max_failed_attention_checks is not None
        and attention_failures > rules.max_failed_attention_checks
    ):
        reasons.append("attention_check")
    if (
        rules.min_duration_seconds is not None
        and duration_s is not None
        and duration_s < rules.min_duration_seconds
    ):
        reasons.append("too_fast")
    if rules.exclude_incomplete and not completed:
        reasons.append("incomplete")
    return reasons
