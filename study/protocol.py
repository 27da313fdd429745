"""The study protocol: one YAML file that drives the app, the allocation, the export and the codebook.

The schema is pydantic; :func:`load_protocol` turns every problem into one :class:`ProtocolError` that lists each
offending field by its path (``questionnaires.post[2].scale.points: …``) and, where known, its line in the file.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from formats.bundle import Bundle, BundleError, BundleManifest, BundleNotFoundError, load_bundle
from formats.contract import INITIAL_SUFFIX
from study.crossover import williams_orders
from study.instruments import Instrument, load_instrument
from study.references import REFERENCE_KINDS, ReferenceKind
from study.schema import Identifier, Scale
from study.schema import Model as _Model
from study.texts import LanguageCode, Text, declared_languages, validation_context

ItemType = Literal["likert", "single_choice", "yes_no", "free_text", "diagnosis", "number"]
CODED_TYPES = frozenset({"likert", "single_choice", "yes_no"})
Design = Literal["between", "within"]
MAX_CONDITIONS = 8

UNSURE = "unsure"
"""The answer code of a diagnosis item for 'I don't know'."""


class ProtocolError(ValueError):
    """A protocol file that cannot be used. ``problems`` holds one line per offending field."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid protocol\n  " + "\n  ".join(problems))


class AttentionCheck(_Model):
    """An instructed-response item: the answer the participant was told to give."""

    expected: int | str


class ManipulationCheck(_Model):
    """An item asking what the explanation showed: per condition, the answer of a participant who noticed
    their condition's manipulation (reported by arm; the export adds ``<id>__as_intended`` 0/1)."""

    expected: dict[Identifier, int] = Field(
        min_length=2, description="Condition id → the answer code that shows the manipulation was noticed."
    )


# "construct" is the natural protocol key; it shadows only pydantic's deprecated BaseModel.construct().
warnings.filterwarnings("ignore", message='Field name "construct"', category=UserWarning)


class InstrumentRef(_Model):
    """Where an item expanded from ``instruments:`` comes from (set by the expansion, not written by hand)."""

    id: Identifier = Field(description="The shipped instrument.")
    key: str = Field(description="The item's key within the instrument.")
    subscale: Identifier | None = None
    adapted: bool = Field(default=False, description="Its wording differs from the published one.")


class Item(_Model):
    """One question. Values are coded: Likert points 1..n, single choice 1..len(options)."""

    id: Identifier
    text: Text = Field(min_length=1)
    type: ItemType
    scale: Scale | None = None
    options: tuple[Text, ...] | None = None
    confidence: Scale | None = Field(default=None, description="Diagnosis items: confidence rating scale.")
    minimum: float | None = None
    maximum: float | None = None
    max_length: int = Field(default=2000, ge=1, le=20000)
    construct: Identifier | None = None
    reverse: bool = False
    required: bool = True
    attention_check: AttentionCheck | None = None
    manipulation_check: ManipulationCheck | None = None
    show_in: tuple[str, ...] | None = Field(default=None, description="Only under these conditions.")
    help: Text = ""
    instrument: InstrumentRef | None = None

    @model_validator(mode="after")
    def _fields_for_type(self) -> Item:
        if self.type == "likert" and self.scale is None:
            raise ValueError("a likert item needs 'scale'")
        if self.type == "single_choice" and (not self.options or len(self.options) < 2):
            raise ValueError("a single_choice item needs at least 2 'options'")
        if self.reverse and self.type != "likert":
            raise ValueError("only likert items can be reverse coded")
        if self.construct and self.type not in {"likert", "number"}:
            raise ValueError("only likert and number items measure a construct")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("'minimum' is larger than 'maximum'")
        if self.manipulation_check is not None:
            if self.type not in CODED_TYPES:
                raise ValueError("manipulation checks must be likert/single_choice/yes_no items")
            wrong = {c: v for c, v in self.manipulation_check.expected.items() if v not in self.codes}
            if wrong:
                raise ValueError(
                    f"manipulation_check.expected {wrong} are not valid answers "
                    f"({min(self.codes)}..{max(self.codes)})"
                )
            if self.attention_check is not None:
                raise ValueError("an item is an attention check or a manipulation check, not both")
        if self.attention_check is not None:
            expected = self.attention_check.expected
            if self.type not in CODED_TYPES or not isinstance(expected, int):
                raise ValueError(
                    "attention checks must be likert/single_choice/yes_no items with an integer 'expected'"
                )
            if expected not in self.codes:
                raise ValueError(
                    f"attention_check.expected {expected} is not a valid answer "
                    f"({min(self.codes)}..{max(self.codes)})"
                )
            if self.type == "likert" and self.scale is not None and expected not in self.scale.anchors:
                raise ValueError(
                    f"attention_check.expected {expected} has no anchor label in scale.anchors, so participants "
                    "can't see which point the instruction means: label it"
                )
        return self

    def value_labels(self) -> dict[int, str]:
        """Code → label of a coded item: Likert points 1..n, choices 1..k, No = 0 / Yes = 1."""
        if self.type == "likert":
            assert self.scale is not None
            return {p: self.scale.label(p) for p in range(1, self.scale.points + 1)}
        if self.type == "single_choice":
            return dict(enumerate(self.options or (), start=1))
        if self.type == "yes_no":
            return {0: "No", 1: "Yes"}
        return {}

    @property
    def codes(self) -> tuple[int, ...]:
        return tuple(self.value_labels())


class Statement(_Model):
    id: Identifier
    text: Text = Field(min_length=1)


class Consent(_Model):
    text: Text = Field(min_length=1, description="Markdown shown on the consent page.")
    statements: tuple[Statement, ...] = Field(min_length=1)


class ExperimentalCondition(_Model):
    """An experimental condition (arm of a between design): what explanation participants see."""

    id: Identifier
    label: str
    references: tuple[ReferenceKind, ...] = Field(
        description="Which example images the explanation shows beside the AI's text: 'none', 'generated' "
        "(SkinGEN's generated references), 'retrieved' (real photos retrieved from an image set), or a list "
        "combining the two. Stored as the tuple of kinds shown (() for none)."
    )
    interactive: bool = Field(
        default=False,
        description="Participants may ask the live model about each case and request references generated "
        "for it (needs `skingen worker` processes on the study database).",
    )
    follow_up_questions: int = Field(
        default=3, ge=0, le=20, description="Interactive conditions: follow-up questions allowed per case."
    )
    live_references: int = Field(
        default=3,
        ge=0,
        le=8,
        description="Interactive conditions: images per request for references (0: none).",
    )

    @field_validator("references", mode="before")
    @classmethod
    def _reference_kinds(cls, value: object) -> object:
        """Accept 'none', one kind, or a list; the 1.x boolean form reads true → generated, false → none."""
        if isinstance(value, bool):
            return ("generated",) if value else ()
        if value == "none":
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list | tuple):
            if "none" in value:
                raise ValueError("'none' cannot be combined with other reference kinds")
            if len(set(value)) != len(value):
                raise ValueError(f"lists a reference kind twice: {list(value)}")
        return value

    @field_validator("references")
    @classmethod
    def _canonical_order(cls, value: tuple[ReferenceKind, ...]) -> tuple[ReferenceKind, ...]:
        """[retrieved, generated] and [generated, retrieved] are one explanation: store kinds in one order."""
        return tuple(kind for kind in REFERENCE_KINDS if kind in value)

    def shows(self, kind: ReferenceKind) -> bool:
        """Whether this condition's explanation shows references of ``kind``."""
        return kind in self.references

    @property
    def explanation(self) -> tuple[str, ...]:
        """What the explanation adds to the AI's text; two conditions must differ in it."""
        return self.references + (("interactive",) if self.interactive else ())


class Randomization(_Model):
    method: Literal["permuted_blocks"] = "permuted_blocks"
    block_sizes: tuple[int, ...] = Field(min_length=1)
    seed: int
    stratify_by: Identifier | None = Field(default=None, description="An entry item (single_choice).")
    table_size: int = Field(default=200, ge=1, le=100_000, description="Slots per stratum made in advance.")


class Cases(_Model):
    bundle: str = Field(description="Bundle directory, relative to the protocol file.")
    demo: bool = Field(
        default=False,
        description="The bundle is the synthetic demo bundle: when it is missing, say how to draw it.",
    )
    include: tuple[str, ...] | Literal["all"] = "all"
    order: Literal["random", "fixed"] = "random"


class Questionnaires(_Model):
    entry: tuple[Item, ...] = ()
    trial: tuple[Item, ...] = Field(min_length=1)
    post_block: tuple[Item, ...] = ()
    post: tuple[Item, ...] = ()

    def sections(self) -> dict[str, tuple[Item, ...]]:
        return {"entry": self.entry, "trial": self.trial, "post_block": self.post_block, "post": self.post}


AdviceTiming = Literal["with_case", "after_initial"]


class TrialDesign(_Model):
    """When the AI's advice is shown within a trial.

    ``with_case`` (default): the case photo, the AI's diagnosis and the condition's references together, then
    every trial question. ``after_initial``: a judge–advisor trial (Sniezek & Buckley 1995), the design
    reliance research uses: the participant first answers the trial's diagnosis items (and their confidence)
    from the photo alone — stored as ``<id>_initial`` before the advice reaches the browser, and never
    changed afterwards — then sees the AI's advice with the condition's references and answers every trial
    question, the diagnosis items again as their final answer. Only then can the analysis tell whether anyone
    changed their mind (switch rate, RAIR/RSR; docs/analysis.md).
    """

    advice: AdviceTiming = Field(
        default="with_case",
        description="with_case: the AI's advice comes with the case; after_initial: the participant's own "
        "diagnosis and confidence first, then the advice, then the final diagnosis and confidence.",
    )

    @property
    def judge_advisor(self) -> bool:
        return self.advice == "after_initial"


class Exclusions(_Model):
    """Declared before data: who is left out of the confirmatory analysis."""

    max_failed_attention_checks: int | None = Field(default=0, ge=0)
    min_duration_seconds: float | None = Field(default=None, ge=0)
    exclude_incomplete: bool = True


class Completion(_Model):
    code: str = Field(min_length=1, max_length=64)
    redirect_url: str | None = Field(default=None, description="May contain '{code}'.")
    message: Text = Field(default="", description="Shown above the code (default: the app's thank-you line).")


class Debrief(_Model):
    """The page after the last questions, and what the completion page reveals.

    Written as a text alone (``debrief: |`` …, or ``{en: …, de: …}``) or as a mapping with ``text`` and
    ``reveal_wrong_ai``.
    """

    text: Text = Field(default="", description="Markdown of the debrief page (none: no debrief page).")
    reveal_wrong_ai: bool = Field(
        default=False,
        description="The completion page lists which of the participant's cases had a deliberately wrong AI "
        "diagnosis (the bundle's cases whose AI diagnosis differs from the ground truth).",
    )

    @model_validator(mode="before")
    @classmethod
    def _text_alone(cls, value: object) -> object:
        text_alone = isinstance(value, dict) and value and not {"text", "reveal_wrong_ai"} & set(value)
        if isinstance(value, str) or text_alone:
            return {"text": value}  # the text alone, in one language or as {language: text}
        return value


class RatingDesign(_Model):
    """Expert rating task: dermatologists rate the bundle's generated references (and, blind, case photos and
    the real references retrieved for each case)."""

    raters: int = Field(ge=1, le=500, description="Planned panel size: images are split across these slots.")
    raters_per_image: int = Field(ge=1, description="How many raters each image needs.")
    include_case_photos: bool = Field(
        default=True, description="Mix real case photos in, so raters are blind."
    )
    include_retrieved: bool = Field(
        default=False,
        description="Mix the bundle's retrieved real references in (bundles built with --retrieve), so real "
        "and generated references are rated alike, blind.",
    )
    seed: int = 0
    instructions: Text = ""
    items: tuple[Item, ...] = Field(min_length=1)
    relevance_item: Identifier | None = Field(
        default=None,
        description="The yes/no or Likert item asking whether the image shows its condition: the analysis "
        "compares it with each reference's closed-loop check (skingen bundle build --evaluate).",
    )

    @model_validator(mode="after")
    def _fits_panel(self) -> RatingDesign:
        if self.raters_per_image > self.raters:
            raise ValueError(
                f"raters_per_image ({self.raters_per_image}) exceeds the panel size ({self.raters})"
            )
        ids = [i.id for i in self.items]
        if len(set(ids)) != len(ids):
            raise ValueError("item ids must be unique")
        if any(i.type == "diagnosis" or i.show_in for i in self.items):
            raise ValueError("rating items can't be diagnosis items or use show_in")
        judged = [i.id for i in self.items if i.type in ("yes_no", "likert")]
        if self.relevance_item is not None and self.relevance_item not in judged:
            raise ValueError(
                f"relevance_item {self.relevance_item!r} is not one of the yes/no or Likert items {judged}"
            )
        return self


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


Direction = Literal["greater", "less", "two_sided", "equivalent", "non_inferior"]
EQUIVALENCE_DIRECTIONS = ("equivalent", "non_inferior")
"""Directions tested against a smallest effect size of interest (TOST; Lakens 2017): they need ``sesoi``."""


class Hypothesis(_Model):
    """A preregistered (confirmatory) test: ``construct`` under ``comparison[0]`` vs ``comparison[1]``."""

    id: Identifier
    construct: Identifier
    comparison: tuple[Identifier, Identifier] = Field(
        description="Two conditions: the first is compared with the second."
    )
    direction: Direction = Field(
        description="greater: the first condition scores higher; less; two_sided; equivalent: the difference "
        "lies within ±sesoi; non_inferior: the first is at most sesoi below the second (higher is better)."
    )
    sesoi: float | None = Field(
        default=None,
        gt=0,
        description="Smallest effect size of interest, in construct-score points (the scale's own units, e.g. "
        "0.5 for half a Likert point): the equivalence bounds ±sesoi or the non-inferiority margin. Required "
        "by equivalent/non_inferior, and only used by them.",
    )
    alpha: float = Field(default=0.05, gt=0, lt=1)
    statement: str = Field(default="", description="The hypothesis in words.")


class SampleSize(_Model):
    """The planned sample and the power analysis behind it."""

    participants: int = Field(ge=2, description="Participants to be analysed (after exclusions).")
    effect: float = Field(gt=0, description="Smallest effect of interest: d_z (within) or d (between).")
    power: float = Field(default=0.8, gt=0, lt=1)
    rationale: str = Field(default="", description="Where the effect size comes from.")
    cases: int | None = Field(
        default=None,
        ge=2,
        description="Cases each participant judges (default: every case of the bundle); the mixed model's power "
        "depends on it as much as on the participants.",
    )
    cases_rationale: str = Field(
        default="", description="Why this many cases (e.g. the 'how many cases?' table)."
    )
    point_effect: float | None = Field(
        default=None,
        gt=0,
        description="Smallest effect of interest in scale points for the mixed model's power (default: `effect` "
        "read in points, i.e. per residual SD of 1 point).",
    )
    components: dict[str, float] = Field(
        default_factory=dict,
        description="Variance components (SDs in scale points) for the mixed model's power, e.g. from a pilot's "
        "report: participant, participant_condition, case, case_condition, residual; the others keep the "
        "defaults of formats.planning.VarianceComponents.",
    )

    @field_validator("components")
    @classmethod
    def _known_components(cls, value: dict[str, float]) -> dict[str, float]:
        from formats.planning import VarianceComponents

        known = set(VarianceComponents.__dataclass_fields__)
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown variance component(s) {unknown}; known: {sorted(known)}")
        VarianceComponents(**value)  # each ≥ 0
        return value


class Preregistration(_Model):
    """How the confirmatory hypotheses are tested; with the exclusions, the plan ``prereg`` writes out."""

    correction: Literal["holm", "bonferroni", "none"] = Field(
        default="holm", description="Multiplicity correction across the hypotheses."
    )
    sample_size: SampleSize | None = None
    stopping_rule: str = Field(default="", description="When data collection stops.")


class StudyInfo(_Model):
    id: Identifier
    title: Text
    version: str


class Protocol(_Model):
    study: StudyInfo
    languages: tuple[LanguageCode, ...] = Field(
        default=("en",),
        min_length=1,
        description="The languages participants may take the study in; each participant-facing text gives "
        "one entry per language ({en: …, de: …}). The first is the protocol's own: exports, codebook and "
        "reports use it, and participants whose language is not offered get it.",
    )
    consent: Consent
    design: Design
    conditions: tuple[ExperimentalCondition, ...] = Field(min_length=2, max_length=MAX_CONDITIONS)
    baseline: Identifier
    randomization: Randomization
    cases: Cases
    instructions: Text = ""
    questionnaires: Questionnaires
    trial: TrialDesign = TrialDesign()
    exclusions: Exclusions = Exclusions()
    debrief: Debrief = Debrief()
    completion: Completion
    url_parameters: tuple[Identifier, ...] = ()
    participant_label: Identifier | None = Field(
        default=None,
        description="A URL parameter that identifies a returning participant (e.g. PROLIFIC_PID): opening the "
        "recruiting link again resumes their study instead of starting a new one.",
    )
    resume_requires: tuple[Identifier, ...] = Field(
        default=(),
        description="URL parameters (of url_parameters) the platform sends per attempt, e.g. SESSION_ID: a "
        "returning participant resumes only if these equal the recorded ones too, so knowing someone's "
        "label is not enough to take over their study.",
    )
    retention_days: float | None = Field(
        default=None,
        gt=0,
        description="Days after a participant's last activity when their recorded identifiers (URL "
        "parameters, label) are purged (`skingen-study purge`, and `serve` at start). None: kept.",
    )
    dropout_after_minutes: float = Field(default=60, gt=0)
    rating: RatingDesign | None = None
    instruments: tuple[InstrumentUse, ...] = ()
    hypotheses: tuple[Hypothesis, ...] = ()
    preregistration: Preregistration = Preregistration()

    @field_validator("languages")
    @classmethod
    def _each_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"{list(value)} lists a language twice")
        return value

    @model_validator(mode="before")
    @classmethod
    def _expand_instruments(cls, data: object) -> object:
        """Append each instrument's items to its questionnaire block, so app, paths, export and codebook see
        ordinary items. Entries that don't validate are skipped here and reported at ``instruments[i]``."""
        if not isinstance(data, dict) or not isinstance(data.get("instruments"), list):
            return data
        questionnaires = data.get("questionnaires")
        if not isinstance(questionnaires, dict):
            return data
        expanded = dict(questionnaires)
        languages = declared_languages(data)
        for raw in data["instruments"]:
            try:
                use = InstrumentUse.model_validate(raw)
            except ValidationError:
                continue
            written = expanded.get(use.show) or []
            if isinstance(written, list | tuple):
                expanded[use.show] = [*written, *use.item_data(languages)]
        return {**data, "questionnaires": expanded}

    @model_validator(mode="after")
    def _cross_checks(self) -> Protocol:
        problems = []
        condition_ids = [c.id for c in self.conditions]
        if len(set(condition_ids)) != len(condition_ids):
            problems.append("conditions: ids must be unique")
        if self.baseline not in condition_ids:
            problems.append(f"baseline: {self.baseline!r} is not one of the conditions {condition_ids}")
        explanations: dict[tuple[str, ...], str] = {}
        for index, condition in enumerate(self.conditions):
            twin = explanations.setdefault(condition.explanation, condition.id)
            if twin != condition.id:
                shown = " + ".join(condition.explanation) or "none"
                problems.append(
                    f"conditions[{index}].references: {condition.id!r} shows the same as {twin!r} ({shown}); "
                    "conditions must differ in their explanation"
                )
        seen: set[str] = set()
        for section, items in self.questionnaires.sections().items():
            for item in items:
                if item.id in seen:
                    origin = (
                        f" (by instrument {item.instrument.id}: set instruments[].prefix)"
                        if item.instrument
                        else ""
                    )
                    problems.append(f"questionnaires.{section}: item id {item.id!r} is used twice{origin}")
                seen.add(item.id)
                if item.instrument and item.instrument.id not in {u.id for u in self.instruments}:
                    problems.append(
                        f"questionnaires.{section}: {item.id}.instrument is set by the 'instruments' section only"
                    )
                unknown = set(item.show_in or ()) - set(condition_ids)
                if unknown and not item.instrument:  # reported once, at instruments[i].show_in
                    problems.append(
                        f"questionnaires.{section}: {item.id}.show_in names unknown {sorted(unknown)}"
                    )
        problems += self._trial_problems(seen)
        problems += self._manipulation_check_problems(condition_ids)
        n_arms = self.n_arms
        for size in self.randomization.block_sizes:
            if size % n_arms:
                problems.append(
                    f"randomization.block_sizes: {size} is not a multiple of the {n_arms} "
                    f"{'sequences' if self.design == 'within' else 'arms'} of a {self.design} design"
                )
        for index, use in enumerate(self.instruments):
            unknown = set(use.show_in or ()) - set(condition_ids)
            if unknown:
                problems.append(f"instruments[{index}].show_in: unknown conditions {sorted(unknown)}")
            problems += [f"instruments[{index}].{p}" for p in use.translation_problems(self.languages)]
        problems += self._hypothesis_problems(condition_ids)
        if self.participant_label is not None and self.participant_label not in self.url_parameters:
            problems.append(f"participant_label: {self.participant_label!r} must be one of url_parameters")
        for name in self.resume_requires:
            if name not in self.url_parameters or name == self.participant_label:
                problems.append(
                    f"resume_requires: {name!r} must be one of url_parameters other than participant_label"
                )
        if self.resume_requires and self.participant_label is None:
            problems.append("resume_requires: needs a participant_label (resume is by label)")
        strat = self.randomization.stratify_by
        if strat is not None:
            entry = {i.id: i for i in self.questionnaires.entry}
            if strat not in entry or entry[strat].type != "single_choice" or not entry[strat].required:
                problems.append(
                    f"randomization.stratify_by: {strat!r} must be a required single_choice item of "
                    "questionnaires.entry"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _manipulation_check_problems(self, condition_ids: list[str]) -> list[str]:
        """A manipulation check names an expected answer for every condition it is shown in, and is asked
        where a condition is in force: after allocation, and in a within design within a period."""
        problems = []
        for section, items in self.questionnaires.sections().items():
            for item in items:
                if item.manipulation_check is None:
                    continue
                where = f"questionnaires.{section}: {item.id}.manipulation_check"
                named = set(item.manipulation_check.expected)
                if unknown := sorted(named - set(condition_ids)):
                    problems.append(f"{where}.expected names unknown conditions {unknown}")
                if missing := [c for c in (item.show_in or condition_ids) if c not in named]:
                    problems.append(f"{where}.expected: give the expected answer under {missing}")
                if section == "entry" or (section == "post" and self.design == "within"):
                    problems.append(
                        f"{where}: ask it in trial or post_block"
                        + (
                            ""
                            if section == "entry"
                            else " (a within design's post questions have no condition)"
                        )
                    )
        return problems

    def _trial_problems(self, item_ids: set[str]) -> list[str]:
        """A judge–advisor trial needs a diagnosis item to ask twice, and the initial answers' ids free."""
        if not self.trial.judge_advisor:
            return []
        if not any(i.type == "diagnosis" for i in self.questionnaires.trial):
            return [
                "trial.advice: after_initial asks the trial's diagnosis items before and after the AI's advice, "
                "but questionnaires.trial has no diagnosis item"
            ]
        return [
            f"questionnaires: item id {i.id!r} is the initial answer of diagnosis item "
            f"{i.id.removesuffix(INITIAL_SUFFIX)!r} (trial.advice: after_initial): rename it"
            for i in self.initial_items
            if i.id in item_ids
        ]

    def _hypothesis_problems(self, condition_ids: list[str]) -> list[str]:
        problems = []
        measured = self.constructs
        ids = [h.id for h in self.hypotheses]
        if len(set(ids)) != len(ids):
            problems.append("hypotheses: ids must be unique")
        compared = {
            i.construct
            for section in ("trial", "post_block")
            for i in self.questionnaires.sections()[section]
        }
        for index, hypothesis in enumerate(self.hypotheses):
            where = f"hypotheses[{index}]"
            if hypothesis.construct not in measured:
                problems.append(
                    f"{where}.construct: {hypothesis.construct!r} is not measured (constructs: {measured})"
                )
            elif hypothesis.construct not in compared:
                problems.append(
                    f"{where}.construct: {hypothesis.construct!r} is asked only outside the conditions (entry/post); "
                    "a hypothesis compares conditions, so ask it in trial or post_block"
                )
            unknown = [c for c in hypothesis.comparison if c not in condition_ids]
            if unknown:
                problems.append(f"{where}.comparison: {unknown} are not conditions {condition_ids}")
            elif hypothesis.comparison[0] == hypothesis.comparison[1]:
                problems.append(f"{where}.comparison: compare two different conditions")
            if hypothesis.direction in EQUIVALENCE_DIRECTIONS and hypothesis.sesoi is None:
                problems.append(
                    f"{where}.sesoi: direction {hypothesis.direction!r} needs a smallest effect size of interest "
                    "(construct-score points, e.g. sesoi: 0.5)"
                )
            elif hypothesis.direction not in EQUIVALENCE_DIRECTIONS and hypothesis.sesoi is not None:
                problems.append(
                    f"{where}.sesoi: only equivalent and non_inferior hypotheses use it (direction is "
                    f"{hypothesis.direction!r})"
                )
        return problems

    # --- derived facts, so no other module re-derives them ---------------------------------------------
    @property
    def constructs(self) -> list[str]:
        """Constructs the questionnaires measure (Likert/number items with a construct), in item order."""
        return list(dict.fromkeys(i.construct for i in self.items().values() if i.construct))

    @property
    def n_arms(self) -> int:
        """Arms of the allocation: conditions (between) or sequences (within): each condition order of the
        Williams design (k orders for even k, 2k for odd k) × k case-set rotations."""
        k = len(self.conditions)
        return len(williams_orders(k)) * k if self.design == "within" else k

    @property
    def condition_ids(self) -> tuple[str, ...]:
        """Condition ids in protocol order."""
        return tuple(c.id for c in self.conditions)

    @property
    def visual(self) -> str:
        """The compared condition of a two-arm study; '' when there are more (every pair is compared)."""
        others = [c.id for c in self.conditions if c.id != self.baseline]
        return others[0] if len(others) == 1 else ""

    @property
    def interactive_conditions(self) -> tuple[str, ...]:
        """Conditions whose participants talk with the live model (they need `skingen worker` processes)."""
        return tuple(c.id for c in self.conditions if c.interactive)

    def condition(self, condition_id: str) -> ExperimentalCondition:
        return next(c for c in self.conditions if c.id == condition_id)

    @property
    def strata(self) -> tuple[str, ...]:
        """Stratum names (the stratifying item's options), or a single '' stratum."""
        strat = self.randomization.stratify_by
        if strat is None:
            return ("",)
        item = next(i for i in self.questionnaires.entry if i.id == strat)
        return tuple(item.options or ())

    @property
    def initial_items(self) -> tuple[Item, ...]:
        """Judge–advisor trials: what is asked before the AI's advice — each diagnosis item of the trial as
        ``<id>_initial`` (same text, confidence scale and ``show_in``). Empty when the advice comes with the
        case."""
        if not self.trial.judge_advisor:
            return ()
        return tuple(
            item.model_copy(update={"id": item.id + INITIAL_SUFFIX})
            for item in self.questionnaires.trial
            if item.type == "diagnosis"
        )

    def items(self) -> dict[str, Item]:
        """Every item by id: the questionnaires' and, in judge–advisor trials, the initial answers'."""
        items = {i.id: i for items in self.questionnaires.sections().values() for i in items}
        return items | {i.id: i for i in self.initial_items}


class LoadedProtocol:
    """A validated protocol with its source text, content hash and resolved bundle."""

    def __init__(self, protocol: Protocol, text: str, path: Path | None, bundle: Bundle) -> None:
        self.protocol = protocol
        self.text = text
        self.path = path
        self.bundle = bundle
        self._localized: dict[str, LoadedProtocol] = {protocol.languages[0]: self}

    def localized(self, language: str) -> LoadedProtocol:
        """The same protocol with its texts in ``language`` (one of its ``languages``): what a participant
        of that language sees. Ids, codes and steps are the same in every language."""
        if language not in self._localized:
            protocol = parse_protocol(self.text, "<protocol>", language)
            self._localized[language] = LoadedProtocol(protocol, self.text, self.path, self.bundle)
        return self._localized[language]

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def case_ids(self) -> tuple[str, ...]:
        include = self.protocol.cases.include
        if include == "all":
            return tuple(c.case_id for c in self.bundle.manifest.cases)
        return tuple(include)


# --- loading with field paths and line numbers ------------------------------------------------------------
def _line_index(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map every field path of a composed YAML document to its 1-based line."""
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[(*path, key.value)] = key.start_mark.line + 1
            _line_index(value, (*path, key.value), out)
            out[(*path, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, value in enumerate(node.value):
            _line_index(value, (*path, index), out)
    return out


def format_location(loc: tuple) -> str:
    """('questionnaires', 'post', 2, 'scale', 'points') → 'questionnaires.post[2].scale.points'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _problems(error: ValidationError, lines: dict[tuple, int]) -> list[str]:
    problems = []
    for item in error.errors():
        # pydantic inserts union/validator tags ('function-after[...]', 'tuple[...]') into loc: drop them
        loc = tuple(p for p in item["loc"] if isinstance(p, int) or ("[" not in p and "-" not in p))
        message = item["msg"].removeprefix("Value error, ")
        line = next((lines[loc[:n]] for n in range(len(loc), -1, -1) if loc[:n] in lines), None)
        where = f" (line {line})" if line else ""
        problems.append(f"{format_location(loc) or '(top level)'}{where}: {message}")
    return problems


def parse_protocol(text: str, source: str = "<protocol>", language: str | None = None) -> Protocol:
    """Validate protocol YAML text (no bundle checks), its texts in ``language`` (default: its first)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProtocolError(source, [f"not valid YAML: {exc}"]) from None
    if not isinstance(data, dict):
        raise ProtocolError(source, ["(top level): must be a mapping of protocol sections"])
    languages = declared_languages(data)
    if language is not None and language not in languages:
        raise ValueError(f"language {language!r} is not one of the protocol's languages {list(languages)}")
    try:
        return Protocol.model_validate(data, context=validation_context(languages, language))
    except ValidationError as exc:
        raise ProtocolError(source, _problems(exc, _line_index(node) if node else {})) from None


def resolve_bundle(protocol: Protocol, base_dir: Path, source: str) -> Bundle:
    """Load the protocol's bundle (relative to the protocol file) and check the cases it names."""
    path = base_dir / protocol.cases.bundle
    try:
        bundle = load_bundle(path)
    except BundleNotFoundError as exc:
        hint = f" — draw the demo bundle with `skingen-study demo-bundle {_shown(path)}`"
        raise ProtocolError(source, [f"cases.bundle: {exc}{hint if protocol.cases.demo else ''}"]) from None
    except BundleError as exc:
        raise ProtocolError(source, [f"cases.bundle: {exc}"]) from None
    known = {c.case_id for c in bundle.manifest.cases}
    problems = []
    if protocol.cases.include != "all":
        for index, case_id in enumerate(protocol.cases.include):
            if case_id not in known:
                problems.append(f"cases.include[{index}]: case {case_id!r} is not in the bundle")
    n_cases = len(known) if protocol.cases.include == "all" else len(protocol.cases.include)
    if protocol.design == "within" and n_cases < len(protocol.conditions):
        problems.append(f"cases: a within design needs at least {len(protocol.conditions)} cases")
    if protocol.rating and protocol.rating.include_retrieved and bundle.manifest.retrieval is None:
        problems.append(
            "rating.include_retrieved: the bundle has no retrieved images (build it with "
            "`skingen bundle build --retrieve DATA`)"
        )
    if bundle.manifest.retrieval is None:
        for index, condition in enumerate(protocol.conditions):
            if condition.shows("retrieved"):
                problems.append(
                    f"conditions[{index}].references: {condition.id!r} shows retrieved references, but the "
                    f"bundle has none (build it with `skingen bundle build --retrieve DATA`)"
                )
    if problems:
        raise ProtocolError(source, problems)
    return bundle


def _shown(path: Path) -> str:
    """``path`` as the user would type it here: relative to the working directory when inside it."""
    path = path.resolve()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def load_protocol(path: str | Path) -> LoadedProtocol:
    """Read, validate and resolve a protocol file, or raise one :class:`ProtocolError` naming every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProtocolError(str(path), [f"cannot read the file: {exc}"]) from None
    protocol = parse_protocol(text, str(path))
    bundle = resolve_bundle(protocol, path.resolve().parent, str(path))
    return LoadedProtocol(protocol, text, path, bundle)


def load_stored_protocol(text: str, manifest_json: str, bundle_root: str) -> LoadedProtocol:
    """Rebuild a protocol registered in the database (text and bundle manifest as they were at ``init``).

    Exports and analyses use this, so they read the study as it ran, even if the files have moved since.
    """
    protocol = parse_protocol(text, "<protocol stored in the database>")
    bundle = Bundle(Path(bundle_root), BundleManifest.model_validate_json(manifest_json))
    return LoadedProtocol(protocol, text, None, bundle)
