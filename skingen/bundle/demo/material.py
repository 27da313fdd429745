"""What the demo bundle shows, read from ``material.yaml`` (package data) and validated before anything is drawn.

The file holds the skin tones the painters draw on, the conditions (names and descriptions for participants,
the appearance for alt text, the painter that draws them) and the cases with the demo AI's fixed answers.
:func:`load_material` reports every problem at once, each with its field path.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from formats.bundle import format_validation_error
from skingen.bundle.demo.drawing import PAINTERS, SkinTone
from skingen.skin_tone import FITZPATRICK_TYPES

MATERIAL_FILE = "material.yaml"


class MaterialError(ValueError):
    """The demo material cannot be used; the message names the file and every offending field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DemoCondition(_Model):
    """A condition as the demo shows it: names and description for participants, alt text and a painter."""

    id: str
    display_name: str
    description: str = Field(min_length=1)
    appearance: str = Field(min_length=1, description="Completes 'Synthetic illustration …: {appearance}'.")
    painter: str = Field(description="A key of drawing.PAINTERS.")

    @field_validator("painter")
    @classmethod
    def _known_painter(cls, value: str) -> str:
        if value not in PAINTERS:
            raise ValueError(f"unknown painter {value!r}; known: {', '.join(PAINTERS)}")
        return value


class DemoCase(_Model):
    """One demo case: what is drawn, and the fixed output the demo's 'AI' gives for it."""

    case_id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=64)
    condition: str
    skin_tone: str
    ai_condition: str
    rationale: str = Field(min_length=1)
    differential: tuple[tuple[str, float], ...] = Field(
        min_length=1, description="(condition, score) pairs, best first."
    )

    @model_validator(mode="after")
    def _differential_is_ranked(self) -> DemoCase:
        scores = [score for _, score in self.differential]
        if self.differential[0][0] != self.ai_condition:
            raise ValueError(f"differential must start with ai_condition {self.ai_condition!r}")
        if any(not 0 <= s <= 1 for s in scores) or sum(scores) > 1 or scores != sorted(scores, reverse=True):
            raise ValueError(f"differential scores must lie in [0, 1], sum to ≤ 1 and fall, got {scores}")
        return self


class DemoMaterial(_Model):
    skin_tones: tuple[SkinTone, ...] = Field(min_length=1)
    conditions: tuple[DemoCondition, ...] = Field(min_length=1)
    cases: tuple[DemoCase, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _references_resolve(self) -> DemoMaterial:
        problems = []
        tones = [t.fitzpatrick for t in self.skin_tones]
        for field, ids in (
            ("skin_tones", tones),
            ("conditions", [c.id for c in self.conditions]),
            ("cases", [c.case_id for c in self.cases]),
        ):
            duplicates = sorted({i for i in ids if ids.count(i) > 1})
            if duplicates:
                problems.append(f"{field}: duplicate id(s) {', '.join(duplicates)}")
        problems += [
            f"skin_tones: {t!r} is not a Fitzpatrick type" for t in tones if t not in FITZPATRICK_TYPES
        ]
        known = {c.id for c in self.conditions}
        for index, case in enumerate(self.cases):
            named = [("condition", case.condition), ("ai_condition", case.ai_condition)]
            named += [(f"differential[{i}]", c) for i, (c, _) in enumerate(case.differential)]
            problems += [f"cases[{index}].{f}: unknown condition {c!r}" for f, c in named if c not in known]
            if case.skin_tone not in tones:
                problems.append(f"cases[{index}].skin_tone: {case.skin_tone!r} is not in skin_tones")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def condition(self, condition_id: str) -> DemoCondition:
        return next(c for c in self.conditions if c.id == condition_id)

    def tone(self, fitzpatrick: str) -> SkinTone:
        return next(t for t in self.skin_tones if t.fitzpatrick == fitzpatrick)


def load_material(path: str | Path | None = None) -> DemoMaterial:
    """Read and validate the demo material: ``path``, or the packaged ``material.yaml``."""
    source = resources.files(__package__) / MATERIAL_FILE if path is None else Path(path)
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise MaterialError(f"{source}: not readable YAML ({exc})") from None
    try:
        return DemoMaterial.model_validate(data)
    except ValidationError as exc:
        raise MaterialError(f"{source}:\n  " + "\n  ".join(format_validation_error(exc))) from None
