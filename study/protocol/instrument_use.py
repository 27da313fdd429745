"""Published instruments included by id (``instruments:``): how a use is written, and the questionnaire items
it expands into — ordinary Likert items, so the app, flow, export and codebook need nothing else."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from study.instruments import Instrument, load_instrument
from study.schema import Identifier
from study.schema import Model as _Model
from study.texts import LanguageCode

QuestionnaireSection = Literal["entry", "trial", "post_block", "post"]


class Adaptation(_Model):
    """A deliberate change to a published instrument; the codebook and report call the instrument 'adapted'."""

    wording: dict[str, str] = Field(default_factory=dict, description="Item key → the wording used instead.")
    drop: tuple[str, ...] = Field(default=(), description="Item keys left out.")
    reason: str = Field(min_length=1, description="Why: reported with the instrument.")


class InstrumentTranslation(_Model):
    """An instrument's wording in another language of the protocol (a translation you made or obtained: it is
    not the published, validated instrument — say so in the report)."""

    wording: dict[str, str] = Field(description="Item key → the item in this language (every item used).")
    anchors: dict[int, str] = Field(description="Scale point → its anchor label in this language.")
    fill: dict[str, str] = Field(default_factory=dict, description="The placeholders' text in this language.")


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
    translations: dict[LanguageCode, InstrumentTranslation] = Field(
        default_factory=dict,
        description="Protocols in several languages: the wording in each language after the first.",
    )

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

    def translation_problems(self, languages: tuple[str, ...]) -> list[str]:
        """What is missing for ``languages`` (the first is the wording's own); paths relative to this use."""
        problems = [
            f"translations.{code}: {code!r} is not one of languages {list(languages)}"
            for code in self.translations
            if code not in languages[1:]
        ]
        keys = [i.key for i in self.instrument.items if i.key not in (self.adapt.drop if self.adapt else ())]
        own_anchors = [i.key for i in self.instrument.items if i.anchors is not None and i.key in keys]
        points = sorted(self.instrument.scale.anchors)
        for code in languages[1:]:
            translation = self.translations.get(code)
            if translation is None:
                problems.append(
                    f"translations.{code}: give the wording ({len(keys)} items) and anchors in {code}"
                )
                continue
            if missing := [k for k in keys if k not in translation.wording]:
                problems.append(f"translations.{code}.wording: give items {missing}")
            if missing := [p for p in points if p not in translation.anchors]:
                problems.append(f"translations.{code}.anchors: give points {missing}")
            if missing := sorted(set(self.instrument.placeholders) - set(translation.fill)):
                problems.append(f"translations.{code}.fill: give {missing}")
            if own_anchors:
                problems.append(
                    f"translations.{code}: items {own_anchors} have anchors of their own, which "
                    "can't be translated yet: drop them (adapt.drop) or write the items by hand"
                )
        return problems

    def item_data(self, languages: tuple[str, ...] = ("en",)) -> list[dict]:
        """The questionnaire items this use expands into (as protocol data), in the published order; in a
        protocol of several languages each text is ``{language: text}`` (missing translations fall back to the
        first language's wording here and are reported by :meth:`translation_problems`)."""
        instrument = self.instrument
        dropped = self.adapt.drop if self.adapt else ()
        changed = self.adapt.wording if self.adapt else {}
        items = []
        for item in instrument.items:
            if item.key in dropped:
                continue
            text = _filled(changed.get(item.key) or self.wording.get(item.key) or item.text or "", self.fill)
            scale = instrument.scale.model_dump()
            if item.anchors is not None:
                scale["anchors"] = item.anchors
            if len(languages) > 1:
                text, scale["anchors"] = self._in_languages(languages, item.key, text, scale["anchors"])
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

    def _in_languages(
        self, languages: tuple[str, ...], key: str, text: str, anchors: dict[int, str]
    ) -> tuple[dict[str, str], dict[int, dict[str, str]]]:
        """One item's text and anchors as ``{language: …}`` mappings: the first language's, then each
        translation's (the first language's where a translation lacks it)."""
        texts, labels = (
            {languages[0]: text},
            {point: {languages[0]: label} for point, label in anchors.items()},
        )
        for code in languages[1:]:
            translation = self.translations.get(code)
            given = translation.wording.get(key) if translation else None
            texts[code] = _filled(given, translation.fill) if translation and given else text
            for point, label in anchors.items():
                labels[point][code] = (translation.anchors.get(point) if translation else None) or label
        return texts, labels


def _filled(text: str, fill: dict[str, str]) -> str:
    """``text`` with its placeholders filled in (not str.format: wording may hold other braces)."""
    for slot, filled in fill.items():
        text = text.replace(f"{{{slot}}}", filled)
    return text
