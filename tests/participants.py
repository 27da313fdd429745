"""What a test participant answers: the consent boxes, the entry questions and a valid answer to any step.

Shared by the engine, export, database, data-rights, audit, judge–advisor, hostile-client and engagement tests,
so that none of them imports helpers from another test module."""

from __future__ import annotations

from study.engine import StudyEngine
from study.path import Step

TICKED = ["read_information", "voluntary", "agree_data"]
"""Every consent statement of the example protocols."""
ENTRY = {"expertise": 2, "age_group": 1}
"""Valid answers to the example protocols' entry questions."""


def answers_for(step: Step, value: int = 4) -> dict:
    """Valid answers to every item of ``step``: ``value`` (capped at the item's top code) on scales and choices,
    the expected answer on attention checks, "psoriasis" with confidence 3 on diagnoses."""
    answers: dict[str, object] = {}
    for item in step.items:
        if item.type == "diagnosis":
            answers[item.id], answers[item.id + "_confidence"] = "psoriasis", 3
        elif item.attention_check is not None:
            answers[item.id] = item.attention_check.expected
        elif item.type in {"likert", "single_choice"}:
            answers[item.id] = min(value, max(item.codes))
    return answers


def complete(engine: StudyEngine, params: dict[str, str], comments: str | None = None) -> str:
    """Consent with ``params`` as the study link's URL parameters and answer every step (free-text
    ``comments`` where a step asks for them); returns the participant's token."""
    token = engine.consent(TICKED, params)
    position = engine.position(token)
    while not position.completed:
        answers = answers_for(position.step)
        if comments is not None and "comments" in {i.id for i in position.step.items}:
            answers["comments"] = comments
        position = engine.submit(token, position.step.key, answers)
    return token
