"""Published instruments included by id (``instruments:``): how a use is written, and the questionnaire items
it expands into — ordinary Likert items, so the app, flow, export and codebook need nothing else."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from study.instruments import Instrument, load_instrument
from study.schema import Identifier
from study.schema import Model as _Model

QuestionnaireSection = Literal["entry", "trial", "post_block", "post"]


class Adaptation(_Model):
    """A deliberate change to a published instrument; the codebook and report call the instrument 'adapted'."""

    wording: dict[str, str] = Field(default_factory=dict, description="Item key → the wording used instead.")
    drop: tuple[str, ...] = Field(default=(), description="Item keys left out.")
    reason: str = Field(min_length=1, description="Why: reported with the instrument.")


class InstrumentUse(_Model):
    """A published instrument included by id; its items are appended to ``questionnaires.<show>``."""

    id: Identifier
    show: QuestionnaireSection = Field(description="The questionnaire block where its items appear.")
    prefix: Identifier | None = Field(
        default=None,
        description="Item ids are '<prefix>_<key>' and the construct is the prefix (default: id).",
    )
    show_in: tuple[Identifier, ...] | None = Field(default=None, description="Only under these conditions.")
    required: bool = True
    fill: dict[str, str] = Field(
        default_factory=dict, description="Text for the wording's placeholders, e.g. {system: the AI}."
    )
    wording: dict[str, str] = Field(
        default_factory=dict,
        description="Templates only: the published wording (item key → text) you obtained from the source.",
    )
    adapt: Adaptation | None = None

    @field_validator("id")
    @classmethod
    def _shipped(cls, value: str) -> str:
        load_instrument(value)  # InstrumentError (a ValueError) lists the shipped ids
        return value

    @model_validator(mode="after")
    def _fits_instrument(self) -> InstrumentUse:
        instrument = self.instrument
        keys = [i.key for i in instrument.items]
        problems = []
        missing_fill = sorted(set(instrument.placeholders) - set(self.fill))
        if missing_fill:
            problems.append(
                f"fill: give the text for {missing_fill} (the publication has "
                + ", ".join(f"{k}: {instrument.placeholders[k]!r}" for k in missing_fill)
                + ")"
            )
        if unknown := sorted(set(self.fill) - set(instrument.placeholders)):
            problems.append(f"fill: {unknown} are not placeholders of {self.id}")
        if instrument.is_template and sorted(self.wording) != sorted(keys):
            problems.append(
                f"wording: {self.id} ships without its wording (licence); give all {len(keys)} items "
                f"(keys {keys}) — {instrument.obtain}"
            )
        if self.wording and not instrument.is_template:
            problems.append(f"wording: {self.id} ships its published wording; change it with 'adapt.wording'")
        if self.adapt is not None:
            for field, named in (("wording", list(self.adapt.wording)), ("drop", list(self.adapt.drop))):
                if unknown := [k for k in named if k not in keys]:
                    problems.append(f"adapt.{field}: {unknown} are not items of {self.id} (keys {keys})")
            if len(keys) - len(set(self.adapt.drop)) < 2:
                problems.append("adapt.drop: keep at least two items")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def instrument(self) -> Instrument:
        return load_instrument(self.id)

    @property
    def construct(self) -> str:
        return self.prefix or self.id

    @property
    def adapted(self) -> bool:
        return self.adapt is not None

    def item_data(self) -> list[dict]:
        """The questionnaire items this use expands into (as protocol data), in the published order."""
        instrument = self.instrument
        dropped = self.adapt.drop if self.adapt else ()
        changed = self.adapt.wording if self.adapt else {}
        items = []
        for item in instrument.items:
            if item.key in dropped:
                continue
            text = changed.get(item.key) or self.wording.get(item.key) or item.text or ""
            for slot, filled in self.fill.items():  # not str.format: wording may hold other braces
                text = text.replace(f"{{{slot}}}", filled)
            scale = instrument.scale.model_dump()
            if item.anchors is not None:
                scale["anchors"] = item.anchors
            items.append(
                {
                    "id": f"{self.construct}_{item.key}",
                    "text": text,
                    "type": "likert",
                    "scale": scale,
                    "construct": self.construct,
                    "reverse": item.reverse,
                    "required": self.required,
                    "show_in": self.show_in,
                    "instrument": {
                        "id": self.id,
                        "key": item.key,
                        "subscale": item.subscale,
                        "adapted": item.key in changed,
                    },
                }
            )
        return items
