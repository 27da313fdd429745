"""Schema pieces the protocol and the instrument files share: a strict frozen model, identifiers, scales."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from study.texts import Text

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", max_length=64)]

MAX_SCALE_POINTS = 21
"""NASA-TLX rates on 21 gradations (0–100 in steps of 5); no shorter scale needs more."""


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Scale(Model):
    """A numeric rating scale coded 1..points; anchors label some (at least the two ends) of the points."""

    points: int = Field(ge=2, le=MAX_SCALE_POINTS)
    anchors: dict[int, Text] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _anchors_in_range(self) -> Scale:
        outside = sorted(k for k in self.anchors if not 1 <= k <= self.points)
        if outside:
            raise ValueError(f"anchors {outside} lie outside 1..{self.points}")
        return self

    def label(self, point: int) -> str:
        return self.anchors.get(point, str(point))
